package pkb

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Kind classifies a failed PKB call by what the caller should do.
type Kind string

const (
	KindUnauthorized  Kind = "unauthorized"   // 401: token expired or revoked; refresh, then retry
	KindForbidden     Kind = "forbidden"      // 403: access not granted or wrong scope
	KindNotFound      Kind = "not-found"      // 404: unknown id
	KindBadRequest    Kind = "bad-request"    // 400 and other 4xx
	KindRateLimited   Kind = "rate-limited"   // 429: wait RetryAfter
	KindServer        Kind = "server"         // 5xx
	KindTimeout       Kind = "timeout"        // the call's deadline passed
	KindNetwork       Kind = "network"        // no answer: refused, reset, DNS
	KindInvalidGrant  Kind = "invalid-grant"  // token endpoint refused the code or refresh token
	KindInvalidClient Kind = "invalid-client" // token endpoint refused the client's credentials
	KindMalformed     Kind = "malformed"      // an answer that does not follow the contract
)

// Error is a failed PKB call. It carries the operation's name (a path
// template, never a URL with ids in it) and no patient data.
type Error struct {
	Op         string
	Kind       Kind
	Status     int
	Code       string // OAuth error code or FHIR issue code, when given
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	s := "pkb: " + e.Op + ": " + string(e.Kind)
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d", e.Status)
		if e.Code != "" {
			s += " " + e.Code
		}
		s += ")"
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(", retry after %s", e.RetryAfter)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether the same call may succeed later without anyone
// changing anything: 5xx, 429, timeouts, network faults, and 401 (a fresh
// token fixes it). 400, 403 and 404 are business outcomes.
func (e *Error) Retryable() bool {
	switch e.Kind {
	case KindServer, KindRateLimited, KindTimeout, KindNetwork, KindUnauthorized:
		return true
	}
	return false
}

// IsKind reports whether err is a PKB error of kind k.
func IsKind(err error, k Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

// Retryable reports whether err is a PKB error worth retrying; errors from
// elsewhere are not judged and report false.
func Retryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable()
}

func kindOf(status int) Kind {
	switch {
	case status == http.StatusUnauthorized:
		return KindUnauthorized
	case status == http.StatusForbidden:
		return KindForbidden
	case status == http.StatusNotFound:
		return KindNotFound
	case status == http.StatusTooManyRequests:
		return KindRateLimited
	case status >= 500:
		return KindServer
	default:
		return KindBadRequest
	}
}
