package projections

import (
	"context"
	"database/sql"
	"fmt"
	"hash/fnv"
	"net/url"
	"slices"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// PostgresPool is the most connections a PostgreSQL store opens: one per projector
// applying a batch and a few for readers. Appliers of the same view serialize on the
// view's advisory lock, not on the pool.
const PostgresPool = 8

// OpenPostgres opens the PostgreSQL store at dsn (a postgres:// or postgresql:// URL,
// or any connection string pgx accepts) through pgx's database/sql driver, and
// migrates it. The database must exist; the schema is created in it (in the first
// schema of the connection's search_path). Error messages name the store with its
// password redacted.
func OpenPostgres(ctx context.Context, dsn string) (*Store, error) {
	name := RedactDSN(dsn)
	fail := func(err error) error {
		return redact(fmt.Errorf("open store %s: %w", name, err), dsn)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fail(err)
	}
	db.SetMaxOpenConns(PostgresPool)
	db.SetMaxIdleConns(PostgresPool)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fail(err)
	}
	s := &Store{db: db, dialect: postgresDialect, stop: func() {}} // no WAL checkpointer
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fail(err)
	}
	if err := s.prepareHot(ctx); err != nil {
		db.Close()
		return nil, fail(err)
	}
	return s, nil
}

// begin starts a write transaction. SQLite takes the database's write lock at BEGIN
// (_txlock=immediate), so every writer runs alone. PostgreSQL runs it at READ
// COMMITTED whatever the server's default, so that each statement after an advisory
// lock (lockKeys) sees what the lock's previous holder committed.
func (s *Store) begin(ctx context.Context) (*sql.Tx, error) {
	if s.dialect == postgresDialect {
		return s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	}
	return s.db.BeginTx(ctx, nil)
}

// snapshot returns what a report reads with: on PostgreSQL a read-only REPEATABLE READ
// transaction, so that every query of the report sees the same committed state even
// while projectors commit and rebuilds swap tables; on SQLite the database (its one
// connection; a report bounds what it reads by the checkpoint it read first). Call done
// when finished.
func (s *Store) snapshot(ctx context.Context) (q queryer, done func(), err error) {
	if s.dialect != postgresDialect {
		return s.db, func() {}, nil
	}
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return nil, nil, fmt.Errorf("read snapshot: %w", err)
	}
	return tx, func() { _ = tx.Rollback() }, nil
}

// lockKeys serializes the transactions that change what is kept under the given
// projector or view keys. On SQLite the transaction already holds the write lock. On
// PostgreSQL it takes each key's transaction-scoped advisory lock (released at commit or
// rollback), in a fixed order so that two transactions locking the same keys cannot
// deadlock. An advisory lock also covers a key that has no row yet (a first batch),
// which SELECT ... FOR UPDATE would not.
func (s *Store) lockKeys(ctx context.Context, tx *sql.Tx, keys ...string) error {
	if s.dialect != postgresDialect {
		return nil
	}
	keys = slices.Clone(keys)
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if _, err := s.stmt(ctx, tx, qLock).ExecContext(ctx, lockKey("projector:"+k)); err != nil {
			return fmt.Errorf("lock %s: %w", k, err)
		}
	}
	return nil
}

// lockKey is the advisory lock key of a name: 64 bits of FNV-1a of the name in
// custody's namespace.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("custody/projections/" + name))
	return int64(h.Sum64())
}

// textOrder is an ORDER BY term for a TEXT column that sorts by bytes on every store:
// PostgreSQL otherwise sorts by the database's collation.
func (s *Store) textOrder(col string) string {
	if s.dialect == postgresDialect {
		return col + ` COLLATE "C"`
	}
	return col
}

// RedactDSN returns a PostgreSQL connection URL with its password (in the user
// information or a password parameter) replaced by "xxxxx", for messages and logs.
// A string that is not a URL is replaced whole: it could hold a password anywhere.
func RedactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return "(connection string redacted)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// redact removes every password of dsn from err's message, whatever produced it (the
// driver's messages are redacted only on a best-effort basis). The cause stays
// available to errors.Is and errors.As.
func redact(err error, dsn string) error {
	msg := err.Error()
	for _, pw := range passwords(dsn) {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

// passwords are the password strings of a connection string, raw and decoded, longest
// first so that a password containing another is replaced whole.
func passwords(dsn string) []string {
	var out []string
	if u, err := url.Parse(dsn); err == nil {
		if pw, ok := u.User.Password(); ok {
			out = append(out, pw)
		}
		out = append(out, u.Query()["password"]...)
	}
	// The raw text between "user:" and "@", and a keyword/value password=..., in case
	// the string did not parse as a URL.
	if _, rest, ok := strings.Cut(dsn, "://"); ok {
		if userinfo, _, ok := strings.Cut(rest, "@"); ok {
			if _, pw, ok := strings.Cut(userinfo, ":"); ok {
				out = append(out, pw)
			}
		}
	}
	for _, f := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(f, "password="); ok {
			out = append(out, strings.Trim(v, "'"))
		}
	}
	out = slices.DeleteFunc(out, func(s string) bool { return s == "" })
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
