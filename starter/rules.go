package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/notify"
	"github.com/rebookhq/rebook/internal/routing"
	"github.com/rebookhq/rebook/internal/store"
)

const rulesUsage = `usage: starter rules list | import FILE.csv | export [FILE.csv]

The CSV header is exactly: specialty,clinic,request_type,team,slack_channel,sla_hours
An empty cell matches anything; the most specific rule wins. An import is
checked whole and applied in one transaction, or not at all`

func runRules(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New(rulesUsage)
	}
	cfg, err := config.FromEnv()
	if err != nil {
		return err
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := store.Connect(octx, cfg.DatabaseURL, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.CheckSchema(octx); err != nil {
		return err
	}
	switch args[0] {
	case "list":
		rules, err := st.Rules(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SPECIALTY\tCLINIC\tREQUEST TYPE\tTEAM\tCHANNEL\tSLA (h)")
		for _, r := range rules {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t#%s\t%d\n", orAny(r.Specialty), orAny(r.Clinic), orAny(r.RequestType), r.Team, r.SlackChannel, r.SLAHours)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(rules) == 0 {
			fmt.Println("(no rules: every request goes to triage)")
		}
		return nil
	case "export":
		rules, err := st.Rules(ctx)
		if err != nil {
			return err
		}
		var w io.Writer = os.Stdout
		if len(args) > 1 {
			f, err := os.Create(args[1])
			if err != nil {
				return err
			}
			defer func() { _ = f.Close() }()
			w = f
		}
		return routing.WriteCSV(w, rules)
	case "import":
		if len(args) != 2 {
			return errors.New(rulesUsage)
		}
		f, err := os.Open(args[1])
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }()
		rules, err := routing.ReadCSV(f)
		if err != nil {
			return err
		}
		if cfg.SlackBotToken == "" && cfg.TeamsAppID == "" {
			fmt.Println("channels not checked: neither SLACK_BOT_TOKEN nor TEAMS_APP_ID is set")
		} else if bad := badChannels(ctx, app.Notifier(cfg, nil), rules); len(bad) > 0 {
			for _, b := range bad {
				fmt.Fprintln(os.Stderr, b)
			}
			return fmt.Errorf("%d channel(s) cannot take Rebook's posts; nothing imported", len(bad))
		}
		if err := importRules(ctx, st, rules, "starter rules import"); err != nil {
			return err
		}
		fmt.Printf("imported %d rules\n", len(rules))
		return nil
	}
	return errors.New(rulesUsage)
}

// badChannels checks each rule's channel against its service (Slack or
// Teams), once per channel, and says which cannot take posts and why. A
// channel of a service Rebook has no credentials for is one of them.
func badChannels(ctx context.Context, out notify.Router, rules []store.Rule) []string {
	var bad []string
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.SlackChannel] {
			continue
		}
		seen[r.SlackChannel] = true
		if err := out.Check(ctx, r.SlackChannel); err != nil {
			_, where := activities.Place(r.SlackChannel)
			bad = append(bad, fmt.Sprintf("%s (team %s): %v", where, r.Team, err))
		}
	}
	return bad
}

func importRules(ctx context.Context, st *store.Store, rules []store.Rule, actor string) error {
	if err := st.ReplaceRules(ctx, rules); err != nil {
		return err
	}
	return st.Audit(ctx, store.AuditEntry{Actor: actor, Action: "rules-imported", Subject: "routing-rules", Detail: map[string]string{"count": fmt.Sprint(len(rules))}})
}

func orAny(s string) string {
	if s == "" {
		return "*"
	}
	return s
}
