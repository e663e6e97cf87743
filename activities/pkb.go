package activities

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/samply/golang-fhir-models/fhir-models/fhir"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/rebookhq/rebook/internal/metrics"
	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/pkbauth"
)

// PKB is the PKB client as activities use it: its failures become
// Temporal's retry decisions.
type PKB struct {
	Client *pkb.Client
	// GrantRetryDelay is how long an activity waits before trying again
	// while no grant is in force (a retry reads the store, not PKB); 20
	// seconds if zero, so work resumes within 30 s of a re-grant.
	GrantRetryDelay time.Duration
	// Forbidden pauses all PKB work when a 403 turns out to be grant-wide.
	Forbidden func(ctx context.Context) error
}

// err turns a PKB failure into what Temporal should do with it: retry
// (after Retry-After, or a long pause while the grant is missing) or stop,
// with no patient data in the message. A 403 is asked again of a call
// that names no patient: refused too, the grant itself is withdrawn and
// all work pauses; answered, the refusal is this patient's record alone.
func (p PKB) err(ctx context.Context, err error) error {
	if pkb.IsKind(err, pkb.KindForbidden) && p.Forbidden != nil && p.Client != nil {
		if perr := p.Client.Probe(ctx); pkb.IsKind(perr, pkb.KindForbidden) {
			if ferr := p.Forbidden(ctx); ferr != nil {
				return ferr
			}
			err = pkbauth.ErrGrantNeeded
		}
	}
	if errors.Is(err, pkbauth.ErrGrantNeeded) {
		d := p.GrantRetryDelay
		if d == 0 {
			d = 20 * time.Second
		}
		return temporal.NewApplicationErrorWithOptions(err.Error(), "GrantNeeded", temporal.ApplicationErrorOptions{NextRetryDelay: d})
	}
	if errors.Is(err, pkbauth.ErrTokenExpired) {
		return temporal.NewApplicationErrorWithOptions(err.Error(), "TokenExpired", temporal.ApplicationErrorOptions{NextRetryDelay: 5 * time.Second})
	}
	var pe *pkb.Error
	if errors.As(err, &pe) {
		return temporal.NewApplicationErrorWithOptions(pe.Error(), "PKB:"+string(pe.Kind), temporal.ApplicationErrorOptions{
			NonRetryable: !pe.Retryable(), NextRetryDelay: pe.RetryAfter,
		})
	}
	return err
}

// search follows a search's next links, up to 21 pages.
func (p PKB) search(ctx context.Context, q pkb.AppointmentQuery) ([]fhir.Appointment, error) {
	page, err := p.Client.SearchAppointments(ctx, q)
	if err != nil {
		return nil, err
	}
	all := page.Appointments
	for i := 0; page.Next != "" && i < 20; i++ {
		if page, err = p.Client.NextAppointments(ctx, page.Next); err != nil {
			return nil, err
		}
		all = append(all, page.Appointments...)
	}
	return all, nil
}

// countPKB counts a PKB call the client does not count itself (the token
// endpoint's, through x/oauth2) with the client's series.
func countPKB(ctx context.Context, endpoint string, err error) {
	if !activity.IsActivity(ctx) {
		return
	}
	outcome := "200"
	var pe *pkb.Error
	switch {
	case errors.As(err, &pe) && pe.Status != 0:
		outcome = strconv.Itoa(pe.Status)
	case errors.As(err, &pe):
		outcome = string(pe.Kind)
	case err != nil:
		outcome = "error"
	}
	activity.GetMetricsHandler(ctx).WithTags(map[string]string{"endpoint": endpoint, "outcome": outcome}).Counter(metrics.PKBCalls).Inc(1)
}
