package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rebookhq/rebook/internal/dev/child"
	"github.com/rebookhq/rebook/internal/dev/devserver"
)

// postgres is a PostgreSQL server of the run's own, in a temporary data
// directory, so that restarting it touches nothing else on the machine.
type postgres struct {
	bin, data, log string
	port           int
	cred           *syscall.Credential // set when run as root: PostgreSQL refuses root
	cmd            *exec.Cmd
	done           chan struct{}
}

// pgBinDir finds PostgreSQL's server binaries (Debian keeps them out of
// PATH, under /usr/lib/postgresql/<version>/bin).
func pgBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("chaos: PostgreSQL's initdb and postgres are not installed (Debian: apt-get install postgresql)")
}

// newPostgres makes a cluster in dir, with trust authentication for the
// postgres user over TCP on a free port.
func newPostgres(ctx context.Context, dir string) (*postgres, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	p := &postgres{bin: bin, data: filepath.Join(dir, "pgdata"), log: filepath.Join(dir, "postgres.log")}
	if err := os.MkdirAll(p.data, 0o700); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("chaos: running as root, PostgreSQL must run as another user and there is no postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for _, d := range []string{dir, p.data} {
			if err := os.Chown(d, uid, gid); err != nil {
				return nil, err
			}
		}
		f, err := os.Create(p.log)
		if err != nil {
			return nil, err
		}
		_ = f.Close()
		if err := os.Chown(p.log, uid, gid); err != nil {
			return nil, err
		}
	}
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", p.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("chaos: initdb: %w\n%s", err, out)
	}
	if p.port, err = devserver.FreePort("127.0.0.1"); err != nil {
		return nil, err
	}
	return p, nil
}

// URL is the connection string of the server's postgres database.
func (p *postgres) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// start runs the server and waits until it answers.
func (p *postgres) start(ctx context.Context) error {
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(p.bin, "postgres"), "-D", p.data, "-p", strconv.Itoa(p.port), "-h", "127.0.0.1", "-k", p.data,
		"-c", "max_connections=200")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("chaos: postgres: %w", err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(p.done) }()
	return child.Until(ctx, time.Minute, func() bool {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)), time.Second)
		if err != nil {
			return false
		}
		_ = c.Close()
		conn, err := pgx.Connect(ctx, p.URL())
		if err != nil {
			return false
		}
		_ = conn.Close(ctx)
		return true
	})
}

// crash stops the server in immediate mode (SIGQUIT): no checkpoint, the
// next start recovers from the WAL, as after a crash.
func (p *postgres) crash() { p.signal(syscall.SIGQUIT) }

// stop shuts the server down cleanly (SIGINT: fast shutdown).
func (p *postgres) stop() { p.signal(os.Interrupt) }

// signal sends sig and waits for the server to exit, killing it after 30 s.
func (p *postgres) signal(sig os.Signal) {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
