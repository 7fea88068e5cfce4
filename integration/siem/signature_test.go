package siem_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/custody/custody/integration/siem"
)

func ExampleSign() {
	key := []byte("shared-key")
	body := []byte(`{"eventId":"0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d0e"}`)
	sent := time.Unix(1772953200, 0)
	header := siem.Sign(key, sent, body)
	fmt.Println(header)
	fmt.Println(siem.Verify(key, header, body, sent.Add(4*time.Minute), siem.DefaultSkew))
	// Output:
	// t=1772953200,v1=258dfc741d582585bda4a52b47e68fecd902b1faa468ea6f7e7f86f06837badd
	// <nil>
}

func TestVerify(t *testing.T) {
	key := []byte("k1")
	body := []byte(`{"a":1}`)
	now := time.Unix(1772953200, 0)
	good := siem.Sign(key, now, body)
	_, v1, _ := strings.Cut(good, ",")
	tests := []struct {
		name   string
		key    []byte
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{name: "valid", header: good},
		{name: "valid at +5min", header: good, now: now.Add(5 * time.Minute)},
		{name: "valid at -5min", header: good, now: now.Add(-5 * time.Minute)},
		{name: "valid with a second, unknown v1 first", header: "t=1772953200,v1=" + strings.Repeat("ab", 32) + "," + v1},
		{name: "unknown scheme ignored", header: good + ",v0=xyz"},
		{name: "missing header", header: "", want: siem.ErrSignatureMissing},
		{name: "missing t", header: v1, want: siem.ErrSignatureMalformed},
		{name: "missing v1", header: "t=1772953200", want: siem.ErrSignatureMalformed},
		{name: "bad hex", header: "t=1772953200,v1=zz" + strings.Repeat("0", 62), want: siem.ErrSignatureMalformed},
		{name: "short hex", header: "t=1772953200,v1=abcd", want: siem.ErrSignatureMalformed},
		{name: "t not a number", header: "t=soon," + v1, want: siem.ErrSignatureMalformed},
		{name: "element without =", header: "t=1772953200,garbage," + v1, want: siem.ErrSignatureMalformed},
		{name: "skew exceeded (late)", header: good, now: now.Add(5*time.Minute + time.Second), want: siem.ErrSignatureSkew},
		{name: "skew exceeded (early)", header: good, now: now.Add(-5*time.Minute - time.Second), want: siem.ErrSignatureSkew},
		{name: "body changed", header: good, body: []byte(`{"a":2}`), want: siem.ErrSignatureMismatch},
		{name: "body re-encoded", header: good, body: []byte(`{"a": 1}`), want: siem.ErrSignatureMismatch},
		{name: "wrong key", header: good, key: []byte("k2"), want: siem.ErrSignatureMismatch},
		{name: "timestamp replaced", header: "t=1772953201," + v1, want: siem.ErrSignatureMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, b, n := key, body, now
			if tt.key != nil {
				k = tt.key
			}
			if tt.body != nil {
				b = tt.body
			}
			if !tt.now.IsZero() {
				n = tt.now
			}
			err := siem.Verify(k, tt.header, b, n, siem.DefaultSkew)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), string(k)) {
				t.Fatalf("error %q shows the key", err)
			}
		})
	}
}
