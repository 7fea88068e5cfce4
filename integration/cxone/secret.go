package cxone

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
)

// Secret says where a secret (the access key secret, the application's client secret)
// is read from: a file or an environment variable, exactly one of them. The
// configuration holds only this reference, never the value; errors name the file or
// the variable, never the value.
type Secret struct {
	// File is the path of a file holding the secret. A trailing newline is removed.
	File string `json:"file,omitempty"`
	// Env is the name of an environment variable holding the secret.
	Env string `json:"env,omitempty"`
}

// UnmarshalJSON accepts only {"file": ...} or {"env": ...}: a secret written as a value
// in a configuration file is refused, without repeating it.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var ref struct {
		File string `json:"file"`
		Env  string `json:"env"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ref); err != nil {
		return errors.New(`a secret must be {"file": path} or {"env": NAME}, never the value itself`)
	}
	*s = Secret{File: ref.File, Env: ref.Env}
	return nil
}

// IsZero reports whether no source is set.
func (s Secret) IsZero() bool { return s.File == "" && s.Env == "" }

// Validate reports a reference that names no source or both.
func (s Secret) Validate() error {
	switch {
	case s.File != "" && s.Env != "":
		return errors.New("set either file or env, not both")
	case s.IsZero():
		return errors.New("set file or env")
	}
	return nil
}

// Where names the source for messages: "file /run/secrets/x" or "env NAME".
func (s Secret) Where() string {
	if s.File != "" {
		return "file " + s.File
	}
	return "env " + s.Env
}

// load reads the secret. lookup is os.LookupEnv unless a test injects another.
func (s Secret) load(lookup func(string) (string, bool)) (secret, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSecret, err)
	}
	var b []byte
	if s.File != "" {
		var err error
		b, err = os.ReadFile(s.File)
		if err != nil {
			// The *PathError names the file and the cause only.
			return nil, fmt.Errorf("%w: read %s: %w", ErrSecret, s.Where(), errors.Unwrap(err))
		}
		b = bytes.TrimRight(b, "\r\n")
	} else {
		if lookup == nil {
			lookup = os.LookupEnv
		}
		v, ok := lookup(s.Env)
		if !ok {
			return nil, fmt.Errorf("%w: %s is not set", ErrSecret, s.Where())
		}
		b = []byte(v)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrSecret, s.Where())
	}
	return secret(b), nil
}

// secret holds a secret's bytes. Every way of printing or logging it shows a
// placeholder, so a struct holding one can be logged or formatted without leaking it.
type secret []byte

const redacted = "[redacted]"

func (secret) String() string               { return redacted }
func (secret) GoString() string             { return redacted }
func (secret) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (secret) Format(f fmt.State, _ rune)   { f.Write([]byte(redacted)) }
