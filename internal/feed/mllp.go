package feed

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/rebookhq/rebook/internal/hl7"
	"github.com/rebookhq/rebook/internal/subject"
)

// idleTimeout closes a connection that sends nothing for this long.
const idleTimeout = 10 * time.Minute

// An integration engine holds one or a few connections and sends a
// message in well under a second; these bound what a stalled or hostile
// peer can hold.
const (
	DefaultMLLPConns     = 32
	DefaultMLLPByteGap   = 15 * time.Second
	DefaultMLLPFrameTime = time.Minute
)

// ServeMLLP answers HL7 v2 over MLLP on l until ctx ends: each SIU message
// is applied, then acknowledged. AA only once the update reached every
// waiting request (or none waits); AE when it could not be delivered
// (the engine sends it again); AR with the reason for a message Rebook
// cannot use. A message is never acknowledged before it is applied.
func (f *Feed) ServeMLLP(ctx context.Context, l net.Listener) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	go func() {
		<-ctx.Done()
		_ = l.Close()
	}()
	var delay time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors, or a transient fault: wait and try
			// again, as net/http does, and say so, in the log and in the
			// front door's health, while it lasts.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			f.acceptErr.Store(&err)
			f.Log.Error("feed: MLLP accept failed; retrying", "err", err, "in", delay)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return nil
			}
			continue
		}
		delay = 0
		f.acceptErr.Store(nil)
		if f.conns.Add(1) > int64(cmp.Or(f.MLLPConns, DefaultMLLPConns)) {
			f.conns.Add(-1)
			f.Log.Warn("feed: MLLP connection refused: the listener's cap is reached", "peer", conn.RemoteAddr().String(), "cap", cmp.Or(f.MLLPConns, DefaultMLLPConns))
			_ = conn.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.serveConn(ctx, conn)
			// Counted out before the peer can see the close, so a peer
			// that reconnects at once is not refused for its own old
			// connection.
			f.conns.Add(-1)
			_ = conn.Close()
		}()
	}
}

// serveConn answers one connection until it ends; the caller closes it.
func (f *Feed) serveConn(ctx context.Context, conn net.Conn) {
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	from := sender{addr: conn.RemoteAddr().String()}
	if tc, ok := conn.(*tls.Conn); ok {
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if err := tc.HandshakeContext(ctx); err != nil {
			f.Log.Warn("feed: MLLP TLS handshake refused", "peer", from.addr, "err", err)
			return
		}
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			from.client = certs[0].Subject.String()
		}
		_ = conn.SetDeadline(time.Time{})
	}
	pc := &pacedConn{Conn: conn, ctx: ctx, gap: cmp.Or(f.MLLPByteGap, DefaultMLLPByteGap), frameTime: cmp.Or(f.MLLPFrameTime, DefaultMLLPFrameTime)}
	r := bufio.NewReader(pc)
	for {
		pc.between(r.Buffered() > 0)
		if ctx.Err() != nil {
			// Cancelled as the deadline was set: the cancel's own
			// deadline was overwritten, so stop here.
			return
		}
		raw, err := hl7.ReadFrame(r)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
				f.Log.Warn("feed: MLLP peer stalled; closing the connection", "peer", from.addr, "mid_message", pc.started)
				return
			}
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				f.Log.Warn("feed: MLLP framing error; closing the connection", "err", err)
				_, _ = conn.Write(hl7.Frame(hl7.Ack(nil, hl7.AckReject, "not an MLLP frame", time.Now())))
			}
			return
		}
		ack := f.answer(ctx, raw, from)
		_ = conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := conn.Write(hl7.Frame(ack)); err != nil {
			return
		}
	}
}

// pacedConn gives a message that has started a short deadline between
// bytes and a bound on the whole, while the wait before a message stays
// idleTimeout: a peer that trickles a frame a byte at a time cannot hold
// a connection for ten minutes per byte.
type pacedConn struct {
	net.Conn
	ctx            context.Context
	gap, frameTime time.Duration
	started        bool
	frameBy        time.Time
}

// between is called before each message: started says the message's
// first bytes are already buffered.
func (p *pacedConn) between(started bool) {
	p.started = started
	if started {
		p.frameBy = time.Now().Add(p.frameTime)
	}
	p.setDeadline(time.Now().Add(idleTimeout))
}

func (p *pacedConn) Read(b []byte) (int, error) {
	if p.started {
		d := time.Now().Add(p.gap)
		if p.frameBy.Before(d) {
			d = p.frameBy
		}
		p.setDeadline(d)
	}
	n, err := p.Conn.Read(b)
	if n > 0 && !p.started {
		p.started, p.frameBy = true, time.Now().Add(p.frameTime)
	}
	return n, err
}

// setDeadline sets the read deadline unless the connection is being shut
// down: the shutdown's own deadline (now) must not be pushed back.
func (p *pacedConn) setDeadline(t time.Time) {
	_ = p.Conn.SetReadDeadline(t)
	if p.ctx.Err() != nil {
		_ = p.Conn.SetReadDeadline(time.Now())
	}
}

// AcceptHealth is the MLLP listener's health, for /healthz: the error it
// meets while it cannot accept connections, else nil.
func (f *Feed) AcceptHealth(context.Context) error {
	if err := f.acceptErr.Load(); err != nil {
		return fmt.Errorf("the MLLP listener cannot accept connections: %w", *err)
	}
	return nil
}

// sender is who is on the other end of an MLLP connection.
type sender struct{ addr, client string }

// answer applies one message and returns its ACK.
func (f *Feed) answer(ctx context.Context, raw []byte, from sender) []byte {
	now := time.Now()
	msg, err := hl7.Parse(raw)
	if err != nil {
		return hl7.Ack(nil, hl7.AckReject, err.Error(), now)
	}
	s, err := hl7.ReadSIU(msg, subject.London())
	if err != nil {
		return hl7.Ack(msg, hl7.AckReject, err.Error(), now)
	}
	u := Update{PlacerID: s.PlacerID, PlacerSystem: s.PlacerNamespace, Status: s.Status, Start: s.Start, NHSNumber: s.NHSNumber,
		Source: SourceMLLP, Peer: from.addr, Client: from.client, ControlID: s.ControlID, At: s.At}
	if _, err := f.Apply(ctx, u); err != nil {
		f.Log.Error("feed: could not deliver an update", "err", err)
		return hl7.Ack(msg, hl7.AckError, "not delivered; send it again", now)
	}
	return hl7.Ack(msg, hl7.AckAccept, "", now)
}

// MLLPSecurity is how the MLLP listener knows the PAS's integration
// engine: REBOOK_MLLP_TLS_CERT and REBOOK_MLLP_TLS_KEY (TLS 1.2 or later),
// REBOOK_MLLP_CLIENT_CA (a client certificate signed by it is required),
// and REBOOK_MLLP_PLAINTEXT (plain MLLP off loopback, on purpose).
type MLLPSecurity struct {
	CertFile, KeyFile, ClientCAFile string
	Plaintext                       bool
}

// ListenMLLP listens for MLLP on addr as sec says, and describes how, for
// the log. Plain MLLP, which anyone who reaches the port could use to
// close requests, is refused off loopback unless sec.Plaintext.
func ListenMLLP(addr string, sec MLLPSecurity) (net.Listener, string, error) {
	if sec.CertFile == "" {
		if !loopback(addr) && !sec.Plaintext {
			return nil, "", fmt.Errorf("MLLP on %s is not a loopback address: set REBOOK_MLLP_TLS_CERT and REBOOK_MLLP_TLS_KEY (and REBOOK_MLLP_CLIENT_CA for client certificates), or REBOOK_MLLP_PLAINTEXT=1 to accept plain, unauthenticated MLLP on purpose", addr)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, "", err
		}
		how := "plain MLLP, loopback only"
		if !loopback(addr) {
			how = "plain MLLP, unauthenticated (REBOOK_MLLP_PLAINTEXT=1): anyone who reaches the port can send updates"
		}
		return l, how, nil
	}
	cfg, err := TLSConfig(sec)
	if err != nil {
		return nil, "", err
	}
	l, err := tls.Listen("tcp", addr, cfg)
	if err != nil {
		return nil, "", err
	}
	how := "MLLP over TLS, no client certificate asked for"
	if cfg.ClientCAs != nil {
		how = "MLLP over TLS, client certificate required (REBOOK_MLLP_CLIENT_CA)"
	}
	return l, how, nil
}

// TLSConfig is the MLLP listener's TLS: 1.2 or later, and mutual when a
// client CA is given.
func TLSConfig(sec MLLPSecurity) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(sec.CertFile, sec.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("REBOOK_MLLP_TLS_CERT and REBOOK_MLLP_TLS_KEY: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if sec.ClientCAFile != "" {
		pem, err := os.ReadFile(sec.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("REBOOK_MLLP_CLIENT_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("REBOOK_MLLP_CLIENT_CA: no PEM certificate in the file")
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// loopback says whether addr (host:port) listens on a loopback address
// only; an empty host means every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
