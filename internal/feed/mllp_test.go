package feed_test

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rebookhq/rebook/internal/feed"
	"github.com/rebookhq/rebook/internal/hl7"
)

// failing is a listener whose Accept fails, as when the process is out of
// file descriptors, until it is told to recover.
type failing struct {
	net.Listener
	failing atomic.Bool
	fails   atomic.Int32
}

func (l *failing) Accept() (net.Conn, error) {
	if l.failing.Load() {
		l.fails.Add(1)
		return nil, errors.New("accept tcp: too many open files")
	}
	return l.Listener.Accept()
}

// Issue 23, finding 5: an accept error no longer stops the MLLP listener
// for good, silently. It retries with a backoff, the health check is red
// while it cannot accept, and it serves again once it can.
func TestSecurityMLLPListenerSurvivesAcceptErrors(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := &failing{Listener: inner}
	l.failing.Store(true)
	f := &feed.Feed{Log: slog.New(slog.DiscardHandler)}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.ServeMLLP(ctx, l) }()

	require.Eventually(t, func() bool { return l.fails.Load() >= 3 }, 10*time.Second, 10*time.Millisecond, "it keeps trying")
	assert.ErrorContains(t, f.AcceptHealth(ctx), "cannot accept connections", "health is red meanwhile")
	select {
	case err := <-done:
		t.Fatalf("the listener stopped: %v", err)
	default:
	}

	l.failing.Store(false)
	conn, err := net.Dial("tcp", inner.Addr().String())
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	_, err = conn.Write(hl7.Frame([]byte("MSH|^~\\&|PAS|T|R|T|20270301090000||ADT^A01|c1|P|2.5\r")))
	require.NoError(t, err)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	raw, err := hl7.ReadFrame(bufio.NewReader(conn))
	require.NoError(t, err, "it answers again")
	ack, err := hl7.Parse(raw)
	require.NoError(t, err)
	assert.Equal(t, hl7.AckReject, ack.Field("MSA", 1, 0))
	assert.NoError(t, f.AcceptHealth(ctx), "health is green again")
	_ = conn.Close()
	stop()
	assert.NoError(t, <-done)
}
