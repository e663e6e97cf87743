package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/grantflow"
	"github.com/rebookhq/rebook/internal/store"
)

// runGrantLink is `starter grant-link`: the admin's way to start the PKB
// grant. It prints a URL, good once for 30 minutes, that sends a clinician
// to PKB's consent page without signing in to Rebook.
func runGrantLink(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return errors.New("usage: starter grant-link (prints a single-use link, valid 30 minutes, that starts the PKB grant)")
	}
	cfg, err := config.FromEnv(config.DatabaseURL, config.PKBClientID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := store.Connect(ctx, cfg.DatabaseURL, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	link, err := st.NewGrantLink(ctx, cfg.PKBClientID, "starter grant-link", grantflow.LinkTTL)
	if err != nil {
		return err
	}
	if err := st.Audit(ctx, store.AuditEntry{Actor: "starter grant-link", Action: "grant-link-issued", Subject: "pkb-grant/" + cfg.PKBClientID}); err != nil {
		return err
	}
	fmt.Println(activities.Links{PublicURL: cfg.PublicURL}.GrantLink(link))
	fmt.Printf("Good once, until %s. Give it to the clinician who will grant Rebook access to PKB.\n", time.Now().Add(grantflow.LinkTTL).Format("15:04 MST"))
	return nil
}
