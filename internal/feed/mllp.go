package feed

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rebookhq/rebook/internal/hl7"
	"github.com/rebookhq/rebook/internal/subject"
)

// idleTimeout closes a connection that sends nothing for this long.
const idleTimeout = 10 * time.Minute

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
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.serveConn(ctx, conn)
		}()
	}
}

func (f *Feed) serveConn(ctx context.Context, conn net.Conn) {
	defer func() { _ = conn.Close() }()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	r := bufio.NewReader(conn)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(idleTimeout))
		raw, err := hl7.ReadFrame(r)
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				f.Log.Warn("feed: MLLP framing error; closing the connection", "err", err)
				_, _ = conn.Write(hl7.Frame(hl7.Ack(nil, hl7.AckReject, "not an MLLP frame", time.Now())))
			}
			return
		}
		ack := f.answer(ctx, raw)
		_ = conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := conn.Write(hl7.Frame(ack)); err != nil {
			return
		}
	}
}

// answer applies one message and returns its ACK.
func (f *Feed) answer(ctx context.Context, raw []byte) []byte {
	now := time.Now()
	msg, err := hl7.Parse(raw)
	if err != nil {
		return hl7.Ack(nil, hl7.AckReject, err.Error(), now)
	}
	s, err := hl7.ReadSIU(msg, subject.London())
	if err != nil {
		return hl7.Ack(msg, hl7.AckReject, err.Error(), now)
	}
	if _, err := f.Apply(ctx, Update{PlacerID: s.PlacerID, Status: s.Status, Start: s.Start, NHSNumber: s.NHSNumber}); err != nil {
		f.Log.Error("feed: could not deliver an update", "err", err)
		return hl7.Ack(msg, hl7.AckError, "not delivered; send it again", now)
	}
	return hl7.Ack(msg, hl7.AckAccept, "", now)
}
