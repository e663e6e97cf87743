// Package devserver runs the Temporal CLI's development server (pinned in
// tools/go.mod) as a child process, for `starter dev` and for integration
// tests that need a real Temporal server on a free port.
package devserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"
)

// Options for one dev server.
type Options struct {
	// Binary is the temporal CLI; see Binary().
	Binary string
	IP     string // default 127.0.0.1
	Port   int    // gRPC; 0 picks a free port
	UIPort int    // 0 picks a free port; -1 runs headless
	// DBFile persists state across runs (SQLite in WAL mode); empty keeps
	// everything in memory.
	DBFile string
	// SearchAttributes maps names to types (Keyword, Text, Int, ...).
	SearchAttributes map[string]string
	// UICodecEndpoint lets the Web UI decode encrypted payloads.
	UICodecEndpoint string
	// Log receives the server's output; nil discards it.
	Log *os.File
}

// Server is a running dev server.
type Server struct {
	Address string // host:port for the SDK
	UIURL   string // empty when headless
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// Binary returns the path of the pinned temporal CLI, building it on first
// use: `go tool -modfile=<repo>/tools/go.mod -n temporal`.
func Binary(ctx context.Context, repoRoot string) (string, error) {
	modfile := filepath.Join(repoRoot, "tools", "go.mod")
	cmd := exec.CommandContext(ctx, "go", "tool", "-modfile="+modfile, "-n", "temporal")
	cmd.Dir = repoRoot
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("devserver: building the Temporal CLI from %s failed: %v: %s", modfile, err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// RepoRoot finds the directory holding this module's go.mod, from dir up.
func RepoRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && bytes.Contains(b, []byte("module github.com/rebookhq/rebook\n")) {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("devserver: not inside the rebook repository (no go.mod for github.com/rebookhq/rebook)")
		}
	}
}

// FreePort asks the kernel for a free TCP port on ip.
func FreePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(ip string, port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// errExited is a server that stopped before it answered.
var errExited = errors.New("devserver: Temporal dev server exited during start-up")

// Start launches the dev server and returns once it answers health checks.
// On a port it picked itself, a server that exits at start-up (another
// test's server took the port between the check and the bind) is tried
// again on another, twice.
func Start(ctx context.Context, o Options) (*Server, error) {
	s, err := start(ctx, o)
	for attempt := 0; attempt < 2 && o.Port == 0 && errors.Is(err, errExited); attempt++ {
		s, err = start(ctx, o)
	}
	return s, err
}

func start(ctx context.Context, o Options) (*Server, error) {
	if o.IP == "" {
		o.IP = "127.0.0.1"
	}
	var err error
	if o.Port == 0 {
		if o.Port, err = FreePort(o.IP); err != nil {
			return nil, err
		}
	} else if !portFree(o.IP, o.Port) {
		return nil, fmt.Errorf("devserver: port %d on %s is in use: is another Temporal server running? Stop it, or choose another port", o.Port, o.IP)
	}
	args := []string{"server", "start-dev", "--ip", o.IP, "--port", strconv.Itoa(o.Port), "--log-level", "warn"}
	s := &Server{Address: net.JoinHostPort(o.IP, strconv.Itoa(o.Port)), exited: make(chan struct{})}
	switch {
	case o.UIPort < 0:
		args = append(args, "--headless")
	default:
		if o.UIPort == 0 {
			if o.UIPort, err = FreePort(o.IP); err != nil {
				return nil, err
			}
		} else if !portFree(o.IP, o.UIPort) {
			return nil, fmt.Errorf("devserver: Web UI port %d on %s is in use", o.UIPort, o.IP)
		}
		args = append(args, "--ui-port", strconv.Itoa(o.UIPort))
		if o.UICodecEndpoint != "" {
			args = append(args, "--ui-codec-endpoint", o.UICodecEndpoint)
		}
		s.UIURL = "http://" + net.JoinHostPort(o.IP, strconv.Itoa(o.UIPort))
	}
	if o.DBFile != "" {
		if err := os.MkdirAll(filepath.Dir(o.DBFile), 0o755); err != nil {
			return nil, err
		}
		args = append(args, "--db-filename", o.DBFile,
			"--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal")
	}
	for name, typ := range o.SearchAttributes {
		args = append(args, "--search-attribute", name+"="+typ)
	}
	s.cmd = exec.Command(o.Binary, args...)
	s.cmd.SysProcAttr = sysProcAttr()
	var early bytes.Buffer // what a server that fails at start-up says
	if o.Log != nil {
		s.cmd.Stdout, s.cmd.Stderr = o.Log, o.Log
	} else {
		s.cmd.Stderr = &limited{w: &early, n: 4096}
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("devserver: start %s: %w", o.Binary, err)
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.exited) }()

	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("%w: %v: %s", errExited, s.waitErr, strings.TrimSpace(early.String()))
		case <-ctx.Done():
			s.Stop()
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if healthy(ctx, s.Address) {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, errors.New("devserver: Temporal dev server did not become healthy within 90s")
		}
	}
}

func healthy(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: addr, Logger: quiet{}})
	if err != nil {
		return false
	}
	defer c.Close()
	_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
	return err == nil
}

// Stop asks the server to shut down (SIGINT), and kills it after 15 s.
func (s *Server) Stop() {
	if s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// Exited is closed when the server process ends, for whatever reason.
func (s *Server) Exited() <-chan struct{} { return s.exited }

// quiet drops the SDK's own logging during health polls.
type quiet struct{}

func (quiet) Debug(string, ...interface{}) {}
func (quiet) Info(string, ...interface{})  {}
func (quiet) Warn(string, ...interface{})  {}
func (quiet) Error(string, ...interface{}) {}

// limited writes the first n bytes to w and drops the rest.
type limited struct {
	w io.Writer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		_, _ = l.w.Write(p[:k])
		l.n -= k
	}
	return len(p), nil
}
