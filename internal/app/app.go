// Package app builds Rebook's parts from its configuration, in one way for
// every process: the Temporal client (with the payload codec), the store,
// the PKB client on the stored grant, the Slack client, the activities,
// the worker and the front door. The worker, `starter serve`, `starter
// dev` and the end-to-end tests all build them here.
package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"go.temporal.io/api/enums/v1"
	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/rebookhq/rebook/activities"
	"github.com/rebookhq/rebook/internal/codec"
	"github.com/rebookhq/rebook/internal/config"
	"github.com/rebookhq/rebook/internal/dashboard"
	"github.com/rebookhq/rebook/internal/feed"
	"github.com/rebookhq/rebook/internal/frontdoor"
	"github.com/rebookhq/rebook/internal/grantflow"
	"github.com/rebookhq/rebook/internal/health"
	"github.com/rebookhq/rebook/internal/interactions"
	"github.com/rebookhq/rebook/internal/metrics"
	"github.com/rebookhq/rebook/internal/notify"
	"github.com/rebookhq/rebook/internal/pkb"
	"github.com/rebookhq/rebook/internal/pkbauth"
	"github.com/rebookhq/rebook/internal/signin"
	"github.com/rebookhq/rebook/internal/slackmsg"
	"github.com/rebookhq/rebook/internal/store"
	"github.com/rebookhq/rebook/internal/teams"
	"github.com/rebookhq/rebook/internal/wfclient"
	"github.com/rebookhq/rebook/workflows"
)

// Temporal dials Temporal with the codec, so every payload is sealed.
// With a registry, the SDK's metrics and the workflows' and activities'
// own go there (m may be nil).
func Temporal(ctx context.Context, cfg config.Config, log *slog.Logger, m *metrics.Registry) (client.Client, error) {
	opts := client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace, Logger: tlog.NewStructuredLogger(log),
		MetricsHandler: m.Handler()}
	tlsCfg, err := TemporalTLS(cfg)
	if err != nil {
		return nil, err
	}
	if tlsCfg != nil {
		opts.ConnectionOptions.TLS = tlsCfg
	}
	if cfg.TemporalAPIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(cfg.TemporalAPIKey)
	}
	if cfg.EncryptionKey != nil {
		dc, err := codec.DataConverter(cfg.EncryptionKey, cfg.OldEncryptionKeys...)
		if err != nil {
			return nil, err
		}
		opts.DataConverter = dc
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("temporal at %s: %w", cfg.TemporalAddress, err)
	}
	return c, nil
}

// TemporalTLS is the TLS configuration for Temporal from TEMPORAL_TLS_CERT,
// TEMPORAL_TLS_KEY and TEMPORAL_TLS_CA, or nil for plain connections. An
// API key alone (Temporal Cloud) gets TLS with the system's roots.
func TemporalTLS(cfg config.Config) (*tls.Config, error) {
	if cfg.TemporalTLSCert == "" && cfg.TemporalTLSCA == "" && cfg.TemporalAPIKey == "" {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TemporalTLSCert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.TemporalTLSCert, cfg.TemporalTLSKey)
		if err != nil {
			return nil, fmt.Errorf("%s / %s: %w", config.TemporalTLSCert, config.TemporalTLSKey, err)
		}
		t.Certificates = []tls.Certificate{pair}
	}
	if cfg.TemporalTLSCA != "" {
		pem, err := os.ReadFile(cfg.TemporalTLSCA)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", config.TemporalTLSCA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate in the file", config.TemporalTLSCA)
		}
		t.RootCAs = pool
	}
	return t, nil
}

// Conns are a process's connections, PostgreSQL and Temporal, and its
// metrics.
type Conns struct {
	Store    *store.Store
	Temporal client.Client
	Metrics  *metrics.Registry
}

// Connect opens the store and dials Temporal, within 30 seconds. With
// migrate it first brings the schema up to date (the worker told to with
// --migrate, `make dev`); without, it refuses a schema behind this release
// (ErrSchemaBehind), so `serve` and the worker run as roles with no DDL
// rights and never change the schema unasked.
func Connect(ctx context.Context, cfg config.Config, log *slog.Logger, migrate bool) (*Conns, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	open := store.Connect
	if migrate {
		open = store.Open
	}
	st, err := open(ctx, cfg.DatabaseURL, cfg.EncryptionKey, cfg.OldEncryptionKeys...)
	if err != nil {
		return nil, err
	}
	if err := st.CheckSchema(ctx); err != nil {
		st.Close()
		return nil, err
	}
	m := Metrics(cfg, st, log)
	tc, err := Temporal(ctx, cfg, log, m)
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Conns{Store: st, Temporal: tc, Metrics: m}, nil
}

// Close closes both connections.
func (c *Conns) Close() {
	c.Temporal.Close()
	c.Store.Close()
}

// PKB is the PKB client, reading its token from the store and asking the
// TokenKeeper for a refresh when the token runs out or PKB refuses it.
func PKB(cfg config.Config, st *store.Store, tc client.Client, m *metrics.Registry) (*pkb.Client, *pkbauth.Tokens, error) {
	tokens := &pkbauth.Tokens{Store: st, ClientID: cfg.PKBClientID, Nudge: wfclient.Client{Temporal: tc}.RefreshNow}
	pc, err := pkb.New(pkb.Options{BaseURL: cfg.PKBBaseURL, FHIRBaseURL: cfg.PKBFHIRBaseURL, Tokens: tokens, Metrics: m.Handler()})
	return pc, tokens, err
}

// StartTokenKeeper starts the TokenKeeper for this PKB client, or leaves
// the running one alone.
func StartTokenKeeper(ctx context.Context, tc client.Client, cfg config.Config) error {
	return wfclient.Client{Temporal: tc}.StartTokenKeeper(ctx, cfg.PKBClientID)
}

// OAuth is PKB's OAuth configuration for this deployment.
func OAuth(cfg config.Config) *pkb.OAuthConfig {
	return pkb.OAuth(cfg.PKBBaseURL, cfg.PKBClientID, cfg.PKBClientSecret, cfg.PKBRedirectURL)
}

// Notifier posts to each channel's service: Slack when SLACK_BOT_TOKEN is
// set, Teams when TEAMS_APP_ID is.
func Notifier(cfg config.Config, m *metrics.Registry) notify.Router {
	var r notify.Router
	if cfg.SlackBotToken != "" {
		r.Slack = Slack(cfg, m)
	}
	if cfg.TeamsAppID != "" {
		r.Teams = &notify.TeamsNotifier{Client: teams.New(teams.Config{AppID: cfg.TeamsAppID, AppPassword: cfg.TeamsAppPassword,
			TenantID: cfg.TeamsTenantID, LoginBase: cfg.TeamsLoginBase, ServiceURL: cfg.TeamsServiceURL}), Detail: cfg.SlackDetail}
	}
	return r
}

// ErrNoNotifier is a worker or front door with neither Slack nor Teams.
var ErrNoNotifier = errors.New("config: set SLACK_BOT_TOKEN (Slack) or TEAMS_APP_ID, TEAMS_APP_PASSWORD and TEAMS_TENANT_ID (Microsoft Teams): requests need somewhere to go")

// Slack is the Slack Web API client.
func Slack(cfg config.Config, m *metrics.Registry) *slackmsg.Client {
	c := slackmsg.NewCounted(cfg.SlackBotToken, cfg.SlackAPIURL, m.Handler())
	c.Detail = cfg.SlackDetail
	return c
}

// Metrics is a process's registry, with the read model's requests by
// state and the grant's state read at each scrape.
func Metrics(cfg config.Config, st *store.Store, log *slog.Logger) *metrics.Registry {
	m := metrics.New(log)
	m.WatchState(readModel{st: st, clientID: cfg.PKBClientID})
	return m
}

type readModel struct {
	st       *store.Store
	clientID string
}

func (r readModel) CountRequestsByState(ctx context.Context) (map[string]int, error) {
	return r.st.CountRequestsByState(ctx)
}

func (r readModel) Queries() int64 { return r.st.Queries() }

func (r readModel) GrantHealthy(ctx context.Context) (bool, error) {
	g, err := r.st.Grant(ctx, r.clientID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil && g.Status == store.GrantHealthy, err
}

// WorkerOptions tune the worker; the zero value is production's.
type WorkerOptions struct {
	// GrantRetryDelay is how long PKB work waits while no grant is in
	// force; 20 seconds if zero.
	GrantRetryDelay time.Duration
	// Metrics counts the activities' PKB and Slack calls (nil: not
	// counted); the Temporal client carries the rest.
	Metrics *metrics.Registry
}

// Activities wires every activity struct, each with only what it uses.
func Activities(cfg config.Config, st *store.Store, tc client.Client, o WorkerOptions) (activities.Set, error) {
	pc, tokens, err := PKB(cfg, st, tc, o.Metrics)
	if err != nil {
		return activities.Set{}, err
	}
	p := activities.PKB{Client: pc, GrantRetryDelay: o.GrantRetryDelay, Forbidden: tokens.Forbidden}
	if cfg.SlackBotToken == "" && cfg.TeamsAppID == "" {
		return activities.Set{}, ErrNoNotifier
	}
	out, links, wf := Notifier(cfg, o.Metrics), activities.Links{PublicURL: cfg.PublicURL}, wfclient.Client{Temporal: tc}
	notices := &activities.NoticeActivities{Out: out, Store: st, TriageChannel: cfg.TriageChannel, AdminChannel: cfg.AdminChannel, Links: links}
	// The feed's updates kept for a request not yet routed are applied
	// by the routing that gives the request its placer id.
	kept := &feed.Feed{Store: st, Requests: wf, Log: slog.Default()}
	return activities.Set{
		Poll:    &activities.PollActivities{PKB: p, Store: st, Requests: wf, States: workflows.ReadModelStates, Overlap: cfg.PollOverlap},
		Request: &activities.RequestActivities{PKB: p, Digest: st.PatientDigest},
		Route: &activities.RouteActivities{Store: st, Out: out, TriageChannel: cfg.TriageChannel, TriageSLAHours: cfg.TriageSLAHours,
			Links: links, States: workflows.ReadModelStates, Notices: notices, AdminChannel: cfg.AdminChannel, FirstCheckAfter: cfg.FirstCheckAfter,
			Pending: kept.ApplyPending},
		Appointments: &activities.AppointmentActivities{PKB: p, Store: st, Requests: wf, CallsPerHour: cfg.PKBCallsPerHour, FirstCheckAfter: cfg.FirstCheckAfter,
			Notices: notices},
		Notices:   notices,
		Grant:     &activities.GrantActivities{Store: st, OAuth: OAuth(cfg), Notices: notices, AdminChannel: cfg.AdminChannel, Links: links, PKB: pc},
		Retention: &activities.RetentionActivities{Store: st, Days: cfg.RetentionDays},
	}, nil
}

// WorkerNeeds are the settings the worker cannot run without.
// (and SLACK_BOT_TOKEN or TEAMS_APP_ID: ErrNoNotifier).
var WorkerNeeds = []string{config.PKBBaseURL, config.PKBFHIRBaseURL, config.PKBClientID, config.PKBClientSecret, config.PKBRedirectURL, config.EncryptionKey}

// RegisterSearchAttributes adds Rebook's search attributes to the
// namespace, skipping those already there.
func RegisterSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	add := map[string]enums.IndexedValueType{}
	for name, typ := range workflows.SearchAttributes {
		if _, ok := have.CustomAttributes[name]; ok {
			continue
		}
		v, ok := enums.IndexedValueType_shorthandValue[typ]
		if !ok {
			return fmt.Errorf("search attribute %s: unknown type %s", name, typ)
		}
		add[name] = enums.IndexedValueType(v)
	}
	if len(add) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: add})
	if err != nil {
		return fmt.Errorf("add search attributes: %w", err)
	}
	return nil
}

// EnsureNamespace creates the namespace, keeping closed histories for
// retention, when the cluster has none by that name (a self-hosted
// cluster's first start; Temporal Cloud's are made in its console), and
// says whether it did.
func EnsureNamespace(ctx context.Context, c client.Client, namespace string, retention time.Duration) (bool, error) {
	_, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	var missing *serviceerror.NamespaceNotFound
	switch {
	case err == nil:
		return false, nil
	case !errors.As(err, &missing):
		return false, fmt.Errorf("describe namespace %s: %w", namespace, err)
	}
	_, err = c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{Namespace: namespace,
		WorkflowExecutionRetentionPeriod: durationpb.New(retention)})
	var exists *serviceerror.NamespaceAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return false, fmt.Errorf("create namespace %s: %w", namespace, err)
	}
	return err == nil, nil
}

// TemporalRetention is how long Rebook asks Temporal to keep a closed
// request's history: long enough for operators to look back at a month's
// requests and replay them before a release, and shorter than
// REBOOK_RETENTION_DAYS, so the encrypted message facts go before the
// read model's identifiers do.
const TemporalRetention = 30 * 24 * time.Hour

// Retention says how long the namespace keeps closed workflows' histories
// and, when set is not zero and differs, sets it first. Temporal Cloud
// sets it in its own console or tcld; there the update is refused and the
// error says so.
func Retention(ctx context.Context, c client.Client, namespace string, set time.Duration) (time.Duration, error) {
	ns, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	if err != nil {
		return 0, fmt.Errorf("describe namespace %s: %w", namespace, err)
	}
	have := ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration()
	if set == 0 || set == have {
		return have, nil
	}
	_, err = c.WorkflowService().UpdateNamespace(ctx, &workflowservice.UpdateNamespaceRequest{Namespace: namespace,
		Config: &namespacepb.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(set)}})
	if err != nil {
		return have, fmt.Errorf("set namespace %s retention to %s: %w", namespace, set, err)
	}
	return set, nil
}

// Worker makes a worker on Rebook's task queue with every workflow and
// activity registered.
func Worker(cfg config.Config, st *store.Store, tc client.Client, o WorkerOptions) (worker.Worker, error) {
	acts, err := Activities(cfg, st, tc, o)
	if err != nil {
		return nil, err
	}
	// On SIGTERM, activities in flight get time to finish (a token
	// rotation to be saved, a Slack post to be recorded) before they are
	// cancelled.
	// Process-wide, and read when the first worker starts. A waiting
	// request out of the cache is replayed from its history (about 25
	// events) when it next wakes: a little CPU for a lot of memory at
	// thousands waiting (docs/performance.md).
	if cfg.WorkflowCache > 0 {
		worker.SetStickyWorkflowCacheSize(cfg.WorkflowCache)
	}
	opts := worker.Options{WorkerStopTimeout: 30 * time.Second}
	if cfg.BuildID != "" {
		// Worker Versioning: this build serves the workflows the
		// deployment's current (or ramping) version is given. Requests
		// wait for weeks, so they move to a new build at their next task
		// (auto-upgrade): their code changes ship behind GetVersion
		// patches, and `starter replay` proves the new build replays
		// every history before it is ramped.
		opts.DeploymentOptions = worker.DeploymentOptions{UseVersioning: true,
			Version:                   worker.WorkerDeploymentVersion{DeploymentName: workflows.DeploymentName, BuildID: cfg.BuildID},
			DefaultVersioningBehavior: workflow.VersioningBehaviorAutoUpgrade}
	}
	w := worker.New(tc, workflows.TaskQueue, opts)
	workflows.Register(w)
	activities.Register(w, acts)
	return w, nil
}

// Feed applies the PAS's copies of appointment updates to waiting
// requests, as evidence where they are, and counts them.
func Feed(cfg config.Config, st *store.Store, tc client.Client, log *slog.Logger, m *metrics.Registry) *feed.Feed {
	f := &feed.Feed{Store: st, Requests: wfclient.Client{Temporal: tc}, Log: log}
	if m != nil {
		f.Metrics = m.Handler()
	}
	return f
}

// WorkerHTTP is the worker's own small server: GET /healthz and, with a
// registry, GET /metrics (behind REBOOK_METRICS_TOKEN when set).
func WorkerHTTP(cfg config.Config, st *store.Store, tc client.Client, m *metrics.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", WorkerHealth(st, tc))
	if m != nil {
		mux.Handle("GET /metrics", metrics.Guard(cfg.MetricsToken, m.HTTP()))
	}
	return mux
}

// PublicMetrics is /metrics on the front door's public address: nil when
// REBOOK_METRICS_ADDR moves it to an address of its own (MetricsHTTP),
// and behind REBOOK_METRICS_TOKEN when that is set.
func PublicMetrics(cfg config.Config, m *metrics.Registry) http.Handler {
	if m == nil || cfg.MetricsAddr != "" {
		return nil
	}
	return metrics.Guard(cfg.MetricsToken, m.HTTP())
}

// MetricsHTTP serves GET /metrics alone, for REBOOK_METRICS_ADDR.
func MetricsHTTP(cfg config.Config, m *metrics.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Guard(cfg.MetricsToken, m.HTTP()))
	return mux
}

// WorkerHealth is the worker's /healthz: PostgreSQL and Temporal.
func WorkerHealth(st *store.Store, tc client.Client) http.Handler {
	return health.Handler(
		health.Check{Name: "postgres", Ping: st.Ping},
		health.Check{Name: "temporal", Ping: func(ctx context.Context) error {
			_, err := tc.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		}},
	)
}

// FrontDoor is `starter serve`'s handler: Slack interactions, the PKB
// grant flow when PKB is configured, sign-in, the dashboard and reports,
// the codec for operators, and the PAS feed's FHIR endpoint when
// REBOOK_FEED_TOKEN is set (fd, which the MLLP listener shares). With an
// identity provider configured it reads the provider's discovery document
// first. Wait on the interactions handler at shutdown for actions still
// running.
func FrontDoor(ctx context.Context, cfg config.Config, st *store.Store, tc client.Client, fd *feed.Feed, m *metrics.Registry, temporalUI string, log *slog.Logger) (http.Handler, *interactions.Handler, error) {
	wf := wfclient.Client{Temporal: tc}
	ih := &interactions.Handler{Requests: wf, Slack: Slack(cfg, m), SigningSecret: cfg.SlackSigningSecret, Log: log}
	var teamsHandler http.Handler
	if cfg.TeamsAppID != "" {
		teamsHandler = &interactions.Teams{Requests: wf, AppID: cfg.TeamsAppID, TenantID: cfg.TeamsTenantID, Log: log,
			Verifier: &teams.Verifier{AppID: cfg.TeamsAppID, OpenIDURL: cfg.TeamsOpenIDURL}}
	}
	var grant *grantflow.Handler
	dash := dashboard.Options{Requests: wf, TemporalUI: temporalUI, Namespace: cfg.TemporalNamespace}
	if cfg.PKBBaseURL != "" && cfg.PKBClientID != "" && cfg.PKBRedirectURL != "" {
		grant = &grantflow.Handler{Store: st, OAuth: OAuth(cfg), Log: log, Granted: wf.GrantReceived}
		pc, _, err := PKB(cfg, st, tc, m)
		if err != nil {
			return nil, nil, err
		}
		dash.Patients = pkbPatients{pc}
		dash.PKBClientID, dash.GrantLinkURL = cfg.PKBClientID, activities.Links{PublicURL: cfg.PublicURL}.GrantLink
	} else {
		log.Warn("PKB_BASE_URL, PKB_CLIENT_ID or PKB_REDIRECT_URL not set: /oauth/start is off, and request pages cannot show patient details")
	}
	var feedHandler http.Handler
	if cfg.FeedToken != "" && fd != nil {
		feedHandler = fd.HTTP(cfg.FeedToken)
	}
	auth, err := SignIn(ctx, cfg, st, log)
	if err != nil {
		return nil, nil, err
	}
	var checks []health.Check
	if fd != nil && cfg.MLLPAddr != "" {
		checks = append(checks, health.Check{Name: "mllp", Ping: fd.AcceptHealth})
	}
	h, err := frontdoor.New(frontdoor.Options{Health: checks,
		Store: st, Interactions: ih, Teams: teamsHandler, Grant: grant, Feed: feedHandler, EncryptionKey: cfg.EncryptionKey, OldEncryptionKeys: cfg.OldEncryptionKeys, CodecOrigin: temporalUI,
		Auth: auth, Log: log, Metrics: PublicMetrics(cfg, m), HSTS: strings.HasPrefix(cfg.PublicURL, "https://"),
		Dashboard: dash,
	})
	return h, ih, err
}

// SignIn is the web pages' sign-in: the trust's identity provider, or
// local users on a developer's machine.
func SignIn(ctx context.Context, cfg config.Config, st *store.Store, log *slog.Logger) (*signin.Auth, error) {
	auth, err := signin.New(ctx, signin.Options{
		PublicURL: cfg.PublicURL, Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID, ClientSecret: cfg.OIDCClientSecret,
		RolesClaim: cfg.OIDCRolesClaim, TeamsClaim: cfg.OIDCTeamsClaim, CodecAudience: cfg.CodecAudience,
		LocalUsers: cfg.LocalUsers, ListenAddr: cfg.HTTPAddr, Key: cfg.EncryptionKey, OldKeys: cfg.OldEncryptionKeys, Log: log, Sessions: st,
	})
	if err != nil {
		return nil, err
	}
	if !auth.Configured() {
		log.Warn("no sign-in configured (" + config.OIDCIssuer + " or " + config.LocalUsers + "): the dashboard, reports and codec answer 401 to everyone")
	}
	return auth, nil
}

// pkbPatients reads a request's patient details from PKB for its page.
type pkbPatients struct{ c *pkb.Client }

func (p pkbPatients) Patient(ctx context.Context, r store.Request) (dashboard.Patient, error) {
	var out dashboard.Patient
	if r.PatientID == "" {
		return out, errors.New("the request names no PKB patient")
	}
	pt, err := p.c.PatientByPublicID(ctx, r.PatientID)
	if err != nil {
		return out, err
	}
	out.NHSNumber = pkb.NHSNumberOf(pt).Number
	if pt.BirthDate != nil {
		out.BirthDate = *pt.BirthDate
	}
	for _, n := range pt.Name {
		parts := append([]string{}, n.Given...)
		if n.Family != nil {
			parts = append(parts, *n.Family)
		}
		if out.Name = strings.Join(parts, " "); out.Name != "" {
			break
		}
	}
	m, err := p.c.Message(ctx, r.MessageID, r.ReceivedAt.UnixMilli())
	if err != nil {
		return out, err
	}
	out.Subject, out.Text = m.Subject, m.Content
	return out, nil
}

// SetCurrentBuild makes buildID the Worker Deployment's current version:
// new requests and (auto-upgrading) waiting ones run on it from their next
// task. The server takes it once workers of that build have polled, so
// this waits for them, for up to a minute.
func SetCurrentBuild(ctx context.Context, tc client.Client, buildID string) error {
	h := tc.WorkerDeploymentClient().GetHandle(workflows.DeploymentName)
	return untilTaken(ctx, func() error {
		_, err := h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: buildID})
		return err
	})
}

// RampBuild sends percent of new work to buildID beside the current one.
func RampBuild(ctx context.Context, tc client.Client, buildID string, percent float32) error {
	h := tc.WorkerDeploymentClient().GetHandle(workflows.DeploymentName)
	return untilTaken(ctx, func() error {
		_, err := h.SetRampingVersion(ctx, client.WorkerDeploymentSetRampingVersionOptions{BuildID: buildID, Percentage: percent})
		return err
	})
}

func untilTaken(ctx context.Context, set func() error) error {
	if err := forAMinute(ctx, set); err != nil {
		return fmt.Errorf("worker deployment %s: %w (do workers of that build run with REBOOK_BUILD_ID set?)", workflows.DeploymentName, err)
	}
	return nil
}

// forAMinute tries f each second until it succeeds, for up to a minute:
// what a cluster takes to learn of a new namespace or a new build's
// workers. It returns f's last error.
func forAMinute(ctx context.Context, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

// RegisterSearchAttributesWhenReady is RegisterSearchAttributes on a
// namespace just made, which every service knows only seconds later.
func RegisterSearchAttributesWhenReady(ctx context.Context, c client.Client, namespace string) error {
	return forAMinute(ctx, func() error { return RegisterSearchAttributes(ctx, c, namespace) })
}
