package feed_test

import (
	"bufio"
	"context"
	"errors"
	"io"
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

// mllpServer serves f's MLLP on a loopback port until the test ends.
func mllpServer(t *testing.T, f *feed.Feed) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.ServeMLLP(ctx, l) }()
	t.Cleanup(func() { stop(); <-done })
	return l.Addr().String()
}

// closedByServer reads until the server closes conn; the deadline is a
// safety net for a server that never does, not a measure.
func closedByServer(t *testing.T, conn net.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := io.Copy(io.Discard, conn)
	return err == nil // EOF: closed by the other end
}

// Finding 4: a message that has started must keep coming: a peer that
// stops mid-frame, or trickles bytes under the gap for longer than a
// message may take, is cut off; and the listener serves a bounded number
// of connections, closing one more at once.
func TestSecurityMLLPStalledPeersAndConnectionCap(t *testing.T) {
	f := &feed.Feed{Log: slog.New(slog.DiscardHandler), MLLPConns: 2, MLLPByteGap: 200 * time.Millisecond, MLLPFrameTime: time.Second}
	addr := mllpServer(t, f)

	stalled, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer func() { _ = stalled.Close() }()
	_, err = stalled.Write([]byte("\x0bMSH|^~\\&|PAS"))
	require.NoError(t, err)
	assert.True(t, closedByServer(t, stalled), "a frame that stops is cut off")

	trickle, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer func() { _ = trickle.Close() }()
	go func() {
		_, _ = trickle.Write([]byte{0x0b})
		for {
			time.Sleep(50 * time.Millisecond)
			if _, err := trickle.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	assert.True(t, closedByServer(t, trickle), "a frame trickled for longer than a message may take is cut off")

	// The cap: two idle connections are held, a third is closed at once.
	c1, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	c2, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer func() { _ = c2.Close() }()
	c3, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer func() { _ = c3.Close() }()
	assert.True(t, closedByServer(t, c3), "one connection over the cap is closed")

	// Once one is let go, a new connection is served.
	_ = c1.Close()
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer func() { _ = c.Close() }()
		if _, err := c.Write(hl7.Frame([]byte("MSH|^~\\&|PAS|T|R|T|20270301090000||ADT^A01|c1|P|2.5\r"))); err != nil {
			return false
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		raw, err := hl7.ReadFrame(bufio.NewReader(c))
		return err == nil && len(raw) > 0
	}, 30*time.Second, 50*time.Millisecond, "served again below the cap")
}
