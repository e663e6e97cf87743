package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Resealed says what a key rotation did to the stored tokens.
type Resealed struct {
	KeyID string // the key they are now sealed under
	// Grants re-sealed, and grants already under the current key.
	Resealed, Current int
}

// ResealTokens seals every stored PKB token under the current key, opening
// each under whichever configured key sealed it. It holds the rows while it
// works, so a refresh landing meanwhile waits and is not overwritten; run
// again, it changes nothing. A token no configured key opens fails the
// whole run, with nothing changed.
func (s *Store) ResealTokens(ctx context.Context) (Resealed, error) {
	if s.box == nil {
		return Resealed{}, ErrNoKey
	}
	res := Resealed{KeyID: s.box.KeyID()}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT client_id, access_token, refresh_token FROM pkb_grants ORDER BY client_id FOR UPDATE`)
		if err != nil {
			return err
		}
		type grant struct {
			client          string
			access, refresh []byte
		}
		grants, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (grant, error) {
			var g grant
			return g, r.Scan(&g.client, &g.access, &g.refresh)
		})
		if err != nil {
			return err
		}
		for _, g := range grants {
			if (g.access == nil || s.box.Current(g.access)) && (g.refresh == nil || s.box.Current(g.refresh)) {
				res.Current++
				continue
			}
			access, err := s.reseal(g.access, g.client, "access_token")
			if err != nil {
				return err
			}
			refresh, err := s.reseal(g.refresh, g.client, "refresh_token")
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE pkb_grants SET access_token = $2, refresh_token = $3 WHERE client_id = $1`,
				g.client, access, refresh); err != nil {
				return err
			}
			res.Resealed++
		}
		return auditTx(ctx, tx, AuditEntry{Actor: "starter rotate-key", Action: "tokens-resealed", Subject: "encryption-key/" + res.KeyID,
			Detail: map[string]string{"resealed": fmt.Sprint(res.Resealed), "current": fmt.Sprint(res.Current)}})
	})
	if err != nil {
		return Resealed{}, fmt.Errorf("store: re-seal tokens: %w", err)
	}
	return res, nil
}

func (s *Store) reseal(sealed []byte, clientID, column string) ([]byte, error) {
	v, err := s.open(sealed, clientID, column)
	if err != nil {
		return nil, fmt.Errorf("grant %s %s: %w", clientID, column, err)
	}
	return s.seal(v, clientID, column)
}
