package signin

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Sessions are kept on the server, so that they end when Rebook says:
// sign-out, an admin's "sign out everyone" and the idle timeout end them
// at once, wherever the cookie was copied to. The store keeps them sealed
// (its ids hashed); *store.Store is the production one.
type Sessions interface {
	PutSession(ctx context.Context, id string, sealed []byte, lastSeen, expires time.Time) error
	// GetSession answers nil, and no error, for an unknown id.
	GetSession(ctx context.Context, id string) ([]byte, time.Time, error)
	TouchSession(ctx context.Context, id string, at time.Time) error
	DeleteSession(ctx context.Context, id string) error
	DeleteAllSessions(ctx context.Context) (int64, error)
}

const (
	// IdleTimeout ends a session nobody has used for this long.
	IdleTimeout = 30 * time.Minute
	// RolesFor is how long roles and teams read from the identity
	// provider are trusted before they are read again (with the refresh
	// token it gave; without one, the person signs in again).
	RolesFor = 15 * time.Minute
	// touchEvery bounds the writes of last use to one a minute a session.
	touchEvery = time.Minute
)

// session is what the store keeps for a signed-in person.
type session struct {
	User      User   `json:"u"`
	Refresh   string `json:"r,omitempty"`
	RolesRead int64  `json:"rr"`
}

// sessionID is all the cookie carries.
type sessionID struct {
	ID string `json:"i"`
}

func (a *Auth) startSession(w http.ResponseWriter, r *http.Request, u User, refresh string) error {
	now := a.o.Now()
	u.CSRF = random()
	u.Expires = now.Add(SessionTTL).Unix()
	id := random()
	if err := a.putSession(r.Context(), id, session{User: u, Refresh: refresh, RolesRead: now.Unix()}, now); err != nil {
		a.o.Log.Error("sign-in: could not keep the session", "err", err)
		return err
	}
	v, err := a.sealCookie(sessionCookie, sessionID{ID: id})
	if err != nil {
		return err
	}
	http.SetCookie(w, a.cookie(sessionCookie, v, SessionTTL))
	return nil
}

func (a *Auth) putSession(ctx context.Context, id string, s session, seen time.Time) error {
	v, err := a.sealCookie("session/"+id, s)
	if err != nil {
		return err
	}
	return a.o.Sessions.PutSession(ctx, id, []byte(v), seen, time.Unix(s.User.Expires, 0))
}

// session is the person r's cookie names, if their session is still on:
// known, not past its shift or idle timeout, from this machine if a local
// user's, and with roles read from the identity provider no longer ago
// than RolesFor.
func (a *Auth) session(r *http.Request) *User {
	id, s := a.lookup(r)
	if s == nil {
		return nil
	}
	return a.check(r, id, s)
}

// lookedUp is a request's session as read from the store, kept for the
// rest of the request: the rate limiter, the page guard and the flash
// each ask, and each would otherwise read the store again.
type lookedUp struct {
	done bool
	id   string
	s    *session
}

type lookedUpKey struct{}

// OncePerRequest makes every look-up of the session during a request
// after the first one free. The front door wraps its whole handler in it.
func (a *Auth) OncePerRequest(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), lookedUpKey{}, &lookedUp{})))
	})
}

func (a *Auth) lookup(r *http.Request) (string, *session) {
	memo, _ := r.Context().Value(lookedUpKey{}).(*lookedUp)
	if memo != nil && memo.done {
		return memo.id, memo.s
	}
	id, s := a.read(r)
	if memo != nil {
		memo.done, memo.id, memo.s = true, id, s
	}
	return id, s
}

// read reads the session r's cookie names from the store.
func (a *Auth) read(r *http.Request) (string, *session) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", nil
	}
	var sid sessionID
	if !a.openCookie(c.Value, sessionCookie, &sid) || sid.ID == "" {
		return "", nil
	}
	sealed, seen, err := a.o.Sessions.GetSession(r.Context(), sid.ID)
	if err != nil {
		a.o.Log.Warn("sign-in: could not read a session", "err", err)
		return "", nil
	}
	if sealed == nil {
		return "", nil
	}
	var s session
	if !a.openCookie(string(sealed), "session/"+sid.ID, &s) {
		return "", nil
	}
	now := a.o.Now()
	if now.Unix() >= s.User.Expires || now.Sub(seen) >= IdleTimeout {
		_ = a.o.Sessions.DeleteSession(r.Context(), sid.ID)
		return "", nil
	}
	if now.Sub(seen) >= touchEvery {
		if err := a.o.Sessions.TouchSession(r.Context(), sid.ID, now); err != nil {
			a.o.Log.Warn("sign-in: could not record a session's use", "err", err)
		}
	}
	return sid.ID, &s
}

func (a *Auth) check(r *http.Request, id string, s *session) *User {
	u := s.User
	if u.Name == "" || u.Local && !fromThisMachine(r) {
		return nil
	}
	if u.Local || a.o.Now().Sub(time.Unix(s.RolesRead, 0)) < RolesFor {
		return &u
	}
	fresh, err := a.reread(r.Context(), s)
	if err != nil {
		a.o.Log.Info("session ended: roles could not be read again from the identity provider", "user", u.Name, "why", err)
		_ = a.o.Sessions.DeleteSession(r.Context(), id)
		forget(r)
		return nil
	}
	if err := a.putSession(r.Context(), id, *s, a.o.Now()); err != nil {
		a.o.Log.Warn("sign-in: could not keep the session's new roles", "err", err)
		return nil
	}
	return fresh
}

// reread asks the identity provider again who the person is and what they
// may do, with the refresh token it gave at sign-in, and updates s.
func (a *Auth) reread(ctx context.Context, s *session) (*User, error) {
	if a.oauth == nil || s.Refresh == "" {
		return nil, errors.New("no refresh token: sign in again")
	}
	tok, err := a.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: s.Refresh, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		return nil, err
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, errors.New("the refresh gave no ID token")
	}
	idt, err := a.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	u, err := a.user(idt)
	if err != nil {
		return nil, err
	}
	if u.Subject != s.User.Subject {
		return nil, errors.New("the refreshed token names someone else")
	}
	s.User.Name, s.User.Roles, s.User.Teams = u.Name, u.Roles, u.Teams
	s.RolesRead = a.o.Now().Unix()
	if tok.RefreshToken != "" {
		s.Refresh = tok.RefreshToken
	}
	fresh := s.User
	return &fresh, nil
}

func (a *Auth) endSession(r *http.Request) {
	id, _ := a.lookup(r)
	if id != "" {
		if err := a.o.Sessions.DeleteSession(r.Context(), id); err != nil {
			a.o.Log.Warn("sign-out: could not end the session", "err", err)
		}
	}
	forget(r)
}

// forget says, for the rest of the request, that it has no session.
func forget(r *http.Request) {
	if memo, _ := r.Context().Value(lookedUpKey{}).(*lookedUp); memo != nil {
		*memo = lookedUp{done: true}
	}
}

// EndAllSessions signs everyone out at once (an admin's "sign out
// everyone"), saying how many sessions there were.
func (a *Auth) EndAllSessions(ctx context.Context) (int64, error) {
	return a.o.Sessions.DeleteAllSessions(ctx)
}

// memSessions keeps sessions in this process, for tests and for a front
// door run without a database.
type memSessions struct {
	mu sync.Mutex
	m  map[string]memSession
}

type memSession struct {
	sealed  []byte
	seen    time.Time
	expires time.Time
}

func (m *memSessions) PutSession(_ context.Context, id string, sealed []byte, seen, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string]memSession{}
	}
	m.m[id] = memSession{sealed, seen, expires}
	return nil
}

func (m *memSessions) GetSession(_ context.Context, id string) ([]byte, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.m[id]
	if !ok {
		return nil, time.Time{}, nil
	}
	return s.sealed, s.seen, nil
}

func (m *memSessions) TouchSession(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.m[id]; ok && s.seen.Before(at) {
		s.seen = at
		m.m[id] = s
	}
	return nil
}

func (m *memSessions) DeleteSession(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m, id)
	return nil
}

func (m *memSessions) DeleteAllSessions(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := int64(len(m.m))
	m.m = nil
	return n, nil
}
