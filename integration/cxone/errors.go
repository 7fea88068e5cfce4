package cxone

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrConfig marks an invalid Config or mapping file.
	ErrConfig = errors.New("cxone: invalid configuration")
	// ErrSecret marks a secret that cannot be read (the message names the file or the
	// environment variable, never the value).
	ErrSecret = errors.New("cxone: secret")
	// ErrAuth marks a refused token request, or a 401 that persisted after one new
	// authentication.
	ErrAuth = errors.New("cxone: authentication refused")
	// ErrRateLimited marks a 429 whose Retry-After exceeds Config.MaxRetryAfter, or 429s
	// beyond Config.MaxRetries.
	ErrRateLimited = errors.New("cxone: rate limited")
	// ErrUnavailable marks server errors (5xx) or network failures that outlasted
	// Config.MaxRetries.
	ErrUnavailable = errors.New("cxone: platform unavailable")
	// ErrPayload marks a response or file whose content breaks the documented shape of
	// API v34.0 or the mapping: a missing field, a field of the wrong type, an
	// unexpected field, a value the mapping does not allow.
	ErrPayload = errors.New("cxone: invalid payload")
)

// FieldError is one broken rule of one field. Field is the JSON path inside the payload
// (for example "completedContacts[3].contactStartDate" or
// "completedContacts[3].customData.hipaa_consent_captured"); Rule says what the field
// must be. Neither ever carries the field's value.
type FieldError struct {
	Field string
	Rule  string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Rule }

// Is makes every FieldError match ErrPayload.
func (e *FieldError) Is(target error) bool { return target == ErrPayload }

// PayloadError carries every problem found in one payload (one page of an API response,
// one line of a file), so that an operator sees all of them at once.
type PayloadError struct {
	// Where locates the payload: "line 12" of a file, or the request
	// ("contacts/completed window 2026-05-01T00:00:00Z/2026-05-02T00:00:00Z skip 200").
	Where string
	// Problems lists the broken rules, in field order.
	Problems []*FieldError
}

func (e *PayloadError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return e.Where + ": " + strings.Join(parts, "; ")
}

// Is makes every PayloadError match ErrPayload.
func (e *PayloadError) Is(target error) bool { return target == ErrPayload }

// Unwrap returns the individual problems, so errors.As finds a *FieldError.
func (e *PayloadError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// StatusError is an HTTP answer the adapter does not retry (400, 403, 404, ...). Op
// names the call ("contacts/completed", "custom-data", "token"), never its URL, which
// may hold a contact id.
type StatusError struct {
	Op     string
	Status int
}

func (e *StatusError) Error() string {
	return "cxone: " + e.Op + ": unexpected HTTP status " + strconv.Itoa(e.Status)
}

// problems collects FieldErrors.
type problems struct {
	list []*FieldError
}

func (p *problems) fail(field, rule string) {
	p.list = append(p.list, &FieldError{Field: field, Rule: rule})
}

func (p *problems) err(where string) error {
	if len(p.list) == 0 {
		return nil
	}
	return &PayloadError{Where: where, Problems: p.list}
}
