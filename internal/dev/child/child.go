// Package child runs Rebook's own binaries (the worker, `starter serve`)
// as child processes, configured through the environment as a deployment
// configures them, for the benchmark and the fault suite: each can be
// stopped, killed and started again, and read (its /metrics, its memory).
package child

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rebookhq/rebook/internal/config"
)

// Env is cfg as the environment a Rebook process reads (config.FromEnv),
// with extra ("NAME=value") after it; settings left zero are not set.
func Env(cfg config.Config, extra ...string) []string {
	var env []string
	set := func(name, v string) {
		if v != "" {
			env = append(env, name+"="+v)
		}
	}
	set(config.TemporalAddress, cfg.TemporalAddress)
	set(config.TemporalNamespace, cfg.TemporalNamespace)
	set(config.DatabaseURL, cfg.DatabaseURL)
	set(config.PKBBaseURL, cfg.PKBBaseURL)
	set(config.PKBFHIRBaseURL, cfg.PKBFHIRBaseURL)
	set(config.PKBClientID, cfg.PKBClientID)
	set(config.PKBClientSecret, cfg.PKBClientSecret)
	set(config.PKBRedirectURL, cfg.PKBRedirectURL)
	if len(cfg.EncryptionKey) > 0 {
		set(config.EncryptionKey, base64.StdEncoding.EncodeToString(cfg.EncryptionKey))
	}
	var old []string
	for _, k := range cfg.OldEncryptionKeys {
		old = append(old, base64.StdEncoding.EncodeToString(k))
	}
	set(config.OldEncryptionKeys, strings.Join(old, ","))
	set(config.SlackBotToken, cfg.SlackBotToken)
	set(config.SlackAPIURL, cfg.SlackAPIURL)
	set(config.SlackDetail, string(cfg.SlackDetail))
	set(config.SlackSigningSecret, cfg.SlackSigningSecret)
	set(config.TriageChannel, cfg.TriageChannel)
	set(config.AdminChannel, cfg.AdminChannel)
	set(config.HTTPAddr, cfg.HTTPAddr)
	set(config.PublicURL, cfg.PublicURL)
	set(config.FeedToken, cfg.FeedToken)
	if cfg.PKBCallsPerHour > 0 {
		set(config.PKBCallsPerHour, strconv.Itoa(cfg.PKBCallsPerHour))
	}
	if cfg.FirstCheckAfter > 0 {
		set(config.FirstCheckAfter, cfg.FirstCheckAfter.String())
	}
	if cfg.TriageSLAHours > 0 {
		set(config.TriageSLAHours, strconv.Itoa(cfg.TriageSLAHours))
	}
	if cfg.RetentionDays > 0 {
		set(config.RetentionDays, strconv.Itoa(cfg.RetentionDays))
	}
	return append(env, extra...)
}

// Process is one child process, which can be started again after it
// stops.
type Process struct {
	binary string
	args   []string
	env    []string
	log    string
	cmd    *exec.Cmd
	done   chan struct{}
}

// Start runs binary with args and env (added to this process's own),
// appending its output to the file at log.
func Start(binary string, args, env []string, log string) (*Process, error) {
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("%s: %w (build it first: go build -o bin/ ./worker ./starter)", binary, err)
	}
	p := &Process{binary: binary, args: args, env: env, log: log}
	return p, p.Start()
}

// Start starts the process again, after Stop or Kill.
func (p *Process) Start() error {
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.binary, p.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), p.env...)
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return err
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(p.done) }()
	return nil
}

// Running says whether the process has not exited.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Kill ends the process at once (SIGKILL), as a crash or an OOM kill
// would, and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop asks the process to stop (SIGINT, as Ctrl-C or a deployment's
// SIGTERM), and kills it if it has not within 40 s.
func (p *Process) Stop() {
	if !p.Running() {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(40 * time.Second):
		p.Kill()
	}
}

// Log is the path of the process's output.
func (p *Process) Log() string { return p.log }

// Status reads a memory line of the process's /proc status (VmHWM: its
// high-water resident set, VmRSS: now), in MiB; 0 if it cannot.
func (p *Process) Status(field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// Scrape sums each series of a Prometheus text page by name.
func Scrape(ctx context.Context, u string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name := line[:strings.IndexAny(line, "{ ")]
		v, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if err == nil {
			out[name] += v
		}
	}
	return out, sc.Err()
}

// Until polls cond every 50 ms until it holds, timeout passes or ctx
// ends.
func Until(ctx context.Context, timeout time.Duration, cond func() bool) error {
	return UntilEvery(ctx, timeout, 50*time.Millisecond, cond)
}

// UntilEvery polls cond every interval until it holds, timeout passes or
// ctx ends.
func UntilEvery(ctx context.Context, timeout, every time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out after " + timeout.String())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
	return nil
}
