package pkbsim

import (
	"fmt"
	"time"

	"github.com/rebookhq/rebook/internal/subject"
)

// The trust's PAS, as seen from PKB once it sends its update back: HL7 SIU
// S15 (cancel), S13 (reschedule) or S15 then S12 (cancel and book anew).

func (s *Server) appt(id string) (*Appointment, error) {
	i, ok := s.byAppt[id]
	if !ok {
		return nil, fmt.Errorf("no appointment %q", id)
	}
	return &s.data.Appointments[i], nil
}

// Cancel marks an appointment cancelled.
func (s *Server) Cancel(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancel(id, s.cfg.Now())
}

func (s *Server) cancel(id string, now time.Time) error {
	a, err := s.appt(id)
	if err != nil {
		return err
	}
	a.Status, a.LastUpdated = "cancelled", now
	s.copyToFeed(*a)
	return nil
}

// Move gives an appointment a new start, keeping its length, and books it.
func (s *Server) Move(id string, start time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.move(id, start, s.cfg.Now())
}

func (s *Server) move(id string, start, now time.Time) error {
	a, err := s.appt(id)
	if err != nil {
		return err
	}
	if start.IsZero() {
		return fmt.Errorf("a new start is required")
	}
	length := a.End.Sub(a.Start)
	a.Start = start.In(subject.London())
	a.End = a.Start.Add(length)
	a.Status, a.LastUpdated = "booked", now
	s.copyToFeed(*a)
	return nil
}

// Rebook cancels an appointment and books a new one for the same patient
// and specialty; it returns the new appointment's id.
func (s *Server) Rebook(id string, start time.Time) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rebook(id, start, s.cfg.Now())
}

func (s *Server) rebook(id string, start, now time.Time) (string, error) {
	if start.IsZero() {
		return "", fmt.Errorf("a new start is required")
	}
	if err := s.cancel(id, now); err != nil {
		return "", err
	}
	old, _ := s.appt(id)
	n := *old
	s.seq++
	n.ID = fmt.Sprintf("%s-r%d", old.ID, s.seq)
	n.PlacerID = fmt.Sprintf("%s-%d", old.PlacerID, s.seq)
	n.Start = start.In(subject.London())
	n.End = n.Start.Add(old.End.Sub(old.Start))
	n.Status, n.Created, n.LastUpdated = "booked", now, now
	s.data.Appointments = append(s.data.Appointments, n)
	s.byAppt[n.ID] = len(s.data.Appointments) - 1
	s.copyToFeed(n)
	return n.ID, nil
}

// applyDuePAS carries out the automatic PAS's due actions. It runs, under
// the lock, before every read, so what a caller sees is as if the PAS had
// acted on time, with no goroutine or timer to leak.
func (s *Server) applyDuePAS(now time.Time) {
	if s.cfg.AutoPAS <= 0 {
		return
	}
	for _, m := range s.data.Messages {
		id := m.ID
		at, seen := s.delivered[id]
		if !seen || s.actioned[id] || now.Sub(at) < s.cfg.AutoPAS {
			continue
		}
		s.actioned[id] = true
		e, ok := s.expect[id]
		if !ok || e.AppointmentID == "" {
			continue // nothing the PAS could act on unambiguously
		}
		a, err := s.appt(e.AppointmentID)
		if err != nil || a.Status != "pending" {
			continue
		}
		if e.RequestType == subject.Cancel {
			_ = s.cancel(a.ID, now)
			continue
		}
		// Changes alternate between the two ways a PAS moves a booking.
		next := a.Start.AddDate(0, 0, 7)
		s.pasTurn++
		if s.pasTurn%2 == 0 {
			_ = s.move(a.ID, next, now)
		} else {
			_, _ = s.rebook(a.ID, next, now)
		}
	}
}
