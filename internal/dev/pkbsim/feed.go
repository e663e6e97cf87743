package pkbsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"
)

// Counters of the PAS feed's copies.
const (
	CounterFeedSent    = "pas feed: sent"
	CounterFeedFailed  = "pas feed: not delivered"
	CounterFeedDropped = "pas feed: queue full"
)

// copyToFeed queues a copy of what the PAS did to a for the trust's
// integration engine to send Rebook, as it sends PKB. Called under the lock.
func (s *Server) copyToFeed(a Appointment) {
	if s.feed == nil {
		return
	}
	body, err := json.Marshal(s.fhirAppointment(a))
	if err != nil {
		return
	}
	select {
	case s.feed <- body:
	default:
		s.counters[CounterFeedDropped]++
	}
}

// sendFeed posts each copy as a FHIR Appointment, trying three times.
func (s *Server) sendFeed() {
	client := &http.Client{Timeout: 10 * time.Second}
	for body := range s.feed {
		ok := false
		for attempt := range 3 {
			req, err := http.NewRequest(http.MethodPost, s.cfg.FeedURL, bytes.NewReader(body))
			if err != nil {
				break
			}
			req.Header.Set("Content-Type", "application/fhir+json")
			req.Header.Set("Authorization", "Bearer "+s.cfg.FeedToken)
			resp, err := client.Do(req)
			if err == nil {
				_ = resp.Body.Close()
				if ok = resp.StatusCode == http.StatusOK; ok || resp.StatusCode == http.StatusBadRequest {
					break
				}
			}
			time.Sleep(time.Duration(attempt+1) * time.Second)
		}
		if ok {
			s.count(CounterFeedSent)
		} else {
			s.count(CounterFeedFailed)
		}
	}
}
