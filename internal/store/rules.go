package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Rule routes requests to a team. Empty match cells match anything.
type Rule struct {
	Specialty    string
	Clinic       string
	RequestType  string
	Team         string
	SlackChannel string
	SLAHours     int
}

// Rules lists the routing rules, in a stable order.
func (s *Store) Rules(ctx context.Context) ([]Rule, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT specialty, clinic, request_type, team, slack_channel, sla_hours
		FROM routing_rules ORDER BY specialty, clinic, request_type`)
	if err != nil {
		return nil, fmt.Errorf("store: list rules: %w", err)
	}
	rules, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Rule, error) {
		var x Rule
		err := r.Scan(&x.Specialty, &x.Clinic, &x.RequestType, &x.Team, &x.SlackChannel, &x.SLAHours)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list rules: %w", err)
	}
	return rules, nil
}

// ReplaceRules swaps the whole rule set in one transaction: readers see the
// old set or the new one, never a mix, and a bad row changes nothing.
func (s *Store) ReplaceRules(ctx context.Context, rules []Rule) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM routing_rules`); err != nil {
			return fmt.Errorf("store: replace rules: %w", err)
		}
		for i, r := range rules {
			_, err := tx.Exec(ctx, `
				INSERT INTO routing_rules (specialty, clinic, request_type, team, slack_channel, sla_hours)
				VALUES ($1, $2, $3, $4, $5, $6)`,
				r.Specialty, r.Clinic, r.RequestType, r.Team, r.SlackChannel, r.SLAHours)
			if err != nil {
				return fmt.Errorf("store: replace rules: rule %d: %w", i+1, unwrapPg(err))
			}
		}
		return nil
	})
}
