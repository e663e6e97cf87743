// Package socketfake is Slack's Socket Mode, served locally for tests:
// apps.connections.open hands out a WebSocket URL, each connection is
// greeted with hello and kept alive with pings, envelopes are sent as
// Slack sends them, acks are counted, and the server can ask the client
// to reconnect (disconnect) or drop the connection without a word.
package socketfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Server is a Socket Mode endpoint for one app token.
type Server struct {
	srv      *httptest.Server
	appToken string
	upgrader websocket.Upgrader

	mu       sync.Mutex
	conn     *websocket.Conn
	wmu      *sync.Mutex // guards writes on conn
	connects int
	opens    int
	acks     map[string]int
	changed  chan struct{}
}

// New serves Socket Mode for appToken (an xapp- token).
func New(appToken string) *Server {
	s := &Server{appToken: appToken, acks: map[string]int{}, changed: make(chan struct{}),
		// Slack's client sends its own Origin.
		upgrader: websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/apps.connections.open", s.open)
	mux.HandleFunc("GET /link", s.link)
	s.srv = httptest.NewServer(mux)
	return s
}

// APIURL is the Web API base the client opens connections with.
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// Close stops the server and its connection.
func (s *Server) Close() {
	s.mu.Lock()
	if s.conn != nil {
		_ = s.conn.Close()
	}
	s.mu.Unlock()
	s.srv.Close()
}

func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) open(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+s.appToken {
		_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_auth"}`))
		return
	}
	s.mu.Lock()
	s.opens++
	s.mu.Unlock()
	url := "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/link"
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "url": url})
}

func (s *Server) link(w http.ResponseWriter, r *http.Request) {
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	wmu := &sync.Mutex{}
	s.mu.Lock()
	if s.conn != nil {
		_ = s.conn.Close()
	}
	s.conn, s.wmu = conn, wmu
	s.connects++
	n := s.connects
	s.mu.Unlock()
	write := func(v any) error {
		wmu.Lock()
		defer wmu.Unlock()
		return conn.WriteJSON(v)
	}
	if err := write(map[string]any{"type": "hello", "num_connections": 1,
		"connection_info": map[string]any{"app_id": "A0REBOOK"}, "debug_info": map[string]any{"host": "socketfake"}}); err != nil {
		return
	}
	s.mu.Lock()
	s.notify()
	s.mu.Unlock()
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				wmu.Lock()
				err := conn.WriteControl(websocket.PingMessage, []byte(fmt.Sprint(n)), time.Now().Add(time.Second))
				wmu.Unlock()
				if err != nil {
					return
				}
			}
		}
	}()
	for {
		var ack struct {
			EnvelopeID string `json:"envelope_id"`
		}
		if err := conn.ReadJSON(&ack); err != nil {
			return
		}
		s.mu.Lock()
		s.acks[ack.EnvelopeID]++
		s.notify()
		s.mu.Unlock()
	}
}

// ErrNotConnected means no client is connected.
var ErrNotConnected = errors.New("socketfake: no client connected")

// send writes one message on the current connection.
func (s *Server) send(v any) error {
	s.mu.Lock()
	conn, wmu := s.conn, s.wmu
	s.mu.Unlock()
	if conn == nil {
		return ErrNotConnected
	}
	wmu.Lock()
	defer wmu.Unlock()
	return conn.WriteJSON(v)
}

// Interactive sends an interaction payload (a button press) as envelope
// id; retry is Slack's retry_attempt, above 0 when it sends it again.
func (s *Server) Interactive(id string, payload any, retry int) error {
	env := map[string]any{"envelope_id": id, "type": "interactive", "payload": payload, "accepts_response_payload": false}
	if retry > 0 {
		env["retry_attempt"], env["retry_reason"] = retry, "timeout"
	}
	return s.send(env)
}

// Disconnect asks the client to reconnect, as Slack does before it
// refreshes a connection, then closes this one.
func (s *Server) Disconnect() error {
	err := s.send(map[string]any{"type": "disconnect", "reason": "refresh_requested", "debug_info": map[string]any{"host": "socketfake"}})
	time.Sleep(100 * time.Millisecond)
	s.Drop()
	return err
}

// Drop closes the connection without a word, as a network failure would.
func (s *Server) Drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		_ = s.conn.Close()
		s.conn = nil
	}
}

// Connections is how many WebSocket connections were greeted.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connects
}

// Acks is how many times envelope id was acknowledged.
func (s *Server) Acks(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acks[id]
}

// Wait waits until cond holds, checking after every connection and ack.
func (s *Server) Wait(timeout time.Duration, cond func() bool) bool {
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			return cond()
		}
	}
}
