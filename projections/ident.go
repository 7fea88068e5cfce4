package projections

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
)

// ensureID gives a new store its identity, a random 64-bit hex string kept in
// store_meta. Processes that share a store (PostgreSQL) share its identity; two stores
// never do, so their projectors' durable consumers get different names.
func (s *Store) ensureID(ctx context.Context, tx *sql.Tx) error {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO store_meta (key, value) VALUES ('store_id', ?) ON CONFLICT DO NOTHING`), hex.EncodeToString(b[:]))
	return err
}

// ID returns the store's identity.
func (s *Store) ID(ctx context.Context) (string, error) {
	var id string
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM store_meta WHERE key = 'store_id'`).Scan(&id); err != nil {
		return "", fmt.Errorf("store identity: %w", err)
	}
	return id, nil
}
