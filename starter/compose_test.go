package main

import (
	"net"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/rebookhq/rebook/internal/app"
	"github.com/rebookhq/rebook/internal/config"
)

type composeService struct {
	Image       string
	Build       any
	Entrypoint  []string
	Command     []string
	Environment map[string]string
	Ports       []string
	Profiles    []string
	DependsOn   map[string]any `yaml:"depends_on"`
}

// interpolation is compose's ${VAR}, ${VAR:-default} and ${VAR:?error}.
var interpolation = regexp.MustCompile(`\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}`)

// loadCompose reads docker-compose.yml as `docker compose config` would
// with none of its variables set but the required ones, which get set.
func loadCompose(t *testing.T, set map[string]string) map[string]composeService {
	t.Helper()
	raw, err := os.ReadFile("../docker-compose.yml")
	require.NoError(t, err)
	text := interpolation.ReplaceAllStringFunc(string(raw), func(m string) string {
		p := interpolation.FindStringSubmatch(m)
		if v, ok := set[p[1]]; ok {
			return v
		}
		if p[2] == "?" {
			t.Fatalf("docker-compose.yml requires %s", p[1])
		}
		return p[3]
	})
	var f struct{ Services map[string]composeService }
	require.NoError(t, yaml.Unmarshal([]byte(text), &f))
	require.NotEmpty(t, f.Services)
	return f.Services
}

// configNames are the settings internal/config reads.
func configNames(t *testing.T) map[string]bool {
	names := map[string]bool{}
	_, err := config.Load(func(k string) string { names[k] = true; return "" })
	require.NoError(t, err)
	require.True(t, names[config.DatabaseURL])
	return names
}

// The compose file cannot be started on the project's machines (no
// container engine), so this checks what `up` would trip on: every
// service has an image or a build; every Rebook process is a command this
// build has; every setting is one internal/config reads, and each process
// has what it needs and loads without error; hosts are services; ports
// agree with the addresses the processes listen on and the URLs people
// use; the demo's extras are behind the profile.
func TestComposeFileAgreesWithConfig(t *testing.T) {
	key := "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=" // 32 bytes, base64
	set := demoEnv(t)
	set[config.EncryptionKey] = key
	svcs := loadCompose(t, set)
	known := configNames(t)

	published := map[string]map[string]string{} // service -> container port -> host port
	for name, s := range svcs {
		assert.True(t, s.Image != "" || s.Build != nil, "%s has neither image nor build", name)
		published[name] = map[string]string{}
		for _, p := range s.Ports {
			parts := strings.Split(p, ":")
			require.GreaterOrEqual(t, len(parts), 2, "%s: port %q", name, p)
			published[name][parts[len(parts)-1]] = parts[len(parts)-2]
			if len(parts) == 3 {
				assert.Equal(t, "127.0.0.1", parts[0], "%s publishes %s on loopback only", name, p)
			}
		}
		for dep := range s.DependsOn {
			d, ok := svcs[dep]
			require.True(t, ok, "%s depends on %s, which is not a service", name, dep)
			if len(s.Profiles) == 0 {
				assert.Empty(t, d.Profiles, "%s runs without a profile but depends on %s, which needs one", name, dep)
			}
		}
	}

	rebook := map[string]composeService{}
	for name, s := range svcs {
		if s.Build == nil {
			continue
		}
		switch {
		case slices.Equal(s.Entrypoint[:min(1, len(s.Entrypoint))], []string{"/usr/local/bin/temporal-server"}),
			len(s.Command) > 0 && s.Command[0] == "temporal-schema":
			continue // Temporal's own settings, checked below
		case len(s.Entrypoint) > 0:
			assert.Equal(t, "/usr/local/bin/worker", s.Entrypoint[0], name)
		default:
			require.NotEmpty(t, s.Command, "%s runs the image's starter with no command", name)
			_, ok := commands[s.Command[0]]
			assert.True(t, ok, "%s runs `starter %s`, which this build does not have", name, s.Command[0])
		}
		for k := range s.Environment {
			assert.True(t, known[k], "%s sets %s, which internal/config does not read", name, k)
		}
		rebook[name] = s
	}
	for _, want := range []string{"worker", "serve", "schedule", "migrate", "pkb-sim", "fake-slack", "sim-grant"} {
		require.Contains(t, rebook, want)
	}
	for _, demo := range []string{"pkb-sim", "fake-slack", "sim-grant"} {
		assert.Equal(t, []string{"demo"}, svcs[demo].Profiles, demo)
	}

	load := func(name string, need ...string) config.Config {
		t.Helper()
		env := rebook[name].Environment
		cfg, err := config.Load(func(k string) string { return env[k] }, need...)
		require.NoError(t, err, name)
		return cfg
	}
	worker := load("worker", app.WorkerNeeds...)
	serve := load("serve", config.EncryptionKey, config.SlackBotToken)
	assert.True(t, serve.SlackSigningSecret != "" || serve.SlackAppToken != "", "serve needs a signing secret or an app token")
	load("migrate", config.DatabaseURL)
	load("schedule")
	load("sim-grant", config.PKBBaseURL, config.PKBClientID, config.PKBClientSecret, config.PKBRedirectURL, config.EncryptionKey)

	hostPort := func(what, addr string) (string, string) {
		h, p, err := net.SplitHostPort(addr)
		require.NoError(t, err, what)
		return h, p
	}
	urlHost := func(what, raw string) (string, string) {
		u, err := url.Parse(raw)
		require.NoError(t, err, what)
		return hostPort(what, u.Host)
	}
	flagValue := func(args []string, name string) string {
		for i, a := range args {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				return v
			}
		}
		return ""
	}

	// Temporal: the address is the service's, with its ports published
	// and the codec the front door serves.
	h, p := hostPort(config.TemporalAddress, worker.TemporalAddress)
	assert.Equal(t, "temporal", h)
	temporal := svcs["temporal"]
	assert.Equal(t, p, published["temporal"]["7233"], "Temporal's gRPC port")
	assert.Equal(t, "--config-file", temporal.Command[0])
	assert.Equal(t, "/etc/temporal/cluster.yaml", temporal.Command[1], "the config the image carries (Dockerfile)")
	for _, svc := range []string{"frontend", "history", "matching", "worker"} {
		assert.Contains(t, temporal.Command, svc, "one process runs every service in compose")
	}
	assert.Equal(t, "0.0.0.0", temporal.Environment["TEMPORAL_BIND_IP"], "reachable from the other containers")
	// The server and its schema step reach the database the postgres
	// service makes, as its owner, with the names deploy/temporal/cluster.yaml reads.
	clusterYAML, err := os.ReadFile("../deploy/temporal/cluster.yaml")
	require.NoError(t, err)
	for _, name := range []string{"temporal", "temporal-schema"} {
		env := svcs[name].Environment
		assert.Equal(t, "postgres", env["TEMPORAL_DB_HOST"], name)
		assert.Equal(t, svcs["postgres"].Environment["POSTGRES_USER"], env["TEMPORAL_DB_USER"], name)
		assert.Equal(t, svcs["postgres"].Environment["POSTGRES_PASSWORD"], env["TEMPORAL_DB_PASSWORD"], name)
		for k := range env {
			assert.Contains(t, string(clusterYAML), `env "`+k+`"`, "%s sets %s, which the server's config reads", name, k)
		}
	}
	assert.Contains(t, svcs["temporal-schema"].DependsOn, "postgres")
	assert.Contains(t, temporal.DependsOn, "temporal-schema", "the schema before the server")
	assert.Equal(t, []string{"schedule", "--create-namespace"}, rebook["schedule"].Command,
		"a fresh cluster's namespace is made, with Rebook's search attributes (schedule registers them unless told not to)")
	// The Web UI image: published where people open it, pointed at the
	// frontend, decoding through the front door's codec.
	ui := svcs["temporal-ui"]
	assert.Equal(t, "temporal:7233", ui.Environment["TEMPORAL_ADDRESS"])
	assert.Equal(t, serve.PublicURL+"/codec", ui.Environment["TEMPORAL_CODEC_ENDPOINT"])
	uiPort := ui.Environment["TEMPORAL_UI_PORT"]
	assert.NotEmpty(t, published["temporal-ui"][uiPort], "the Web UI's port is published")
	assert.Equal(t, "http://localhost:"+published["temporal-ui"][uiPort], flagValue(rebook["serve"].Command, "--temporal-ui"))
	assert.Equal(t, "http://localhost:"+published["temporal-ui"][uiPort], ui.Environment["TEMPORAL_CORS_ORIGINS"])

	// PostgreSQL: migrate logs in as the owner the service creates; the
	// rest as the login migrate makes a member of the application role,
	// with the password it gives it.
	pg := svcs["postgres"].Environment
	mig, err := url.Parse(load("migrate", config.DatabaseURL).DatabaseURL)
	require.NoError(t, err)
	pw, _ := mig.User.Password()
	assert.Equal(t, "postgres", mig.Hostname())
	assert.Equal(t, pg["POSTGRES_USER"], mig.User.Username())
	assert.Equal(t, pg["POSTGRES_PASSWORD"], pw)
	assert.Equal(t, "/"+pg["POSTGRES_DB"], mig.Path)
	login := flagValue(rebook["migrate"].Command, "--login")
	require.NotEmpty(t, login, "migrate makes the services' login")
	for _, name := range []string{"worker", "serve", "schedule", "sim-grant"} {
		db, err := url.Parse(rebook[name].Environment[config.DatabaseURL])
		require.NoError(t, err)
		pw, _ := db.User.Password()
		assert.Equal(t, "postgres", db.Hostname(), name)
		assert.Equal(t, login, db.User.Username(), "%s logs in as the services' login, not the owner", name)
		assert.Equal(t, rebook["migrate"].Environment[config.DBLoginPassword], pw, name)
		assert.Equal(t, mig.Path, db.Path, name)
	}

	// The front door: it listens on the published port, people reach it
	// at the public URL, and PKB sends clinicians back to it.
	_, p = hostPort(config.HTTPAddr, serve.HTTPAddr)
	host, pub := urlHost(config.PublicURL, serve.PublicURL)
	assert.Equal(t, "localhost", host)
	assert.Equal(t, pub, published["serve"][p], "REBOOK_PUBLIC_URL's port is the one serve publishes")
	assert.Equal(t, serve.PublicURL+"/oauth/callback", serve.PKBRedirectURL)
	assert.Empty(t, serve.LocalUsers, "a published port is not loopback: no local users")
	assert.True(t, serve.Demo && worker.Demo, "the demo env file turns on demo mode")

	// The worker's health and metrics.
	_, p = hostPort("--health-addr", flagValue(rebook["worker"].Entrypoint, "--health-addr"))
	assert.NotEmpty(t, published["worker"][p])

	// The demo: PKB and Slack are the profile's services, on the ports
	// they listen on.
	h, p = urlHost(config.PKBBaseURL, worker.PKBBaseURL)
	assert.Equal(t, "pkb-sim", h)
	_, simPort := hostPort("sim --addr", flagValue(rebook["pkb-sim"].Command, "--addr"))
	assert.Equal(t, simPort, p)
	assert.Equal(t, worker.PKBBaseURL+"/fhir", worker.PKBFHIRBaseURL)
	h, p = urlHost(config.SlackAPIURL, worker.SlackAPIURL)
	assert.Equal(t, "fake-slack", h)
	_, slackPort := hostPort("fake-slack --addr", flagValue(rebook["fake-slack"].Command, "--addr"))
	assert.Equal(t, slackPort, p)
	assert.Contains(t, rebook["pkb-sim"].Command, "--auto-approve", "sim-grant needs a simulator that approves without asking")
	assert.Equal(t, simDefaultClientID, worker.PKBClientID, "the simulator registers this client")
	assert.Equal(t, simDefaultClientSecret, worker.PKBClientSecret)

	// The file is also valid for Compose v1 (no top-level name), so
	// either tool checks it where installed.
	ran := false
	for _, tool := range [][]string{{"docker", "compose"}, {"docker-compose"}} {
		path, err := exec.LookPath(tool[0])
		if err != nil || exec.Command(path, append(tool[1:], "version")...).Run() != nil {
			continue
		}
		args := append(tool[1:], "-f", "../docker-compose.yml", "--project-directory", "..", "--env-file", "../compose.demo.env", "config", "-q")
		cmd := exec.Command(path, args...)
		cmd.Env = append(os.Environ(), config.EncryptionKey+"="+key)
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, "%s config: %s", strings.Join(tool, " "), out)
		t.Logf("%s config: valid", strings.Join(tool, " "))
		ran = true
	}
	if !ran {
		t.Log("neither docker compose nor docker-compose is installed: the compose tool's own check was not run")
	}
}

// demoEnv reads compose.demo.env, the demo's settings.
func demoEnv(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile("../compose.demo.env")
	require.NoError(t, err)
	env := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		require.True(t, ok, "compose.demo.env: %q", line)
		env[k] = v
	}
	return env
}

// Finding 1: outside its demo, compose sets no secret: each one the
// processes need is required by name, none of the project's shipped
// values appears in the file, and the demo's env file is the only place
// they are, with demo mode on; without demo mode serve and the worker
// refuse them.
func TestSecurityComposeShipsNoSecret(t *testing.T) {
	raw, err := os.ReadFile("../docker-compose.yml")
	require.NoError(t, err)
	required := map[string]bool{}
	defaulted := map[string]string{}
	for _, m := range interpolation.FindAllStringSubmatch(string(raw), -1) {
		switch m[2] {
		case "?":
			required[m[1]] = true
		case "-":
			defaulted[m[1]] = m[3]
		}
	}
	for _, name := range []string{config.EncryptionKey, config.PKBClientSecret, config.SlackBotToken, config.DBLoginPassword, "POSTGRES_PASSWORD"} {
		assert.True(t, required[name], "compose requires %s", name)
	}
	for _, name := range []string{config.SlackSigningSecret, config.SlackAppToken, config.OIDCClientSecret, config.FeedToken, config.MetricsToken} {
		assert.Empty(t, defaulted[name], "%s has no default", name)
	}
	for name, value := range config.Shipped {
		assert.NotContains(t, string(raw), value, "the shipped %s is not in docker-compose.yml", name)
	}
	assert.Equal(t, "0", defaulted[config.Demo], "demo mode is off unless the demo asks")

	demo := demoEnv(t)
	assert.Equal(t, "demo", demo["COMPOSE_PROFILES"])
	assert.Equal(t, "1", demo[config.Demo])
	for name, value := range config.Shipped {
		assert.Equal(t, value, demo[name], name)
	}
	demo[config.EncryptionKey] = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="
	delete(demo, config.Demo)
	svcs := loadCompose(t, demo)
	for _, name := range []string{"serve", "worker"} {
		env := svcs[name].Environment
		cfg, err := config.Load(func(k string) string { return env[k] })
		require.NoError(t, err)
		assert.Error(t, cfg.RefuseShipped(), "%s with the shipped secrets but without demo mode", name)
	}
}
