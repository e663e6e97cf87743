package dashboard

import (
	"bytes"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/rebookhq/rebook/internal/report"
	"github.com/rebookhq/rebook/internal/signin"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/internal/subject"
)

const day = "2006-01-02"

var (
	bys    = []string{"specialty", "team"}
	everys = []string{"day", "week", "month"}
)

// reportQuery reads the report's parameters from the URL: the last four
// weeks by specialty per week unless it says otherwise.
func (d *dashboard) reportQuery(r *http.Request) (store.ReportQuery, url.Values, error) {
	q := r.URL.Query()
	today := d.Now().In(subject.London())
	v := url.Values{"from": {today.AddDate(0, 0, -27).Format(day)}, "to": {today.Format(day)}, "by": {"specialty"}, "every": {"week"}}
	for k := range v {
		if s := q.Get(k); s != "" {
			v.Set(k, s)
		}
	}
	from, err := time.Parse(day, v.Get("from"))
	if err != nil {
		return store.ReportQuery{}, v, errors.New("from must be a day, YYYY-MM-DD")
	}
	to, err := time.Parse(day, v.Get("to"))
	if err != nil || to.Before(from) {
		return store.ReportQuery{}, v, errors.New("to must be a day, YYYY-MM-DD, not before from")
	}
	if to.Sub(from) > 3*366*24*time.Hour {
		return store.ReportQuery{}, v, errors.New("a report covers at most three years")
	}
	if !slices.Contains(bys, v.Get("by")) || !slices.Contains(everys, v.Get("every")) {
		return store.ReportQuery{}, v, errors.New("by must be specialty or team, and every day, week or month")
	}
	return store.ReportQuery{From: from, To: to.AddDate(0, 0, 1), By: v.Get("by"), Every: v.Get("every")}, v, nil
}

func (d *dashboard) reportRows(w http.ResponseWriter, r *http.Request) (store.ReportQuery, url.Values, []store.ReportRow, bool) {
	rq, v, err := d.reportQuery(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return rq, v, nil, false
	}
	rows, err := d.Store.Report(r.Context(), rq)
	if err != nil {
		d.Log.Error("dashboard: report", "err", err)
		http.Error(w, "could not make the report; try again", http.StatusInternalServerError)
		return rq, v, nil, false
	}
	return rq, v, rows, true
}

func (d *dashboard) reports(w http.ResponseWriter, r *http.Request) {
	rq, v, rows, ok := d.reportRows(w, r)
	if !ok {
		return
	}
	svg, err := report.Chart(rq.By, rows)
	if err != nil {
		d.Log.Error("dashboard: chart", "err", err)
	}
	records := make([][]string, len(rows))
	for i, row := range rows {
		records[i] = report.Record(row)
	}
	d.render(w, "reports", map[string]any{
		"Title": "Reports", "User": signin.FromContext(r.Context()),
		"From": v.Get("from"), "To": v.Get("to"), "By": rq.By, "Every": rq.Every, "Bys": bys, "Everys": everys,
		"Query": template.URL(v.Encode()), "Chart": template.HTML(withoutProlog(svg)),
		"Header": report.Header(rq.By), "Records": records,
	})
}

// withoutProlog drops the XML declaration so the SVG can sit in HTML.
func withoutProlog(svg []byte) []byte {
	if i := bytes.Index(svg, []byte("<svg")); i > 0 {
		return svg[i:]
	}
	return svg
}

func (d *dashboard) reportCSV(w http.ResponseWriter, r *http.Request) {
	rq, v, rows, ok := d.reportRows(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="rebook-requests-by-`+rq.By+`-`+v.Get("from")+`-to-`+v.Get("to")+`.csv"`)
	if err := report.CSV(w, rq.By, rows); err != nil {
		d.Log.Error("dashboard: report csv", "err", err)
	}
}

func (d *dashboard) reportSVG(w http.ResponseWriter, r *http.Request) {
	rq, _, rows, ok := d.reportRows(w, r)
	if !ok {
		return
	}
	svg, err := report.Chart(rq.By, rows)
	if err != nil {
		http.Error(w, "could not draw the chart", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	_, _ = w.Write(svg)
}
