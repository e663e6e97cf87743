package store

import (
	"context"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
)

// WithLock runs fn while holding a cluster-wide advisory lock named name,
// so that of several processes only one does fn at a time.
func (s *Store) WithLock(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	h := fnv.New64a()
	_, _ = h.Write([]byte("rebook:" + name))
	key := int64(h.Sum64())
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, key); err != nil {
			return fmt.Errorf("store: lock %s: %w", name, err)
		}
		return fn(ctx)
	})
}
