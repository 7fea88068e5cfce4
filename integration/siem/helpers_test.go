package siem_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/siem"
)

// pki is a test CA with a server certificate for 127.0.0.1/localhost and a client
// certificate, all written as PEM files.
type pki struct {
	caFile, certFile, keyFile string // CA bundle; client certificate and key
	serverCert                tls.Certificate
	serverLeaf                *x509.Certificate
	pool                      *x509.CertPool
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	dir := t.TempDir()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name + " test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := &pki{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)

	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, server bool) ([]byte, *ecdsa.PrivateKey) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		if server {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	sDER, sKey := issue(2, "receiver", x509.ExtKeyUsageServerAuth, true)
	p.serverLeaf, _ = x509.ParseCertificate(sDER)
	p.serverCert = tls.Certificate{Certificate: [][]byte{sDER}, PrivateKey: sKey, Leaf: p.serverLeaf}
	cDER, cKey := issue(3, "custody", x509.ExtKeyUsageClientAuth, false)
	p.certFile = writePEM(t, dir, "client.pem", "CERTIFICATE", cDER)
	keyDER, err := x509.MarshalECPrivateKey(cKey)
	if err != nil {
		t.Fatal(err)
	}
	p.keyFile = writePEM(t, dir, "client-key.pem", "EC PRIVATE KEY", keyDER)
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clientTLS is the sink-side TLS configuration trusting p's CA with p's client cert.
func (p *pki) clientTLS() siem.TLSConfig {
	return siem.TLSConfig{CAFile: p.caFile, CertFile: p.certFile, KeyFile: p.keyFile}
}

// serverTLS requires and verifies client certificates issued by clientCA.
func (p *pki) serverTLS(clientCA *x509.CertPool) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{p.serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCA,
		MinVersion:   tls.VersionTLS12,
	}
}

func writeSecret(t *testing.T, value string) siem.Secret {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return siem.Secret{File: path}
}

// attempt is one request the receiver saw.
type attempt struct {
	at        time.Time
	body      []byte
	id        string
	signature string
	auth      string
	sigErr    error
	status    int
}

// receiver is an HTTPS receiver requiring client certificates. It answers with the
// statuses of script in turn (then with final), verifies the HMAC over the raw body,
// and stores each event id once (receiver-side dedupe).
type receiver struct {
	t   *testing.T
	srv *httptest.Server
	key []byte

	mu       sync.Mutex
	script   []int
	final    int
	attempts []attempt
	stored   map[string]int // event id -> index of the attempt that stored it
	// duplicates counts deliveries of an event already stored.
	duplicates int
	// storeThenFail makes the receiver store the event and still answer 503 on the first
	// attempt: a response lost after the receiver committed.
	storeThenFail bool
	arrived       chan struct{}
}

func newReceiver(t *testing.T, p *pki, clientCA *x509.CertPool, key []byte, script ...int) *receiver {
	r := &receiver{t: t, key: key, script: script, final: http.StatusOK, stored: map[string]int{}, arrived: make(chan struct{}, 100)}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.srv.TLS = p.serverTLS(clientCA)
	r.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	r.srv.StartTLS()
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	a := attempt{at: time.Now(), body: body, id: req.Header.Get(siem.EventIDHeader),
		signature: req.Header.Get(siem.SignatureHeader), auth: req.Header.Get("Authorization")}
	if r.key != nil {
		a.sigErr = siem.Verify(r.key, a.signature, body, time.Now(), siem.DefaultSkew)
	}
	r.mu.Lock()
	status := r.final
	if len(r.script) > 0 {
		status, r.script = r.script[0], r.script[1:]
	}
	if a.sigErr != nil {
		status = http.StatusUnauthorized
	}
	if status/100 == 2 || (r.storeThenFail && len(r.attempts) == 0) {
		if _, dup := r.stored[a.id]; dup {
			r.duplicates++ // already stored: acknowledge, keep one copy
		} else {
			r.stored[a.id] = len(r.attempts)
		}
	}
	a.status = status
	r.attempts = append(r.attempts, a)
	r.mu.Unlock()
	w.WriteHeader(status)
	r.arrived <- struct{}{}
}

func (r *receiver) setFinal(status int) {
	r.mu.Lock()
	r.final = status
	r.mu.Unlock()
}

func (r *receiver) snapshot() []attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]attempt(nil), r.attempts...)
}

func (r *receiver) storedCount() (events, duplicates int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.stored), r.duplicates
}

// waitAttempts waits until the receiver has seen n requests.
func (r *receiver) waitAttempts(n int, timeout time.Duration) []attempt {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if a := r.snapshot(); len(a) >= n {
			return a
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("receiver saw %d attempts, want %d", len(r.snapshot()), n)
		}
		select {
		case <-r.arrived:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// broker is an embedded nats-server with JetStream on a temp dir and the four custody
// streams the router reads.
type broker struct {
	nc *nats.Conn
	js jetstream.JetStream
}

func newBroker(t *testing.T) *broker {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		JetStream:  true,
		StoreDir:   t.TempDir(),
		DontListen: true,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, subj := range map[string]string{siem.AlertsStream: siem.AlertsSubject, siem.EventsStream: siem.EventsSubject,
		siem.ReportsStream: siem.ReportsSubject, siem.IntegrityStream: "custody.integrity.>"} {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{subj}, Storage: jetstream.FileStorage,
			Duplicates: 10 * time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	return &broker{nc: nc, js: js}
}

// publish stores an event under its type's subject, with its id as Nats-Msg-Id.
func (b *broker) publish(t *testing.T, e domain.Event) {
	t.Helper()
	body, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	subj := "custody.event." + string(e.Type)
	switch e.Type {
	case domain.AlertRaisedType:
		subj = "custody.alert.raised"
	case domain.ReportExecutedType:
		subj = "custody.report.executed"
	case domain.CheckpointSignedType:
		subj = siem.CheckpointSubject
	}
	if _, err := b.js.Publish(context.Background(), subj, body, jetstream.WithMsgID(e.ID)); err != nil {
		t.Fatal(err)
	}
}

// publishNote stores a bare signed note on the checkpoint subject, as the integrity
// projector publishes it.
func (b *broker) publishNote(t *testing.T, note string, size int64) {
	t.Helper()
	if _, err := b.js.Publish(context.Background(), siem.CheckpointSubject, []byte(note),
		jetstream.WithMsgID("checkpoint-"+strconv.FormatInt(size, 10))); err != nil {
		t.Fatal(err)
	}
}

// consumerInfo returns the router's durable consumer on a stream.
func (b *broker) consumerInfo(t *testing.T, stream, durable string) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := b.js.Consumer(context.Background(), stream, durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// deadLetters reads every message of a dead-letter subject.
func (b *broker) deadLetters(t *testing.T, subject string) []jetstream.Msg {
	t.Helper()
	ctx := context.Background()
	s, err := b.js.Stream(ctx, siem.DefaultDeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := c.FetchNoWait(100)
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for m := range batch.Messages() {
		out = append(out, m)
	}
	return out
}

// runRouter starts the router and stops it when the test ends.
func runRouter(t *testing.T, cfg siem.Config) {
	t.Helper()
	r, err := siem.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("router: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("router did not stop")
		}
	})
}

// counter reads a metric of a sink from the registry.
func counter(t *testing.T, reg *prometheus.Registry, name, sink string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelValue(m, "sink") == sink {
				if m.Counter != nil {
					return m.Counter.GetValue()
				}
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// eventually polls cond until it holds.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Fixed events used by the tests and golden files.
var (
	raisedAt    = time.Date(2026, 3, 8, 7, 0, 0, 123_000_000, time.UTC)
	triggeredAt = time.Date(2026, 3, 8, 6, 59, 59, 123_000_000, time.UTC)
)

func alertEvent(id, agent string, interactions ...string) domain.Event {
	return domain.Event{ID: id, Source: "custody/unauthorized-24h", Type: domain.AlertRaisedType, Time: raisedAt,
		Subject: agent, DataContentType: domain.ContentType,
		Data: &domain.AlertRaised{Rule: domain.RuleUnauthorizedAccessThreshold, AgentID: agent, InteractionIDs: interactions,
			TriggeredAt: triggeredAt, Count: len(interactions)}}
}

// testNote is a checkpoint of 25960 events signed with a test key by
// golang.org/x/mod/sumdb/note; testRoot is its root hash.
const (
	testRoot = "ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLs="
	testNote = "custody/CUSTODY_EVENTS\n25960\n" + testRoot + "\n\n" +
		"— custody-checkpoint X6Id/qDecofLVfMD/J5M72GLTCJ1JkrTJhy/UjY85zaIBwr8zZ0sjwPoOZlPsvrnnl/WBBSfpKqOct4o4d0Ok8KD5gg=\n"
	// emptyNote is the checkpoint of the empty tree, signed with the same key.
	emptyNote = "custody/CUSTODY_EVENTS\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n" +
		"— custody-checkpoint X6Id/mT9iDKFZcL7+q400VVlFo82qR/MmlcA5QEQO2+qR4l1IlQZpPq3zY0Xzjf8eBvJ/lJwCtGYdC00hg4+WznJPQk=\n"
)

// checkpointEvent is the checkpoint.signed of a note, signed at raisedAt.
func checkpointEvent(note string) domain.Event {
	e, err := domain.CheckpointEvent(note, raisedAt)
	if err != nil {
		panic(err)
	}
	return e
}

func contains(haystack []byte, needles ...string) string {
	for _, n := range needles {
		if strings.Contains(string(haystack), n) {
			return n
		}
	}
	return ""
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
