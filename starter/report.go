package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/store"
)

// runReport is `starter report`: requests per specialty or team per day,
// week or month, as a table or CSV.
func runReport(ctx context.Context, args []string) error {
	return report(ctx, args, os.Stdout)
}

func report(ctx context.Context, args []string, out io.Writer) error {
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
	header := []string{"period", *by, "requests", "cancel", "change", "closed_requests", "median_hours_to_close", "p90_hours_to_close", "sla_breaches"}
	hours := func(h *float64) string {
		if h == nil {
			return ""
		}
		return strconv.FormatFloat(*h, 'f', 1, 64)
	}
	record := func(r store.ReportRow) []string {
		return []string{r.Period.Format("2006-01-02"), r.Key, strconv.Itoa(r.Requests), strconv.Itoa(r.Cancel), strconv.Itoa(r.Change),
			strconv.Itoa(r.Closed), hours(r.MedianHours), hours(r.P90Hours), strconv.Itoa(r.SLABreaches)}
	}
	if *format == "csv" {
		w := csv.NewWriter(out)
		_ = w.Write(header)
		for _, r := range rows {
			_ = w.Write(record(r))
		}
		w.Flush()
		return w.Error()
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	for i, h := range header {
		sep := "\t"
		if i == len(header)-1 {
			sep = "\t\n"
		}
		fmt.Fprint(tw, h+sep)
	}
	for _, r := range rows {
		for i, v := range record(r) {
			sep := "\t"
			if i == len(header)-1 {
				sep = "\t\n"
			}
			fmt.Fprint(tw, v+sep)
		}
	}
	if len(rows) == 0 {
		fmt.Fprintln(tw, "(no requests received in that period)")
	}
	return tw.Flush()
}
