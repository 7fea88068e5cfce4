package main_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/projections"
	"github.com/custody/custody/streams"
)

// testPostgres creates a database for the test on the CUSTODY_TEST_POSTGRES server,
// dropped at the end, and returns its URL. Without the variable the test is skipped,
// unless CI is set (.ci/run starts a server and sets both).
func testPostgres(t *testing.T) string {
	t.Helper()
	admin := os.Getenv("CUSTODY_TEST_POSTGRES")
	if admin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CUSTODY_TEST_POSTGRES is not set, and CI is: .ci/run starts a PostgreSQL server for this test")
		}
		t.Skip("CUSTODY_TEST_POSTGRES is not set")
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	b := make([]byte, 6)
	rand.Read(b)
	name := "custody_ha_" + hex.EncodeToString(b)
	if _, err := db.Exec(`CREATE DATABASE ` + name + ` TEMPLATE template0 ENCODING 'UTF8'`); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() { db.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`) })
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// TestProjectorFailover runs two custody serve processes on one NATS server and one
// PostgreSQL store, so that each projector has an active instance and a standby, and
// kills the process holding the most projector leases with SIGKILL, again and again,
// while simulated traffic is published; a new process is started after each kill. Each
// time, the survivor takes the dead process's leases over within seconds. At the end
// every view equals its recomputation from the log (the reports before and after a
// rebuild are byte-identical), every checkpoint is at the last sequence, no view holds
// an event twice, and no alert is in the alerts stream twice.
func TestProjectorFailover(t *testing.T) {
	store := testPostgres(t)
	interactions, kills := "8000", 8
	if testing.Short() {
		interactions, kills = "1200", 4
	}
	dir := t.TempDir()
	logSrv, err := streams.StartEmbedded(streams.EmbeddedConfig{DataDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer logSrv.Shutdown()
	natsURL := logSrv.URL()
	db, err := sql.Open("pgx", store)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	procs := map[int]*exec.Cmd{}
	n := 0
	start := func() {
		n++
		data := filepath.Join(dir, "serve-"+strconv.Itoa(n))
		p := child(t, "serve", "--nats", natsURL, "--store", store, "--data", data)
		procs[p.Process.Pid] = p
	}
	defer func() {
		for _, p := range procs {
			p.Process.Kill()
			p.Wait()
		}
	}()
	// holders maps each projector lease to the pid holding it (and unexpired).
	holders := func() map[string]int {
		out := map[string]int{}
		rows, err := db.Query(`SELECT name, holder, expires_at FROM leases`)
		if err != nil {
			return out
		}
		defer rows.Close()
		for rows.Next() {
			var name, holder, exp string
			rows.Scan(&name, &holder, &exp)
			if e, err := time.Parse("2006-01-02T15:04:05.000000000Z", exp); err != nil || e.Before(time.Now()) {
				continue
			}
			parts := strings.Split(holder, "/")
			if len(parts) == 3 {
				pid, _ := strconv.Atoi(parts[1])
				out[name] = pid
			}
		}
		return out
	}
	names := append([]string{projections.TimelineName, "outbox"}, projections.ViewNames...)
	allHeldBy := func(alive map[int]*exec.Cmd) bool {
		h := holders()
		for _, name := range names {
			if _, ok := alive[h[name]]; !ok {
				return false
			}
		}
		return true
	}
	start()
	start()
	deadline := time.Now().Add(60 * time.Second)
	for !allHeldBy(procs) {
		if time.Now().After(deadline) {
			t.Fatalf("the projectors' leases were not taken: %v", holders())
		}
		time.Sleep(50 * time.Millisecond)
	}

	in := simulate(t, "--seed", "11", "--interactions", interactions)
	lines := bytes.SplitAfter(in, []byte("\n"))
	chunk := len(lines)/kills + 1
	pubData := filepath.Join(dir, "publisher")
	var takeovers []time.Duration
	for k := 0; k < kills; k++ {
		if lo := k * chunk; lo < len(lines) {
			part := bytes.Join(lines[lo:min(lo+chunk, len(lines))], nil)
			if code, _, errs := run(t, part, "publish", "--nats", natsURL, "--store", store, "--data", pubData, "-"); code != 0 {
				t.Fatalf("publish chunk %d: %s", k, tail(errs))
			}
		}
		// Kill the process that holds the most leases: the active instance.
		count := map[int]int{}
		for _, pid := range holders() {
			count[pid]++
		}
		victim := 0
		for pid, c := range count {
			if _, ok := procs[pid]; ok && (victim == 0 || c > count[victim]) {
				victim = pid
			}
		}
		if victim == 0 {
			t.Fatalf("no live process holds a lease: %v", holders())
		}
		p := procs[victim]
		p.Process.Signal(syscall.SIGKILL)
		p.Wait()
		delete(procs, victim)
		killed := time.Now()
		deadline := killed.Add(60 * time.Second)
		for !allHeldBy(procs) {
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: the survivor did not take the leases over: %v", k, holders())
			}
			time.Sleep(20 * time.Millisecond)
		}
		takeovers = append(takeovers, time.Since(killed))
		start()
	}
	t.Logf("takeovers after SIGKILL of the active process: %v", takeovers)

	// Everything applied: every checkpoint at the last sequence.
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	es, err := js.Stream(context.Background(), streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := es.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	last := info.State.LastSeq
	deadline = time.Now().Add(3 * time.Minute)
	for {
		done := true
		for _, name := range append([]string{projections.TimelineName}, projections.ViewNames...) {
			var cp uint64
			db.QueryRow(`SELECT seq FROM checkpoints WHERE projector = $1`, name).Scan(&cp)
			done = done && cp == last
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("views did not reach %d", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// No view holds an event twice.
	oneRowPerEvent(t, db, func(ctx context.Context) (*projections.Store, error) {
		return projections.OpenPostgres(ctx, store)
	})
	// Let the outbox drain, then every alert is in the stream once.
	as, err := js.Stream(context.Background(), streams.AlertsStream)
	if err != nil {
		t.Fatal(err)
	}
	var raised int
	deadline = time.Now().Add(time.Minute)
	for {
		var unpublished int
		db.QueryRow(`SELECT COUNT(*), COALESCE(SUM(CASE WHEN published THEN 0 ELSE 1 END), 0) FROM alerts`).Scan(&raised, &unpublished)
		ai, err := as.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if unpublished == 0 && uint64(raised) <= ai.State.Msgs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alerts: %d raised, %d unpublished, %d in the stream", raised, unpublished, ai.State.Msgs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ai, _ := as.Info(context.Background())
	if raised == 0 {
		t.Fatal("no alert raised: the test proves nothing about alerts")
	}
	seen := alertsInStream(t, as, ai.State.Msgs)
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("alert %s is in the alerts stream %d times", id, n)
		}
	}
	for _, p := range procs {
		p.Process.Signal(syscall.SIGTERM)
		if err := p.Wait(); err != nil {
			t.Fatalf("serve did not stop cleanly: %v", err)
		}
	}
	procs = map[int]*exec.Cmd{}

	// Every view equals its recomputation: reports before and after a rebuild.
	asOf := "2026-03-09T12:00:00Z"
	report := func() map[string]string {
		out := map[string]string{}
		for _, name := range []string{"unauthorized", "consent", "retention", "exposure", "access-audit"} {
			code, o, errs := run(t, nil, "report", name, "--nats", natsURL, "--store", store, "--data", pubData, "--as-of", asOf)
			if code != 0 {
				t.Fatalf("report %s: %s", name, errs)
			}
			out[name] = withoutExecution(o)
		}
		return out
	}
	live := report()
	if code, _, errs := run(t, nil, "rebuild", "--nats", natsURL, "--store", store, "--data", pubData); code != 0 {
		t.Fatalf("rebuild: %s", errs)
	}
	rebuilt := report()
	for name, want := range rebuilt {
		if live[name] != want {
			t.Fatalf("report %s differs between the failed-over views and a rebuild", name)
		}
	}
	t.Logf("%d events, %d kills of the active process, %d alerts once each, every view at %d", last, kills, len(seen), last)
}
