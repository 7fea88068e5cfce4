package genesys

import (
	"errors"
	"strings"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrInvalid is matched by every rejected Genesys payload: a missing or unexpected
	// field, a value of the wrong JSON type or outside the values this adapter maps.
	ErrInvalid = errors.New("invalid Genesys payload")
	// ErrUnknownTopic is matched when a notification's topic is not one this adapter
	// knows (it also matches ErrInvalid).
	ErrUnknownTopic = errors.New("unknown notification topic")
	// ErrConfig is matched by a configuration or mapping that cannot be used.
	ErrConfig = errors.New("genesys configuration")
	// ErrUnauthorized is matched when Genesys refuses the credentials, or refuses a
	// request again right after a fresh token.
	ErrUnauthorized = errors.New("genesys: unauthorized")
	// ErrRateLimited is matched when Genesys keeps answering 429 beyond the retry budget,
	// or asks to wait longer than Config.MaxRetryAfter.
	ErrRateLimited = errors.New("genesys: rate limited")
	// ErrJob is matched when an asynchronous analytics or audit job ends FAILED,
	// CANCELLED or EXPIRED.
	ErrJob = errors.New("genesys: asynchronous job did not complete")
	// ErrHTTP is matched by any other unexpected HTTP status.
	ErrHTTP = errors.New("genesys: unexpected HTTP status")
)

// FieldError is one broken rule of one field of a Genesys payload. Field is the JSON path
// inside the payload ("participants[2].sessions[0].mediaType"); Rule says what the field
// must be. Neither ever contains the field's value, so an error can be logged even when
// the payload carries ePHI.
type FieldError struct {
	Field string
	Rule  string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Rule }

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// PayloadError carries every problem found in one payload (one conversation record, one
// notification, one audit message, one retention entry), named by what it is and its
// platform id when known. It unwraps to its problems.
type PayloadError struct {
	// What names the payload: "conversation 5773eca4-…", "notification v2.detail.events…".
	What     string
	Problems []error
}

func (e *PayloadError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return e.What + ": " + strings.Join(parts, "; ")
}

// Unwrap returns the problems, so errors.As finds a *FieldError.
func (e *PayloadError) Unwrap() []error { return e.Problems }

// Is makes every PayloadError match ErrInvalid.
func (e *PayloadError) Is(target error) bool { return target == ErrInvalid }

// FieldErrors returns the field errors inside err, in order.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if fe, ok := err.(*FieldError); ok {
			out = append(out, fe)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

// problems collects the field errors of one payload.
type problems struct {
	errs []error
}

func (p *problems) add(field, rule string) {
	p.errs = append(p.errs, &FieldError{Field: field, Rule: rule})
}

func (p *problems) addErr(err error) {
	if err != nil {
		p.errs = append(p.errs, err)
	}
}

func (p *problems) err(what string) error {
	if len(p.errs) == 0 {
		return nil
	}
	return &PayloadError{What: what, Problems: p.errs}
}
