// Package config reads Rebook's settings from the environment, in one place.
// Each command names the settings it needs; a missing or malformed one stops
// that command at start-up with one line naming the variable, and never the
// value, since several are secrets.
package config

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rebookhq/rebook/internal/notify"
	"github.com/rebookhq/rebook/internal/signin"
	"github.com/rebookhq/rebook/internal/slackmsg"
)

// The environment variables. Deployments and outside checks rely on these
// names: keep them exactly.
const (
	TemporalAddress    = "TEMPORAL_ADDRESS"
	TemporalNamespace  = "TEMPORAL_NAMESPACE"
	DatabaseURL        = "DATABASE_URL"
	PKBBaseURL         = "PKB_BASE_URL"
	PKBFHIRBaseURL     = "PKB_FHIR_BASE_URL"
	PKBClientID        = "PKB_CLIENT_ID"
	PKBClientSecret    = "PKB_CLIENT_SECRET"
	PKBRedirectURL     = "PKB_REDIRECT_URL"
	SlackBotToken      = "SLACK_BOT_TOKEN"
	SlackAPIURL        = "SLACK_API_URL"
	SlackSigningSecret = "SLACK_SIGNING_SECRET"
	SlackAppToken      = "SLACK_APP_TOKEN"
	EncryptionKey      = "REBOOK_ENCRYPTION_KEY"
	HTTPAddr           = "REBOOK_HTTP_ADDR"
	PublicURL          = "REBOOK_PUBLIC_URL"
	TriageChannel      = "REBOOK_TRIAGE_CHANNEL"
	AdminChannel       = "REBOOK_ADMIN_CHANNEL"
	TriageSLAHours     = "REBOOK_TRIAGE_SLA_HOURS"
	PollOverlap        = "REBOOK_POLL_OVERLAP"
	TemporalTLSCert    = "TEMPORAL_TLS_CERT"
	TemporalTLSKey     = "TEMPORAL_TLS_KEY"
	TemporalTLSCA      = "TEMPORAL_TLS_CA"
	TemporalAPIKey     = "TEMPORAL_API_KEY"
	PKBCallsPerHour    = "REBOOK_PKB_CALLS_PER_HOUR"
	WorkflowCache      = "REBOOK_WORKFLOW_CACHE"
	FirstCheckAfter    = "REBOOK_FIRST_CHECK_AFTER"
	MLLPAddr           = "REBOOK_MLLP_ADDR"
	MLLPTLSCert        = "REBOOK_MLLP_TLS_CERT"
	MLLPTLSKey         = "REBOOK_MLLP_TLS_KEY"
	MLLPClientCA       = "REBOOK_MLLP_CLIENT_CA"
	MLLPPlaintext      = "REBOOK_MLLP_PLAINTEXT"
	MetricsToken       = "REBOOK_METRICS_TOKEN"
	MetricsAddr        = "REBOOK_METRICS_ADDR"
	FeedToken          = "REBOOK_FEED_TOKEN"
	OIDCIssuer         = "REBOOK_OIDC_ISSUER"
	OIDCClientID       = "REBOOK_OIDC_CLIENT_ID"
	OIDCClientSecret   = "REBOOK_OIDC_CLIENT_SECRET"
	OIDCRolesClaim     = "REBOOK_OIDC_ROLES_CLAIM"
	OIDCTeamsClaim     = "REBOOK_OIDC_TEAMS_CLAIM"
	CodecAudience      = "REBOOK_CODEC_AUDIENCE"
	LocalUsers         = "REBOOK_LOCAL_USERS"
	RetentionDays      = "REBOOK_RETENTION_DAYS"
	OldEncryptionKeys  = "REBOOK_ENCRYPTION_OLD_KEYS"
	SlackDetail        = "REBOOK_SLACK_DETAIL"
	Demo               = "REBOOK_DEMO"
	DBLoginPassword    = "REBOOK_DB_LOGIN_PASSWORD"
	TeamsAppID         = "TEAMS_APP_ID"
	TeamsAppPassword   = "TEAMS_APP_PASSWORD"
	TeamsTenantID      = "TEAMS_TENANT_ID"
	TeamsServiceURL    = "TEAMS_SERVICE_URL"
	TeamsLoginBase     = "TEAMS_LOGIN_BASE"
	TeamsOpenIDURL     = "TEAMS_OPENID_URL"
	BuildID            = "REBOOK_BUILD_ID"
)

// Shipped are the secrets this project ships for its demos (`make dev`,
// the simulator, compose's demo profile). Anyone who has read the project
// knows them, so `serve` and the worker refuse them outside demo mode.
var Shipped = map[string]string{
	PKBClientSecret:    "rebook-local-secret",
	SlackSigningSecret: "local-signing-secret",
	SlackBotToken:      "xoxb-local-fake",
}

// Defaults suit a developer's machine; production sets every value.
var defaults = map[string]string{
	TemporalAddress:   "127.0.0.1:7233",
	TemporalNamespace: "default",
	DatabaseURL:       "postgres://postgres@127.0.0.1:5432/rebook?sslmode=disable",
	SlackAPIURL:       "https://slack.com/api/",
	HTTPAddr:          "127.0.0.1:8080",
	TriageChannel:     "rebook-triage",
	AdminChannel:      "rebook-admin",
	TriageSLAHours:    "24",
	PollOverlap:       "10m",
	PKBCallsPerHour:   "3000",
	WorkflowCache:     "2000",
	FirstCheckAfter:   "5m",
	OIDCRolesClaim:    "roles",
	OIDCTeamsClaim:    "groups",
	RetentionDays:     "90",
	SlackDetail:       string(slackmsg.DetailAppointment),
	TeamsServiceURL:   "https://smba.trafficmanager.net/teams/",
	TeamsLoginBase:    "https://login.microsoftonline.com",
	TeamsOpenIDURL:    "https://login.botframework.com/v1/.well-known/openidconfiguration",
}

// Config holds every setting. EncryptionKey is decoded; the rest are as set.
type Config struct {
	TemporalAddress    string
	TemporalNamespace  string
	DatabaseURL        string
	PKBBaseURL         string
	PKBFHIRBaseURL     string
	PKBClientID        string
	PKBClientSecret    string
	PKBRedirectURL     string
	SlackBotToken      string
	SlackAPIURL        string
	SlackSigningSecret string
	SlackAppToken      string
	EncryptionKey      []byte
	// OldEncryptionKeys open what earlier keys sealed (histories of
	// requests in flight, tokens not yet re-sealed); nothing is sealed
	// under them.
	OldEncryptionKeys [][]byte
	HTTPAddr          string
	PublicURL         string
	TriageChannel     string
	AdminChannel      string
	// TriageSLAHours is how soon a triaged request is due.
	TriageSLAHours int
	// PollOverlap is how far behind its cursor each message poll reads
	// again, for messages PKB stores late.
	PollOverlap time.Duration
	// Temporal's TLS: the client certificate and key files for mTLS, the
	// CA file to trust; and an API key (Temporal Cloud), which implies TLS.
	TemporalTLSCert string
	TemporalTLSKey  string
	TemporalTLSCA   string
	TemporalAPIKey  string
	// PKBCallsPerHour is the watcher's PKB budget; FirstCheckAfter is when
	// a routed or claimed request's patient is first asked about.
	PKBCallsPerHour int
	// WorkflowCache is how many workflows a worker keeps in memory
	// between their tasks (Temporal's sticky cache).
	WorkflowCache   int
	FirstCheckAfter time.Duration
	// MLLPAddr is where `starter serve` listens for the PAS's HL7 v2 SIU
	// copies (off when empty); FeedToken is the bearer secret for POST
	// /feed/fhir/Appointment (off when empty).
	MLLPAddr  string
	FeedToken string
	// The MLLP listener's TLS: its certificate and key (PEM files), and
	// the CA whose client certificates it requires; MLLPPlaintext accepts
	// plain MLLP off loopback on purpose.
	MLLPTLSCert, MLLPTLSKey, MLLPClientCA string
	MLLPPlaintext                         bool
	// MetricsToken, when set, is the bearer token a scraper must present
	// for /metrics; MetricsAddr, when set, is where `starter serve`
	// serves /metrics instead of on its public address.
	MetricsToken string
	MetricsAddr  string
	// Sign-in for the web pages: the trust's OpenID Connect provider, the
	// claims that carry roles and teams, the audience of access tokens
	// the Temporal Web UI forwards to the codec; or, on a developer's
	// machine only, local users.
	OIDCIssuer       string
	OIDCClientID     string
	OIDCClientSecret string
	OIDCRolesClaim   string
	OIDCTeamsClaim   string
	CodecAudience    string
	LocalUsers       []signin.LocalUser
	// RetentionDays is how long after a request closes its patient
	// identifiers and free text are kept in PostgreSQL.
	RetentionDays int
	// SlackDetail is how much a request's Slack card shows.
	SlackDetail slackmsg.Detail
	// Teams: the bot's Entra app id and client secret, the trust's
	// tenant, the Bot Connector's service URL before Teams names one, and
	// (for tests and sovereign clouds) the token authority and the Bot
	// Framework's OpenID metadata.
	TeamsAppID, TeamsAppPassword, TeamsTenantID     string
	TeamsServiceURL, TeamsLoginBase, TeamsOpenIDURL string
	// BuildID, when set, opts the worker into Temporal's Worker
	// Versioning as this build of the "rebook" deployment (starter deploy
	// makes a build current or ramps it).
	BuildID string
	// DBLoginPassword is the password `starter migrate --login` gives
	// the login serve and the worker use.
	DBLoginPassword string
	// Demo allows the Shipped secrets: on for `make dev` and compose's
	// demo profile, never in a trust's deployment.
	Demo bool
}

// RefuseShipped is the error `serve` and the worker stop with when a
// Shipped secret is set outside demo mode.
func (c Config) RefuseShipped() error {
	if c.Demo {
		return nil
	}
	set := map[string]string{PKBClientSecret: c.PKBClientSecret, SlackSigningSecret: c.SlackSigningSecret, SlackBotToken: c.SlackBotToken}
	for _, name := range []string{PKBClientSecret, SlackSigningSecret, SlackBotToken} {
		if set[name] == Shipped[name] {
			return &Error{name, "is the value Rebook ships for demos, which anyone who has read the project knows: set the trust's own, or " + Demo + "=1 for a demo"}
		}
	}
	return nil
}

// Error names the variable at fault and why, never its value.
type Error struct {
	Var    string
	Reason string
}

func (e *Error) Error() string { return "config: " + e.Var + " " + e.Reason }

// FromEnv reads the process environment; see Load.
func FromEnv(need ...string) (Config, error) { return Load(os.Getenv, need...) }

// Load reads every setting through getenv, applies defaults, checks the
// form of every value that is set, and requires the ones in need.
func Load(getenv func(string) string, need ...string) (Config, error) {
	get := func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return defaults[name]
	}
	c := Config{
		TemporalAddress:    get(TemporalAddress),
		TemporalNamespace:  get(TemporalNamespace),
		DatabaseURL:        get(DatabaseURL),
		PKBBaseURL:         strings.TrimRight(get(PKBBaseURL), "/"),
		PKBFHIRBaseURL:     strings.TrimRight(get(PKBFHIRBaseURL), "/"),
		PKBClientID:        get(PKBClientID),
		PKBClientSecret:    get(PKBClientSecret),
		PKBRedirectURL:     get(PKBRedirectURL),
		SlackBotToken:      get(SlackBotToken),
		SlackAPIURL:        get(SlackAPIURL),
		SlackSigningSecret: get(SlackSigningSecret),
		SlackAppToken:      get(SlackAppToken),
		HTTPAddr:           get(HTTPAddr),
		PublicURL:          strings.TrimRight(get(PublicURL), "/"),
		TriageChannel:      strings.TrimPrefix(get(TriageChannel), "#"),
		AdminChannel:       strings.TrimPrefix(get(AdminChannel), "#"),
		TemporalTLSCert:    get(TemporalTLSCert),
		TemporalTLSKey:     get(TemporalTLSKey),
		TemporalTLSCA:      get(TemporalTLSCA),
		TemporalAPIKey:     get(TemporalAPIKey),
		MLLPAddr:           get(MLLPAddr),
		FeedToken:          get(FeedToken),
		MLLPTLSCert:        get(MLLPTLSCert),
		MLLPTLSKey:         get(MLLPTLSKey),
		MLLPClientCA:       get(MLLPClientCA),
		MetricsToken:       get(MetricsToken),
		MetricsAddr:        get(MetricsAddr),
		OIDCIssuer:         strings.TrimRight(get(OIDCIssuer), "/"),
		OIDCClientID:       get(OIDCClientID),
		OIDCClientSecret:   get(OIDCClientSecret),
		OIDCRolesClaim:     get(OIDCRolesClaim),
		OIDCTeamsClaim:     get(OIDCTeamsClaim),
		CodecAudience:      get(CodecAudience),
		DBLoginPassword:    get(DBLoginPassword),
		TeamsAppID:         get(TeamsAppID),
		TeamsAppPassword:   get(TeamsAppPassword),
		TeamsTenantID:      get(TeamsTenantID),
		TeamsServiceURL:    get(TeamsServiceURL),
		TeamsLoginBase:     strings.TrimRight(get(TeamsLoginBase), "/"),
		TeamsOpenIDURL:     get(TeamsOpenIDURL),
		BuildID:            get(BuildID),
	}
	if v := get(LocalUsers); v != "" {
		users, err := signin.ParseLocalUsers(v)
		if err != nil {
			return Config{}, &Error{LocalUsers, err.Error()}
		}
		c.LocalUsers = users
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < 16 {
		return Config{}, &Error{MetricsToken, "must be at least 16 characters (a random secret)"}
	}
	if c.FeedToken != "" && len(c.FeedToken) < 16 {
		return Config{}, &Error{FeedToken, "must be at least 16 characters (a random secret)"}
	}
	switch get(Demo) {
	case "", "0", "false":
	case "1", "true":
		c.Demo = true
	default:
		return Config{}, &Error{Demo, "must be 1 (allow the demo's shipped secrets) or 0"}
	}
	switch v := get(MLLPPlaintext); v {
	case "", "0", "false":
	case "1", "true":
		c.MLLPPlaintext = true
	default:
		return Config{}, &Error{MLLPPlaintext, "must be 1 (accept plain MLLP off loopback) or 0"}
	}
	if (c.MLLPTLSCert == "") != (c.MLLPTLSKey == "") {
		return Config{}, &Error{MLLPTLSKey, "and " + MLLPTLSCert + " must be set together"}
	}
	if c.MLLPClientCA != "" && c.MLLPTLSCert == "" {
		return Config{}, &Error{MLLPClientCA, "needs " + MLLPTLSCert + " and " + MLLPTLSKey + ": client certificates are asked for over TLS"}
	}
	if (c.TemporalTLSCert == "") != (c.TemporalTLSKey == "") {
		return Config{}, &Error{TemporalTLSKey, "and " + TemporalTLSCert + " must be set together"}
	}
	for _, f := range []struct{ name, path string }{{TemporalTLSCert, c.TemporalTLSCert}, {TemporalTLSKey, c.TemporalTLSKey}, {TemporalTLSCA, c.TemporalTLSCA},
		{MLLPTLSCert, c.MLLPTLSCert}, {MLLPTLSKey, c.MLLPTLSKey}, {MLLPClientCA, c.MLLPClientCA}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return Config{}, &Error{f.name, "names a file that cannot be read"}
		}
	}
	if c.PublicURL == "" && c.HTTPAddr != "" {
		c.PublicURL = "http://" + c.HTTPAddr
	}

	for _, name := range need {
		if get(name) == "" {
			return Config{}, &Error{name, "is not set"}
		}
	}

	checks := []struct {
		name, value string
		check       func(string) string
	}{
		{TemporalAddress, c.TemporalAddress, hostPort},
		{HTTPAddr, c.HTTPAddr, hostPort},
		{MLLPAddr, c.MLLPAddr, hostPort},
		{MetricsAddr, c.MetricsAddr, hostPort},
		{DatabaseURL, c.DatabaseURL, postgresURL},
		{PKBBaseURL, c.PKBBaseURL, httpURL},
		{PKBFHIRBaseURL, c.PKBFHIRBaseURL, httpURL},
		{PKBRedirectURL, c.PKBRedirectURL, httpURL},
		{SlackAPIURL, c.SlackAPIURL, httpURL},
		{PublicURL, c.PublicURL, httpURL},
		{OIDCIssuer, c.OIDCIssuer, httpURL},
		{TeamsServiceURL, c.TeamsServiceURL, httpURL},
		{TeamsLoginBase, c.TeamsLoginBase, httpURL},
		{TeamsOpenIDURL, c.TeamsOpenIDURL, httpURL},
		{SlackBotToken, c.SlackBotToken, prefixed("xoxb-")},
		{SlackAppToken, c.SlackAppToken, prefixed("xapp-")},
		{TriageChannel, c.TriageChannel, channel},
		{AdminChannel, c.AdminChannel, channel},
	}
	for _, ch := range checks {
		if ch.value == "" {
			continue
		}
		if reason := ch.check(ch.value); reason != "" {
			return Config{}, &Error{ch.name, reason}
		}
	}
	if c.TeamsAppID != "" && (c.TeamsAppPassword == "" || c.TeamsTenantID == "") {
		return Config{}, &Error{TeamsAppID, "needs " + TeamsAppPassword + " and " + TeamsTenantID + " as well"}
	}
	if c.OIDCIssuer != "" && (c.OIDCClientID == "" || c.OIDCClientSecret == "") {
		return Config{}, &Error{OIDCClientID, "and " + OIDCClientSecret + " must be set with " + OIDCIssuer}
	}
	n, err := strconv.Atoi(get(TriageSLAHours))
	if err != nil || n < 1 || n > 24*365 {
		return Config{}, &Error{TriageSLAHours, "must be a whole number of hours from 1 to 8760"}
	}
	c.TriageSLAHours = n
	d, err := time.ParseDuration(get(PollOverlap))
	if err != nil || d < 0 || d > 7*24*time.Hour {
		return Config{}, &Error{PollOverlap, "must be a duration from 0s to 168h, such as 10m"}
	}
	c.PollOverlap = d
	if c.PKBCallsPerHour, err = strconv.Atoi(get(PKBCallsPerHour)); err != nil || c.PKBCallsPerHour < 1 || c.PKBCallsPerHour > 1_000_000 {
		return Config{}, &Error{PKBCallsPerHour, "must be a whole number of calls from 1 to 1000000"}
	}
	if c.WorkflowCache, err = strconv.Atoi(get(WorkflowCache)); err != nil || c.WorkflowCache < 10 || c.WorkflowCache > 1_000_000 {
		return Config{}, &Error{WorkflowCache, "must be a whole number of workflows from 10 to 1000000"}
	}
	if c.FirstCheckAfter, err = time.ParseDuration(get(FirstCheckAfter)); err != nil || c.FirstCheckAfter < time.Second || c.FirstCheckAfter > 24*time.Hour {
		return Config{}, &Error{FirstCheckAfter, "must be a duration from 1s to 24h, such as 5m"}
	}
	if c.SlackDetail, err = slackmsg.ParseDetail(get(SlackDetail)); err != nil {
		return Config{}, &Error{SlackDetail, err.Error()}
	}
	if c.RetentionDays, err = strconv.Atoi(get(RetentionDays)); err != nil || c.RetentionDays < 1 || c.RetentionDays > 3650 {
		return Config{}, &Error{RetentionDays, "must be a whole number of days from 1 to 3650"}
	}
	if v := get(EncryptionKey); v != "" {
		key, err := DecodeKey(v)
		if err != nil {
			return Config{}, &Error{EncryptionKey, err.Error()}
		}
		c.EncryptionKey = key
	}
	if v := get(OldEncryptionKeys); v != "" {
		if c.EncryptionKey == nil {
			return Config{}, &Error{OldEncryptionKeys, "is set without " + EncryptionKey}
		}
		for i, part := range strings.Split(v, ",") {
			key, err := DecodeKey(strings.TrimSpace(part))
			if err != nil {
				return Config{}, &Error{OldEncryptionKeys, fmt.Sprintf("key %d %s", i+1, err)}
			}
			c.OldEncryptionKeys = append(c.OldEncryptionKeys, key)
		}
	}
	return c, nil
}

// DecodeKey reads a 32-byte AES-256 key written as base64 (standard or URL
// alphabet, padded or not) or as 64 hex digits.
func DecodeKey(v string) ([]byte, error) {
	if len(v) == 64 {
		if b, err := hex.DecodeString(v); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(v); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("must decode to 32 bytes, not %d (make one with: openssl rand -base64 32)", len(b))
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("must be 32 bytes written as base64 or 64 hex digits (make one with: openssl rand -base64 32)")
}

func hostPort(v string) string {
	if _, port, err := net.SplitHostPort(v); err != nil || port == "" {
		return "must be host:port"
	}
	return ""
}

func httpURL(v string) string {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "must be an http:// or https:// URL"
	}
	return ""
}

func postgresURL(v string) string {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return "must be a postgres:// URL"
	}
	return ""
}

func prefixed(p string) func(string) string {
	return func(v string) string {
		if !strings.HasPrefix(v, p) {
			return "must start with " + p
		}
		return ""
	}
}

func channel(v string) string {
	if _, _, err := notify.Parse(v); err != nil {
		return "must be a Slack channel name or id, or teams:<channel id>"
	}
	return ""
}
