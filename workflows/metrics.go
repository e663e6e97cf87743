package workflows

import (
	"strconv"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/rebookhq/rebook/internal/metrics"
)

// Metrics recorded here go through the SDK's replay-aware handler: a
// replayed workflow task does not count them again, and they add nothing
// to the history, so they need no workflow.GetVersion.

func (r *request) tags(extra ...string) map[string]string {
	tags := map[string]string{"type": orUnknown(r.facts.Type), "specialty": orUnknown(r.match.Specialty)}
	for i := 0; i+1 < len(extra); i += 2 {
		tags[extra[i]] = extra[i+1]
	}
	return tags
}

// routed counts the request posted, to a team or to triage, and the time
// from its PKB message to the post.
func (r *request) routed(ctx workflow.Context) {
	m := workflow.GetMetricsHandler(ctx).WithTags(r.tags())
	if r.route.Triage {
		m.Counter(metrics.RequestsTriaged).Inc(1)
	} else {
		m.Counter(metrics.RequestsRouted).Inc(1)
	}
	if !r.facts.ReceivedAt.IsZero() {
		m.Timer(metrics.MessageToPost).Record(workflow.Now(ctx).Sub(r.facts.ReceivedAt))
	}
}

// closed counts the request closed, by how, and the time from its Slack
// post to now.
func (r *request) closed(ctx workflow.Context) {
	m := workflow.GetMetricsHandler(ctx).WithTags(r.tags("state", r.state))
	m.Counter(metrics.RequestsCompleted).Inc(1)
	if posted, ok := slackTime(r.route.TS); ok {
		m.Timer(metrics.PostToClose).Record(workflow.Now(ctx).Sub(posted))
	}
}

// slackTime reads a Slack message timestamp ("1700000000.000100").
func slackTime(ts string) (time.Time, bool) {
	f, err := strconv.ParseFloat(ts, 64)
	if err != nil || f <= 0 {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}
