// Package report lays out the request report (store.Report's rows) as CSV,
// a text table and an SVG chart, for `starter report` and the web page
// alike, so both say the same.
package report

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"image/color"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
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

// CSV writes the rows with Header. A cell a spreadsheet would read as a
// formula (a team or specialty named "=HYPERLINK(…)") is written as text.
func CSV(out io.Writer, by string, rows []store.ReportRow) error {
	w := csv.NewWriter(out)
	_ = w.Write(Header(by))
	for _, r := range rows {
		_ = w.Write(neutralise(Record(r)))
	}
	w.Flush()
	return w.Error()
}

// neutralise prefixes with an apostrophe each cell that begins with a
// character a spreadsheet takes as the start of a formula, as OWASP's
// advice on CSV injection has it. The counts and dates never do.
func neutralise(cells []string) []string {
	for i, c := range cells {
		if c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
			cells[i] = "'" + c
		}
	}
	return cells
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

// The chart's text in a sans-serif face, as the pages around it.
func init() {
	plot.DefaultFont = font.Font{Typeface: "Liberation", Variant: "Sans"}
	plotter.DefaultFont = plot.DefaultFont
}

// palette tells specialties or teams apart for readers with any of the
// common colour-vision deficiencies: Okabe and Ito's (less black, the text's colour), then Paul
// Tol's muted scheme. Stacked segments are also outlined in white, so
// neighbours never rely on colour alone.
var palette = []color.Color{
	rgb(0xE6, 0x9F, 0x00), rgb(0x56, 0xB4, 0xE9), rgb(0x00, 0x9E, 0x73), rgb(0xF0, 0xE4, 0x42),
	rgb(0x00, 0x72, 0xB2), rgb(0xD5, 0x5E, 0x00), rgb(0xCC, 0x79, 0xA7),
	rgb(0x33, 0x22, 0x88), rgb(0x88, 0xCC, 0xEE), rgb(0x44, 0xAA, 0x99), rgb(0x11, 0x77, 0x33),
	rgb(0x99, 0x99, 0x33), rgb(0xDD, 0xCC, 0x77), rgb(0xCC, 0x66, 0x77), rgb(0x88, 0x22, 0x55), rgb(0xAA, 0x44, 0x99),
}

func rgb(r, g, b uint8) color.Color { return color.NRGBA{R: r, G: g, B: b, A: 0xFF} }

// Chart draws requests per period as SVG: a bar per period, stacked by
// specialty or team.
func Chart(by string, rows []store.ReportRow) ([]byte, error) {
	var periods []string
	counts := map[string]map[string]int{}
	totals := map[string]int{}
	for _, r := range rows {
		p := r.Period.Format("2 Jan 2006")
		if !slices.Contains(periods, p) {
			periods = append(periods, p)
		}
		if counts[r.Key] == nil {
			counts[r.Key] = map[string]int{}
		}
		counts[r.Key][p] += r.Requests
		totals[p] += r.Requests
	}
	const width, height = 9 * vg.Inch, 4 * vg.Inch
	p := plot.New()
	p.Title.Text = "Requests per " + by
	p.Y.Label.Text = "requests"
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	bar := min(vg.Points(48), (width-vg.Inch)/vg.Length(max(len(periods), 1))*0.6)
	var below *plotter.BarChart
	for i, k := range keys {
		vals := make(plotter.Values, len(periods))
		for j, per := range periods {
			vals[j] = float64(counts[k][per])
		}
		b, err := plotter.NewBarChart(vals, bar)
		if err != nil {
			return nil, err
		}
		b.Color = palette[i%len(palette)]
		b.LineStyle.Width, b.LineStyle.Color = vg.Points(1), color.White
		if below != nil {
			b.StackOn(below)
		}
		below = b
		p.Add(b)
		p.Legend.Add(k, b)
	}
	if len(periods) == 0 {
		p.Title.Text += ": no requests in this period"
		p.HideX()
	} else {
		p.NominalX(periods...)
	}
	// Head room for the legend, so it never covers a bar.
	most := 1
	for _, n := range totals {
		most = max(most, n)
	}
	legend := min(0.6, float64(len(keys)*14+24)/float64(height.Points()))
	p.Y.Min, p.Y.Max = 0, float64(most)/(1-legend)
	wt, err := p.WriterTo(width, height, "svg")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
