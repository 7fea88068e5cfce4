package domain

import (
	"errors"
	"strings"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrInvalid is wrapped by every validation failure of an event.
	ErrInvalid = errors.New("invalid event")
	// ErrInternalType marks a type that custody emits itself and never accepts from outside.
	ErrInternalType = errors.New("type is emitted by custody and never accepted from outside")
)

// FieldError is one broken rule of one field. Field is the JSON path of the field
// (for example "data.email.tls"); Rule says, in words an operator can act on, what the
// field must be.
type FieldError struct {
	Field string
	Rule  string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Rule }

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// ValidationError carries every problem found in one event, so that a user sees all of
// them at once. It unwraps to its FieldErrors.
type ValidationError struct {
	Problems []*FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return strings.Join(parts, "; ")
}

// Unwrap returns the individual problems, so errors.As finds a *FieldError.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Problems))
	for i, p := range e.Problems {
		errs[i] = p
	}
	return errs
}

// Is makes every ValidationError match ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// Problems returns the field errors inside err, in order, or nil when err carries none.
func Problems(err error) []*FieldError {
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve.Problems
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return []*FieldError{fe}
	}
	return nil
}
