package projections

import "strings"

// LayoutMigrations are the versions of the migrations that introduced event_bodies and
// view_tables.layout, for the test that downgrades a store to the schema before them.
func LayoutMigrations() []int {
	var out []int
	for i, m := range migrations {
		if strings.Contains(m, "event_bodies") || strings.Contains(m, "ADD COLUMN layout") {
			out = append(out, i+1)
		}
	}
	return out
}

// MigrationCount is the number of migrations.
func MigrationCount() int { return len(migrations) }

// RegistryMigration is the version of the first migration of the registry of event ids.
func RegistryMigration() int { return registryMigration() }
