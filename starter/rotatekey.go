package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/secret"
	"github.com/rebookhq/rebook/internal/store"
)

// runRotateKey is `starter rotate-key`: the step of a key rotation that
// re-seals the stored PKB tokens under the new REBOOK_ENCRYPTION_KEY. Run it
// once every process has the new key, with the old one in
// REBOOK_ENCRYPTION_OLD_KEYS.
func runRotateKey(ctx context.Context, args []string) error {
	if len(args) > 0 {
		return errors.New("usage: starter rotate-key (re-seals the stored PKB tokens under REBOOK_ENCRYPTION_KEY; the old key must be in REBOOK_ENCRYPTION_OLD_KEYS)")
	}
	cfg, err := config.FromEnv(config.DatabaseURL, config.EncryptionKey)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err := store.Connect(ctx, cfg.DatabaseURL, cfg.EncryptionKey, cfg.OldEncryptionKeys...)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := st.ResealTokens(ctx)
	if errors.Is(err, secret.ErrOpen) {
		return fmt.Errorf("%w\nNothing was changed. Put the key the tokens were sealed under in %s and run it again", err, config.OldEncryptionKeys)
	}
	if err != nil {
		return err
	}
	fmt.Printf("PKB grants re-sealed under key %s: %d; already under it: %d.\n", res.KeyID, res.Resealed, res.Current)
	fmt.Printf("Keep every old key in %s until each request open before the rotation has closed and Temporal's retention has passed since: their histories are sealed under it.\n", config.OldEncryptionKeys)
	return nil
}
