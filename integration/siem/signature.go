package siem

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries the HMAC of a delivery's body: t=<unix seconds>,v1=<hex>.
const SignatureHeader = "X-Compliance-Signature"

// EventIDHeader carries the event id of an HTTP delivery, the same on every attempt and
// every redelivery, so that a receiver can drop what it already has.
const EventIDHeader = "Idempotency-Key"

// DefaultSkew is how far a signature's time may lie from the receiver's clock.
const DefaultSkew = 5 * time.Minute

// Signature errors, checked with errors.Is. None of them carries the key, the body or
// the expected value.
var (
	ErrSignatureMissing   = errors.New("signature: header is missing")
	ErrSignatureMalformed = errors.New("signature: header is malformed")
	ErrSignatureSkew      = errors.New("signature: timestamp outside the allowed skew")
	ErrSignatureMismatch  = errors.New("signature: mismatch")
)

// Sign returns the value of the X-Compliance-Signature header for body sent at t:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(key, t + "." + body)>".
func Sign(key []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(key, ts, body))
}

func mac(key []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a signature header against the raw body as received, at the receiver's
// instant now. The timestamp must lie within skew of now (DefaultSkew when skew is 0),
// in either direction. The header may carry several v1 values (a sender rotating keys
// signs with both); one match is enough. Comparison is constant-time.
func Verify(key []byte, header string, body []byte, now time.Time, skew time.Duration) error {
	if skew <= 0 {
		skew = DefaultSkew
	}
	header = strings.TrimSpace(header)
	if header == "" {
		return ErrSignatureMissing
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: element without '='", ErrSignatureMalformed)
		}
		switch k {
		case "t":
			if ts != "" {
				return fmt.Errorf("%w: t given twice", ErrSignatureMalformed)
			}
			ts = v
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return fmt.Errorf("%w: v1 is not 64 hex digits", ErrSignatureMalformed)
			}
			sigs = append(sigs, b)
		default:
			// Unknown schemes are ignored, so a sender can add one before receivers know it.
		}
	}
	if ts == "" {
		return fmt.Errorf("%w: missing t", ErrSignatureMalformed)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: missing v1", ErrSignatureMalformed)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 {
		return fmt.Errorf("%w: t is not a unix time in seconds", ErrSignatureMalformed)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > skew || d < -skew {
		return fmt.Errorf("%w: %s off, at most %s allowed", ErrSignatureSkew, d.Truncate(time.Second), skew)
	}
	want := mac(key, ts, body)
	match := 0
	for _, s := range sigs {
		// Every candidate is compared, so the time taken does not tell which one matched.
		match |= subtle.ConstantTimeCompare(s, want)
	}
	if match != 1 {
		return ErrSignatureMismatch
	}
	return nil
}
