// Package report lays out the request report (store.Report's rows) as CSV,
// a text table and an SVG chart, for `starter report` and the web page
// alike, so both say the same.
package report

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/rebookhq/rebook/internal/store"
)

// Header is the CSV header; by is "specialty" or "team". Outside checks
// read these names: keep them.
func Header(by string) []string {
	return []string{"period", by, "requests", "cancel", "change", "closed_requests", "median_hours_to_close", "p90_hours_to_close", "sla_breaches"}
}

// Hours writes a time to close to one decimal, or nothing when none closed.
func Hours(h *float64) string {
	if h == nil {
		return ""
	}
	return strconv.FormatFloat(*h, 'f', 1, 64)
}

// Record is one row's cells, in Header's order.
func Record(r store.ReportRow) []string {
	return []string{r.Period.Format("2006-01-02"), r.Key, strconv.Itoa(r.Requests), strconv.Itoa(r.Cancel), strconv.Itoa(r.Change),
		strconv.Itoa(r.Closed), Hours(r.MedianHours), Hours(r.P90Hours), strconv.Itoa(r.SLABreaches)}
}

// CSV writes the rows with Header.
func CSV(out io.Writer, by string, rows []store.ReportRow) error {
	w := csv.NewWriter(out)
	_ = w.Write(Header(by))
	for _, r := range rows {
		_ = w.Write(Record(r))
	}
	w.Flush()
	return w.Error()
}

// Table writes the rows as aligned text.
func Table(out io.Writer, by string, rows []store.ReportRow) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	line := func(cells []string) {
		for _, c := range cells {
			fmt.Fprint(tw, c+"\t")
		}
		fmt.Fprintln(tw)
	}
	line(Header(by))
	for _, r := range rows {
		line(Record(r))
	}
	if len(rows) == 0 {
		fmt.Fprintln(tw, "(no requests received in that period)")
	}
	return tw.Flush()
}

// Chart draws requests per period, one line per specialty or team, as SVG.
func Chart(by string, rows []store.ReportRow) ([]byte, error) {
	var periods []string
	keys := map[string]map[string]int{}
	for _, r := range rows {
		p := r.Period.Format("2 Jan 2006")
		if !slices.Contains(periods, p) {
			periods = append(periods, p)
		}
		if keys[r.Key] == nil {
			keys[r.Key] = map[string]int{}
		}
		keys[r.Key][p] += r.Requests
	}
	p := plot.New()
	p.Title.Text = "Requests per " + by
	p.Y.Label.Text = "requests"
	p.Y.Min = 0
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	slices.Sort(names)
	for i, k := range names {
		xys := make(plotter.XYs, len(periods))
		for j, per := range periods {
			xys[j] = plotter.XY{X: float64(j), Y: float64(keys[k][per])}
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
		line.Width = vg.Points(2)
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(k, line, points)
	}
	if len(periods) > 0 {
		p.NominalX(periods...)
		p.X.Min, p.X.Max = -0.5, float64(len(periods))-0.5
	} else {
		p.Title.Text += ": no requests in this period"
	}
	wt, err := p.WriterTo(9*vg.Inch, 4*vg.Inch, "svg")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
