package cxone_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody/custody/integration/cxone"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Every path that logs (authentication, discovery, 401, 429, 5xx, network failure,
// progress, a rejected payload, a failed Emit) runs with a debug-level logger over
// contacts full of planted identifiers: none of them appears in a log line or in an
// error a caller would log.
func TestNoEPHIInLogs(t *testing.T) {
	var logs lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.Level(-8)}))
	var errs []string
	logErr := func(err error) {
		if err != nil {
			errs = append(errs, err.Error())
			logger.Error("ingest failed", "error", err)
		}
	}

	f := newFake(t)
	f.revokeAt[4] = true
	f.throttle[2] = "1"
	f.serverError[6] = 503
	cfg := f.config(t, &collector{}, &sleeper{})
	cfg.Logger = logger
	a := newAdapter(t, cfg)
	_, err := a.Backfill(context.Background(), base, base.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Poll(context.Background())
	logErr(err)

	// A rejected payload, with planted values in the offending fields.
	f2 := newFake(t)
	f2.ignoreFields = true
	f2.contacts[0].fields["patientName"] = "Patient PLANTED"
	f2.contacts[0].fields["contactStart"] = memberPhone
	f2.contacts[1].custom = cd("hipaa_consent_captured", memberIDValue, "hipaa_consent_ts", dobValue, "hipaa_"+memberIDValue, "x")
	f2.contacts[2].fields["fromAddress"] = memberPhone
	cfg = f2.config(t, &collector{}, &sleeper{})
	cfg.Logger, cfg.PageSize = logger, 10
	_, err = newAdapter(t, cfg).Backfill(context.Background(), base, base.Add(24*time.Hour))
	if err == nil {
		t.Fatal("want a payload error")
	}
	logErr(err)

	// A failing Emit, a network failure, a refused access key.
	f3 := newFake(t)
	cfg = f3.config(t, &collector{failAt: 1}, &sleeper{})
	cfg.Logger = logger
	_, err = newAdapter(t, cfg).Backfill(context.Background(), base, base.Add(24*time.Hour))
	logErr(err)
	cfg = f3.config(t, &collector{}, &sleeper{})
	cfg.Logger, cfg.APIBaseURL, cfg.MaxRetries = logger, "http://127.0.0.1:1", 1
	_, err = newAdapter(t, cfg).Backfill(context.Background(), base, base.Add(24*time.Hour))
	logErr(err)
	cfg = f3.config(t, &collector{}, &sleeper{})
	cfg.Logger, cfg.AccessKeyID = logger, "AKID-OTHER"
	_, err = newAdapter(t, cfg).Backfill(context.Background(), base, base.Add(24*time.Hour))
	logErr(err)

	// File errors.
	_, err = cxone.ReadFile(strings.NewReader(export(t)+`{"contactId": 100001, "contactCustomData": [{"name": "hipaa_phi_class", "value": "`+memberIDValue+`"}]}`), cxone.FileOptions{})
	logErr(err)

	out := logs.String()
	for _, want := range []string{"authenticated", "discovered the API host", "token refused, authenticating again",
		"rate limited, waiting", "server error, retrying", "request failed, retrying", "window done", "ingest failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("no log line %q", want)
		}
	}
	for _, v := range planted() {
		if strings.Contains(out, v) {
			t.Errorf("a log line carries %q", v)
		}
		for _, e := range errs {
			if strings.Contains(e, v) {
				t.Errorf("error %q carries %q", e, v)
			}
		}
	}
	if t.Failed() || testing.Verbose() {
		fmt.Println(out)
	}
}
