package pkbsim

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Faults are injected into the API (messages, FHIR and token endpoints).
type Faults struct {
	// ErrorRate is the share of calls answered with ErrorStatus (503 if 0).
	ErrorRate   float64 `json:"errorRate"`
	ErrorStatus int     `json:"errorStatus"`
	// RateLimitRate is the share of calls answered 429 with Retry-After.
	RateLimitRate     float64 `json:"rateLimitRate"`
	RetryAfterSeconds int     `json:"retryAfterSeconds"`
	// LatencyMS is added to every call before it is answered.
	LatencyMS int `json:"latencyMs"`
	// Paths limits the faults to calls whose path starts with one of these;
	// empty means every API path.
	Paths []string `json:"paths,omitempty"`
}

// Garble answers every authorised call whose path and query contain
// match with 200 and body instead of the real answer: broken JSON, wrong
// types, what a faulty proxy or a PKB bug could send. An empty body stops
// it. Not PKB's behaviour: for the bad-input tests only.
func (s *Server) Garble(match, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.garbled == nil {
		s.garbled = map[string]string{}
	}
	if body == "" {
		delete(s.garbled, match)
		return
	}
	s.garbled[match] = body
}

// WithdrawSharing makes PKB refuse (403) every FHIR call that names this
// patient by public id, as when the patient withdraws sharing with the
// organisation; an empty id restores every patient.
func (s *Server) WithdrawSharing(patientID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if patientID == "" {
		s.withdrawn = nil
		return
	}
	if s.withdrawn == nil {
		s.withdrawn = map[string]bool{}
	}
	s.withdrawn[patientID] = true
}

// namesWithdrawn says whether a call names a patient who withdrew sharing.
// Called under the lock.
func (s *Server) namesWithdrawn(r *http.Request) bool {
	if len(s.withdrawn) == 0 || !strings.HasPrefix(r.URL.Path, "/fhir/") {
		return false
	}
	for _, vs := range r.URL.Query() {
		for _, v := range vs {
			if _, id, ok := strings.Cut(v, "|"); ok && s.withdrawn[id] {
				return true
			}
		}
	}
	return false
}

func (s *Server) faulty(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.namesWithdrawn(r) && r.Header.Get("Authorization") != "" {
			s.mu.Unlock()
			writeOutcome(w, http.StatusForbidden, "forbidden", "the patient does not share their record with this organisation")
			return
		}
		for match, body := range s.garbled {
			if strings.Contains(r.URL.RequestURI(), match) && r.Header.Get("Authorization") != "" {
				s.mu.Unlock()
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(body))
				return
			}
		}
		f := s.faults
		applies := len(f.Paths) == 0
		for _, p := range f.Paths {
			applies = applies || strings.HasPrefix(r.URL.Path, p)
		}
		var roll float64
		if applies {
			roll = s.dice.Float64()
		}
		s.mu.Unlock()
		if !applies {
			h.ServeHTTP(w, r)
			return
		}
		if f.LatencyMS > 0 {
			select {
			case <-time.After(time.Duration(f.LatencyMS) * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		switch {
		case roll < f.ErrorRate:
			s.count(CounterFault5xx)
			status := f.ErrorStatus
			if status == 0 {
				status = http.StatusServiceUnavailable
			}
			if strings.HasPrefix(r.URL.Path, "/fhir/") {
				writeOutcome(w, status, "transient", "injected fault")
			} else {
				writeJSON(w, status, map[string]string{"error": "injected fault"})
			}
		case roll < f.ErrorRate+f.RateLimitRate:
			s.count(CounterFault429)
			w.Header().Set("Retry-After", strconv.Itoa(max(f.RetryAfterSeconds, 1)))
			if strings.HasPrefix(r.URL.Path, "/fhir/") {
				writeOutcome(w, http.StatusTooManyRequests, "throttled", "slow down")
			} else {
				writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "rate limited"})
			}
		default:
			h.ServeHTTP(w, r)
		}
	})
}

func (s *Server) adminRoutes(m *http.ServeMux) {
	m.HandleFunc("POST /admin/scenario", s.adminScenario)
	m.HandleFunc("GET /admin/dataset", s.adminExport)
	m.HandleFunc("PUT /admin/dataset", s.adminImport)
	m.HandleFunc("GET /admin/faults", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		writeJSON(w, http.StatusOK, s.faults)
	})
	m.HandleFunc("PUT /admin/faults", s.adminFaults)
	m.HandleFunc("DELETE /admin/faults", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.faults = Faults{}
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /admin/grants/revoke", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]int{"revoked": s.RevokeGrants()})
	})
	m.HandleFunc("POST /admin/tokens/expire", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]int{"expired": s.ExpireAccessTokens()})
	})
	m.HandleFunc("PUT /admin/oauth/auto-approve", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Enabled bool `json:"enabled"`
		}
		if !decode(w, r, &body) {
			return
		}
		s.mu.Lock()
		s.cfg.AutoApprove = body.Enabled
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, body)
	})
	m.HandleFunc("PUT /admin/search/org-wide", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Enabled bool `json:"enabled"`
		}
		if !decode(w, r, &body) {
			return
		}
		s.SetOrgWideSearch(body.Enabled)
		writeJSON(w, http.StatusOK, body)
	})
	m.HandleFunc("POST /admin/pas/cancel", s.adminPAS("cancel"))
	m.HandleFunc("POST /admin/pas/move", s.adminPAS("move"))
	m.HandleFunc("POST /admin/pas/rebook", s.adminPAS("rebook"))
	m.HandleFunc("PUT /admin/pas/auto", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Delay string `json:"delay"`
		}
		if !decode(w, r, &body) {
			return
		}
		d, err := time.ParseDuration(body.Delay)
		if err != nil || d < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": `delay must be a duration such as "30s"; "0s" turns auto-PAS off`})
			return
		}
		s.SetAutoPAS(d)
		writeJSON(w, http.StatusOK, map[string]string{"delay": d.String()})
	})
	m.HandleFunc("GET /admin/counters", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Counters())
	})
	m.HandleFunc("DELETE /admin/counters", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.counters = map[string]int64{}
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad JSON body: " + err.Error()})
		return false
	}
	return true
}

func (s *Server) adminScenario(w http.ResponseWriter, r *http.Request) {
	var o ScenarioOptions
	if !decode(w, r, &o) {
		return
	}
	n, ok := Scenarios[o.Name]
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("unknown scenario %q", o.Name)})
		return
	}
	if o.Requests == 0 {
		o.Requests = n
	}
	if o.MessagesFrom.IsZero() && o.MessagesUntil.IsZero() {
		o.MessagesUntil = s.cfg.Now().Add(-time.Minute)
	}
	ds := Generate(o)
	s.Load(ds)
	writeJSON(w, http.StatusOK, map[string]int{"patients": len(ds.Patients), "appointments": len(ds.Appointments), "messages": len(ds.Messages)})
}

func (s *Server) adminExport(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.applyDuePAS(s.cfg.Now())
	b, err := json.Marshal(s.data)
	s.mu.Unlock()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (s *Server) adminImport(w http.ResponseWriter, r *http.Request) {
	var ds Dataset
	if !decode(w, r, &ds) {
		return
	}
	s.Load(ds)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if !decode(w, r, &f) {
		return
	}
	if f.ErrorRate < 0 || f.RateLimitRate < 0 || f.ErrorRate+f.RateLimitRate > 1 || f.LatencyMS < 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "rates must be between 0 and 1 and add up to at most 1; latency must not be negative"})
		return
	}
	if f.ErrorStatus != 0 && (f.ErrorStatus < 400 || f.ErrorStatus > 599) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "errorStatus must be an HTTP error status"})
		return
	}
	s.SetFaults(f)
	writeJSON(w, http.StatusOK, f)
}

func (s *Server) adminPAS(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			AppointmentID string    `json:"appointmentId"`
			Start         time.Time `json:"start"`
		}
		if !decode(w, r, &body) {
			return
		}
		var newID string
		var err error
		switch action {
		case "cancel":
			err = s.Cancel(body.AppointmentID)
		case "move":
			err = s.Move(body.AppointmentID, body.Start)
		case "rebook":
			newID, err = s.Rebook(body.AppointmentID, body.Start)
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"appointmentId": body.AppointmentID, "newAppointmentId": newID})
	}
}

// SetOrgWideSearchEmpty makes an Appointment search that names no patient
// answer 200 with an empty Bundle, as a proxy or a misconfigured server
// might: for the tests of the org-wide probe.
func (s *Server) SetOrgWideSearchEmpty(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orgWideEmpty = on
}

// Load replaces everything the simulator serves.
func (s *Server) Load(ds Dataset) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.load(ds)
}

// Dataset returns a copy of what the simulator serves now.
func (s *Server) Dataset() Dataset {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyDuePAS(s.cfg.Now())
	b, _ := json.Marshal(s.data)
	var ds Dataset
	_ = json.Unmarshal(b, &ds)
	return ds
}

// HoldMessagesFrom keeps messages stamped at or after ms out of every
// read until it is called with 0: for tests that need some messages to
// arrive only after something has happened.
func (s *Server) HoldMessagesFrom(ms int64) {
	s.mu.Lock()
	s.holdFrom = ms
	s.mu.Unlock()
}

// SetOrgWideSearch turns on or off the emulation of a server that answers
// Appointment searches naming no patient.
func (s *Server) SetOrgWideSearch(on bool) {
	s.mu.Lock()
	s.cfg.OrgWideSearch = on
	s.mu.Unlock()
}

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// RevokeGrants revokes every grant, as a clinician or PKB would: access and
// refresh tokens stop working at once.
func (s *Server) RevokeGrants() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, g := range s.grants {
		if !g.revoked {
			g.revoked = true
			n++
		}
	}
	return n
}

// ExpireAccessTokens ends every access token's life now; refresh tokens keep
// working.
func (s *Server) ExpireAccessTokens() int {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, a := range s.access {
		if now.Before(a.expires) {
			a.expires = now
			n++
		}
	}
	return n
}

// Counters returns the calls per route ("GET /fhir/Appointment") and the
// refused tokens and injected faults by kind.
func (s *Server) Counters() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.counters)
}

// SetAutoApprove makes the consent page approve by itself, or show again.
func (s *Server) SetAutoApprove(on bool) {
	s.mu.Lock()
	s.cfg.AutoApprove = on
	s.mu.Unlock()
}

// SetAutoPAS turns the automatic PAS on (delay > 0) or off.
func (s *Server) SetAutoPAS(d time.Duration) {
	s.mu.Lock()
	s.cfg.AutoPAS = d
	s.mu.Unlock()
}
