package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"time"

	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/report"
	"github.com/rebookhq/rebook/internal/store"
)

// runReport is `starter report`: requests per specialty or team per day,
// week or month, as a table or CSV.
func runReport(ctx context.Context, args []string) error {
	return printReport(ctx, args, os.Stdout)
}

func printReport(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	today := time.Now().Format("2006-01-02")
	from := fs.String("from", time.Now().AddDate(0, -1, 0).Format("2006-01-02"), "first UK day received (YYYY-MM-DD)")
	to := fs.String("to", today, "last UK day received, included (YYYY-MM-DD)")
	by := fs.String("by", "specialty", "specialty or team")
	every := fs.String("every", "week", "day, week (from Monday) or month")
	format := fs.String("format", "table", "table or csv")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := time.Parse("2006-01-02", *from)
	if err != nil {
		return errors.New("--from must be a day, YYYY-MM-DD")
	}
	t, err := time.Parse("2006-01-02", *to)
	if err != nil || t.Before(f) {
		return errors.New("--to must be a day, YYYY-MM-DD, not before --from")
	}
	if *format != "table" && *format != "csv" {
		return errors.New("--format must be table or csv")
	}
	cfg, err := config.FromEnv(config.DatabaseURL)
	if err != nil {
		return err
	}
	st, err := store.Connect(ctx, cfg.DatabaseURL, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	rows, err := st.Report(ctx, store.ReportQuery{From: f, To: t.AddDate(0, 0, 1), By: *by, Every: *every})
	if err != nil {
		return err
	}
	if *format == "csv" {
		return report.CSV(out, *by, rows)
	}
	return report.Table(out, *by, rows)
}
