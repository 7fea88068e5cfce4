package siem_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/siem"
)

var signingKey = []byte("test-hmac-key-not-a-real-one")

func webhookConfig(t *testing.T, url string, tc siem.TLSConfig) siem.HTTPConfig {
	return siem.HTTPConfig{Name: "grc", URL: url, TLS: tc, SigningKey: writeSecret(t, string(signingKey)), Timeout: 5 * time.Second}
}

func TestHTTPSinkMutualTLS(t *testing.T) {
	good := newPKI(t, "good")
	other := newPKI(t, "other")
	e := alertEvent("0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d01", "agent-1", "i-1")

	withPins := func(tc siem.TLSConfig, pins ...string) siem.TLSConfig { tc.Pins = pins; return tc }
	tests := []struct {
		name    string
		tls     siem.TLSConfig
		wantErr error // nil: delivered
		seen    int   // requests the receiver handled
	}{
		{name: "client certificate from the receiver's CA", tls: good.clientTLS(), seen: 1},
		{name: "client certificate from another CA is refused", tls: siem.TLSConfig{CAFile: good.caFile, CertFile: other.certFile, KeyFile: other.keyFile}, wantErr: siem.ErrRetryable},
		{name: "receiver certificate from an untrusted CA is refused", tls: siem.TLSConfig{CAFile: other.caFile, CertFile: good.certFile, KeyFile: good.keyFile}, wantErr: siem.ErrRetryable},
		{name: "matching pin", tls: withPins(good.clientTLS(), siem.SPKIPin(good.serverLeaf)), seen: 1},
		{name: "one of two pins matches (rotation)", tls: withPins(good.clientTLS(), siem.SPKIPin(other.serverLeaf), siem.SPKIPin(good.serverLeaf)), seen: 1},
		{name: "pin mismatch is refused", tls: withPins(good.clientTLS(), siem.SPKIPin(other.serverLeaf)), wantErr: siem.ErrPinMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, good, good.pool, signingKey)
			s, err := siem.NewWebhook(webhookConfig(t, rcv.srv.URL, tt.tls))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.Deliver(context.Background(), e)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("Deliver = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, siem.ErrRetryable) {
				t.Fatalf("a TLS failure must be retryable, got %v", err)
			}
			if got := len(rcv.snapshot()); got != tt.seen {
				t.Fatalf("receiver handled %d requests, want %d", got, tt.seen)
			}
		})
	}

	t.Run("a client without a certificate is refused", func(t *testing.T) {
		rcv := newReceiver(t, good, good.pool, signingKey)
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: good.pool, MinVersion: tls.VersionTLS12}}}
		resp, err := c.Post(rcv.srv.URL, "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			t.Fatalf("request without a client certificate got %s", resp.Status)
		}
		if n := len(rcv.snapshot()); n != 0 {
			t.Fatalf("receiver handled %d requests", n)
		}
	})

	t.Run("the configuration requires a client certificate", func(t *testing.T) {
		_, err := siem.NewWebhook(webhookConfig(t, "https://127.0.0.1:1/", siem.TLSConfig{CAFile: good.caFile}))
		if !errors.Is(err, siem.ErrConfig) || !strings.Contains(err.Error(), "certFile is required") {
			t.Fatalf("NewWebhook without client certificate = %v", err)
		}
	})
}

func TestHTTPSinkClassifiesStatus(t *testing.T) {
	p := newPKI(t, "status")
	e := alertEvent("0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d02", "agent-1", "i-1")
	tests := []struct {
		status int
		want   error
	}{
		{200, nil}, {202, nil}, {204, nil},
		{429, siem.ErrRetryable}, {500, siem.ErrRetryable}, {502, siem.ErrRetryable}, {503, siem.ErrRetryable},
		{400, siem.ErrPermanent}, {401, siem.ErrPermanent}, {403, siem.ErrPermanent}, {404, siem.ErrPermanent},
		{409, siem.ErrPermanent}, {413, siem.ErrPermanent}, {302, siem.ErrPermanent},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			rcv := newReceiver(t, p, p.pool, signingKey, tt.status)
			s, err := siem.NewWebhook(webhookConfig(t, rcv.srv.URL, p.clientTLS()))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			err = s.Deliver(context.Background(), e)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Deliver = %v, want %v", err, tt.want)
			}
			var de *siem.DeliveryError
			if tt.want != nil && (!errors.As(err, &de) || de.Status != tt.status || de.EventID != e.ID) {
				t.Fatalf("error %#v does not carry status %d and the event id", err, tt.status)
			}
		})
	}
}

func TestHTTPSinkHeadersAndBodies(t *testing.T) {
	p := newPKI(t, "headers")
	e := alertEvent("0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d03", "agent-1", "i-1", "i-2")
	token := "11111111-2222-3333-4444-555555555555"

	t.Run("webhook: signature over the raw body, event id header", func(t *testing.T) {
		rcv := newReceiver(t, p, p.pool, signingKey)
		s, err := siem.NewWebhook(webhookConfig(t, rcv.srv.URL, p.clientTLS()))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Deliver(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		a := rcv.snapshot()[0]
		want, _ := siem.WebhookPayload(e)
		if a.sigErr != nil || a.id != e.ID || string(a.body) != string(want) {
			t.Fatalf("attempt: sigErr %v, id %q, body %s", a.sigErr, a.id, a.body)
		}
		// The receiver's check fails on any other bytes, even equivalent JSON.
		if err := siem.Verify(signingKey, a.signature, append(a.body, ' '), time.Now(), 0); !errors.Is(err, siem.ErrSignatureMismatch) {
			t.Fatalf("Verify over altered body = %v", err)
		}
	})

	t.Run("hec: Splunk token from the environment", func(t *testing.T) {
		rcv := newReceiver(t, p, p.pool, nil)
		env := map[string]string{"HEC_TOKEN": token}
		s, err := siem.NewHEC(siem.HECConfig{
			HTTPConfig: siem.HTTPConfig{Name: "splunk", URL: rcv.srv.URL + "/services/collector/event", TLS: p.clientTLS(),
				LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }},
			Token:  siem.Secret{Env: "HEC_TOKEN"},
			Fields: siem.HECFields{Host: "custody-1", Index: "compliance"},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Deliver(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		a := rcv.snapshot()[0]
		want, _ := siem.HECPayload(e, siem.HECFields{Host: "custody-1", Index: "compliance"})
		if a.auth != "Splunk "+token || string(a.body) != string(want) || a.signature != "" {
			t.Fatalf("auth %q, signature %q, body %s", a.auth, a.signature, a.body)
		}
		for _, out := range []string{fmt.Sprintf("%v", s), fmt.Sprintf("%+v", *s), fmt.Sprintf("%#v", s)} {
			if strings.Contains(out, token) {
				t.Fatalf("formatting the sink shows the token: %s", out)
			}
		}
	})

	t.Run("ocsf: event types without a class are not sent", func(t *testing.T) {
		rcv := newReceiver(t, p, p.pool, nil)
		s, err := siem.NewOCSF(siem.HTTPConfig{Name: "lake", URL: rcv.srv.URL, TLS: p.clientTLS()})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		consent := domain.Event{ID: "0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d04", Source: "genesys-cloud/org-3f1c", Type: domain.ConsentCapturedType,
			Time: raisedAt, Subject: "i-1", Data: &domain.ConsentCaptured{Method: "ivr_verbal"}}
		if err := s.Deliver(context.Background(), consent); !errors.Is(err, siem.ErrNotForwarded) {
			t.Fatalf("Deliver(consent.captured) = %v, want ErrNotForwarded", err)
		}
		if err := s.Deliver(context.Background(), e); err != nil {
			t.Fatal(err)
		}
		if n := len(rcv.snapshot()); n != 1 {
			t.Fatalf("receiver saw %d requests, want 1", n)
		}
	})
}

func TestSinkConfigErrors(t *testing.T) {
	p := newPKI(t, "config")
	tests := []struct {
		name  string
		build func() error
		want  []string
	}{
		{"webhook without signing key", func() error {
			_, err := siem.NewWebhook(siem.HTTPConfig{Name: "grc", URL: "https://x.example/", TLS: p.clientTLS()})
			return err
		}, []string{"signingKey is required"}},
		{"plain http and a bad name, reported together", func() error {
			_, err := siem.NewWebhook(siem.HTTPConfig{Name: "GRC!", URL: "http://x.example/", TLS: p.clientTLS(), SigningKey: siem.Secret{Env: "K"}})
			return err
		}, []string{"must be https", "name \"GRC!\""}},
		{"secret with file and env", func() error {
			_, err := siem.NewWebhook(siem.HTTPConfig{Name: "grc", URL: "https://x.example/", TLS: p.clientTLS(), SigningKey: siem.Secret{Env: "K", File: "/f"}})
			return err
		}, []string{"not both"}},
		{"missing secret file", func() error {
			_, err := siem.NewWebhook(siem.HTTPConfig{Name: "grc", URL: "https://x.example/", TLS: p.clientTLS(), SigningKey: siem.Secret{File: "/nonexistent/key"}})
			return err
		}, []string{"file /nonexistent/key"}},
		{"hec without token", func() error {
			_, err := siem.NewHEC(siem.HECConfig{HTTPConfig: siem.HTTPConfig{Name: "splunk", URL: "https://x.example/", TLS: p.clientTLS()}})
			return err
		}, []string{"token"}},
		{"bad pin", func() error {
			tc := p.clientTLS()
			tc.Pins = []string{"not-base64"}
			_, err := siem.NewOCSF(siem.HTTPConfig{Name: "lake", URL: "https://x.example/", TLS: tc})
			return err
		}, []string{"pins[0]"}},
		{"syslog without address", func() error {
			_, err := siem.NewCEFSyslog(siem.SyslogConfig{Name: "arcsight", TLS: p.clientTLS()})
			return err
		}, []string{"address must be host:port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.build()
			if !errors.Is(err, siem.ErrConfig) {
				t.Fatalf("error %v does not match ErrConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
