// Package pkbsim is a faithful stand-in for Patients Know Best: OAuth 2.0
// (authorize page, code exchange, rotating refresh tokens), the messages
// REST API and the Aggregated FHIR R4 API, plus an admin API to load
// scenarios, inject faults, revoke grants, act as the trust's PAS and read
// per-endpoint call counters. It serves the contract in pkb-api.md over
// real HTTP, for local runs, tests and training.
package pkbsim

import (
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Config is the simulator's one registered OAuth client and its behaviour.
type Config struct {
	ClientID     string
	ClientSecret string
	RedirectURL  string
	// AccessTTL is how long an access token lives (PKB: 1800 s in its
	// guides, 600 s in one example).
	AccessTTL time.Duration
	// SessionTTL ends a grant's session this long after the grant; zero
	// means never. Near its end, refreshes return no refresh token.
	SessionTTL time.Duration
	// PageSize is how many messages one call returns, at least.
	PageSize int
	// AutoApprove skips the authorize page's Approve button.
	AutoApprove bool
	// AutoPAS, when set, makes the PAS act on each request this long after
	// the request's message was first delivered.
	AutoPAS time.Duration
	// FeedURL, when set, is where the PAS also sends each update it makes,
	// as a FHIR Appointment with FeedToken as bearer: Rebook's PAS feed
	// (POST /feed/fhir/Appointment), as a trust's integration engine would.
	FeedURL   string
	FeedToken string
	// OrgWideSearch emulates a server that answers an Appointment search
	// naming no patient, which PKB does not document (it answers 400).
	OrgWideSearch bool
	// GrantedBy, when set, names the account that granted in the answer
	// to a code exchange (as user_id), as many OAuth servers do; PKB
	// documents no such field, so by default the simulator sends none.
	GrantedBy string
	// Seed drives fault injection's dice.
	Seed   uint64
	Now    func() time.Time
	Logger *slog.Logger
}

// Server is the simulator. All state is in memory behind one lock.
type Server struct {
	cfg Config
	mux *http.ServeMux

	mu        sync.Mutex
	data      Dataset
	byMsg     map[string]int
	byAppt    map[string]int
	byPatient map[string]int
	expect    map[string]Expectation
	delivered map[string]time.Time
	actioned  map[string]bool
	pasTurn   int
	seq       int

	codes   map[string]*authCode
	grants  map[string]*grant
	access  map[string]*accessToken
	refresh map[string]*refreshToken
	faults  Faults
	// withdrawn are the patients who withdrew sharing (WithdrawSharing).
	withdrawn map[string]bool
	// orgWideEmpty answers patient-less searches with an empty page.
	orgWideEmpty bool
	garbled      map[string]string // request URI substring -> raw answer (Garble)
	dice         *mrand.Rand
	counters     map[string]int64
	holdFrom     int64       // messages stamped from here are not served yet
	feed         chan []byte // the PAS's copies, for the feed
}

// New makes a simulator serving ds.
func New(cfg Config, ds Dataset) *Server {
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = 1800 * time.Second
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 100
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:      cfg,
		codes:    map[string]*authCode{},
		grants:   map[string]*grant{},
		access:   map[string]*accessToken{},
		refresh:  map[string]*refreshToken{},
		dice:     mrand.New(mrand.NewPCG(cfg.Seed, 0xfa017)),
		counters: map[string]int64{},
	}
	s.load(ds)
	s.routes()
	if cfg.FeedURL != "" {
		s.feed = make(chan []byte, 1024)
		go s.sendFeed()
	}
	return s
}

// ServeHTTP serves the PKB API, the FHIR API under /fhir and the admin API
// under /admin.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) routes() {
	m := http.NewServeMux()
	api := func(pattern string, h http.HandlerFunc) { m.Handle(pattern, s.counted(s.faulty(s.bearer(h)))) }
	m.Handle("GET /apiAuthorize.action", s.counted(http.HandlerFunc(s.authorizePage)))
	m.Handle("POST /apiAuthorize.action", s.counted(http.HandlerFunc(s.authorizeDecision)))
	m.Handle("POST /apiToken.action", s.counted(s.faulty(http.HandlerFunc(s.token))))
	api("GET /json/messages/after/{ms}", s.messagesAfter)
	api("GET /fhir/Appointment", s.searchAppointments)
	api("GET /fhir/Appointment/{id}", s.readAppointment)
	api("GET /fhir/Patient", s.searchPatients)
	api("GET /fhir/Patient/{id}", s.readPatient)
	m.HandleFunc("/fhir/", func(w http.ResponseWriter, r *http.Request) {
		writeOutcome(w, http.StatusNotFound, "not-supported", "this simulator serves Appointment and Patient only")
	})
	s.adminRoutes(m)
	m.HandleFunc("GET /{$}", s.index)
	s.mux = m
}

// load replaces the dataset and forgets deliveries and PAS actions.
func (s *Server) load(ds Dataset) {
	s.data = ds
	sort.SliceStable(s.data.Messages, func(i, j int) bool { return s.data.Messages[i].Timestamp < s.data.Messages[j].Timestamp })
	s.reindex()
	s.expect = map[string]Expectation{}
	for _, e := range ds.Expect {
		s.expect[e.MessageID] = e
	}
	s.delivered = map[string]time.Time{}
	s.actioned = map[string]bool{}
}

func (s *Server) reindex() {
	s.byMsg = map[string]int{}
	for i, m := range s.data.Messages {
		s.byMsg[m.ID] = i
	}
	s.byAppt = map[string]int{}
	for i, a := range s.data.Appointments {
		s.byAppt[a.ID] = i
	}
	s.byPatient = map[string]int{}
	for i, p := range s.data.Patients {
		s.byPatient[p.ID] = i
	}
}

func (s *Server) counted(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.counters[r.Pattern]++
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (s *Server) count(name string) {
	s.mu.Lock()
	s.counters[name]++
	s.mu.Unlock()
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("PKB simulator. REST API at /, Aggregated FHIR API at /fhir, admin API at /admin (see docs/simulator.md).\n"))
}
