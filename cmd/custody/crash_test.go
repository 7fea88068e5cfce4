package main_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	_ "modernc.org/sqlite"

	main "github.com/custody/custody/cmd/custody"
	"github.com/custody/custody/domain"
	"github.com/custody/custody/projections"
	"github.com/custody/custody/streams"
)

// TestMain lets the test binary run custody itself in a child process, so that tests
// can kill a real processor with SIGKILL.
func TestMain(m *testing.M) {
	if args := os.Getenv("CUSTODY_TEST_MAIN_ARGS"); args != "" {
		var argv []string
		if err := json.Unmarshal([]byte(args), &argv); err != nil {
			panic(err)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := main.Run(ctx, argv, os.Stdin, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// child starts custody with args in a child process.
func child(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	b, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "CUSTODY_TEST_MAIN_ARGS="+string(b))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// waitURL waits until the data directory names a server other than prev.
func waitURL(t *testing.T, data, prev string) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(data, "nats.url")); err == nil {
			if u := strings.TrimSpace(string(b)); u != "" && u != prev {
				return u
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("serve did not start")
	return ""
}

// checkpoints reads every view's checkpoint from the store (a reader beside the writer).
func checkpoints(t *testing.T, data string) map[string]uint64 {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "custody.db")+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]uint64{}
	rows, err := db.Query(`SELECT projector, seq FROM checkpoints`)
	if err != nil {
		return out
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		var s uint64
		rows.Scan(&p, &s)
		out[p] = s
	}
	return out
}

func alertCounts(t *testing.T, data string) (raised, unpublished int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "custody.db")+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raised, unpublished = -1, -1
	db.QueryRow(`SELECT COUNT(*), COALESCE(SUM(CASE WHEN published THEN 0 ELSE 1 END), 0) FROM alerts`).Scan(&raised, &unpublished)
	return raised, unpublished
}

func reportsAt(t *testing.T, data, asOf string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range []string{"unauthorized", "consent", "retention", "exposure", "access-audit"} {
		code, o, errs := run(t, nil, "report", name, "--data", data, "--as-of", asOf)
		if code != 0 {
			t.Fatalf("report %s: %s", name, errs)
		}
		out[name] = withoutExecution(o)
	}
	return out
}

func withoutExecution(report string) string {
	var lines []string
	for _, l := range strings.Split(report, "\n") {
		if !strings.Contains(l, `"executionId"`) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// TestCrashRecovery kills the processor with SIGKILL at random points while 100,000
// events flow into the log, then checks that every checkpoint reached the last
// sequence, that every view equals its recomputation from the log, and that no alert
// was raised twice.
func TestCrashRecovery(t *testing.T) {
	interactions, kills := "11600", 9
	if testing.Short() {
		interactions, kills = "1500", 8
	}
	data := filepath.Join(t.TempDir(), "data")
	in := simulate(t, "--seed", "5", "--interactions", interactions)
	lines := bytes.SplitAfter(in, []byte("\n"))
	chunk := len(lines)/kills + 1
	r := rand.New(rand.NewPCG(5, 5))
	prev := ""
	for k := 0; k < kills; k++ {
		proc := child(t, "serve", "--data", data)
		prev = waitURL(t, data, prev)
		if lo := k * chunk; lo < len(lines) {
			part := bytes.Join(lines[lo:min(lo+chunk, len(lines))], nil)
			if code, _, errs := run(t, part, "publish", "--data", data, "-"); code != 0 {
				proc.Process.Kill()
				t.Fatalf("publish chunk %d: %s", k, tail(errs))
			}
		}
		time.Sleep(time.Duration(50+r.IntN(900)) * time.Millisecond)
		proc.Process.Signal(syscall.SIGKILL)
		proc.Wait()
	}
	// A last run catches up and stops cleanly.
	proc := child(t, "serve", "--data", data)
	url := waitURL(t, data, prev)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	s, _ := js.Stream(context.Background(), streams.EventsStream)
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	last := info.State.LastSeq
	deadline := time.Now().Add(5 * time.Minute)
	for {
		cps := checkpoints(t, data)
		done := cps[projections.TimelineName] == last
		for _, v := range projections.ViewNames {
			done = done && cps[v] == last
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("views did not catch up to %d: %v", last, cps)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Wait for the alerts outbox to drain (the clock raises overdue alerts once the
	// views are idle, so wait until the table and the stream agree twice in a row), then
	// find every alert in the stream once.
	as, err := js.Stream(context.Background(), streams.AlertsStream)
	if err != nil {
		t.Fatal(err)
	}
	var ainfo *jetstream.StreamInfo
	agreed := 0
	for agreed < 2 {
		raised, unpublished := alertCounts(t, data)
		if ainfo, err = as.Info(context.Background()); err != nil {
			t.Fatal(err)
		}
		if unpublished == 0 && uint64(raised) == ainfo.State.Msgs {
			agreed++
		} else {
			agreed = 0
		}
		if time.Now().After(deadline) {
			t.Fatalf("alerts: %d raised, %d unpublished, %d in the stream", raised, unpublished, ainfo.State.Msgs)
		}
		time.Sleep(500 * time.Millisecond)
	}
	alertIDs := alertsInStream(t, as, ainfo.State.Msgs)
	nc.Close()
	proc.Process.Signal(syscall.SIGTERM)
	if err := proc.Wait(); err != nil {
		t.Fatalf("serve did not stop cleanly: %v", err)
	}
	if len(alertIDs) == 0 {
		t.Fatal("no alert reached the alerts stream; the test proves nothing about them")
	}
	for id, n := range alertIDs {
		if n != 1 {
			t.Fatalf("alert %s is in the alerts stream %d times", id, n)
		}
	}
	if got := uint64(len(lines)); last < got/2 {
		t.Fatalf("log holds %d events for %d lines", last, got)
	}

	// No event applied twice: every view table has one row per event id.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "custody.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	oneRowPerEvent(t, db, func(ctx context.Context) (*projections.Store, error) {
		return projections.OpenSQLite(ctx, filepath.Join(data, "custody.db"))
	})
	// Every alert read from the stream is a published row of the alerts table (the
	// clock may have raised more since the table and the stream agreed above).
	for id := range alertIDs {
		var published bool
		if err := db.QueryRow(`SELECT published FROM alerts WHERE id = ?`, id).Scan(&published); err != nil || !published {
			t.Fatalf("alert %s is in the stream but not a published row of the alerts table (%v)", id, err)
		}
	}
	db.Close()

	// Every view equals its recomputation: the reports before and after a rebuild
	// from sequence 1 are byte-identical.
	asOf := "2026-03-09T12:00:00Z"
	live := reportsAt(t, data, asOf)
	if code, _, errs := run(t, nil, "rebuild", "--data", data); code != 0 {
		t.Fatalf("rebuild: %s", errs)
	}
	rebuilt := reportsAt(t, data, asOf)
	for name, want := range rebuilt {
		if live[name] != want {
			t.Fatalf("report %s differs between the crashed-and-recovered views and a rebuild", name)
		}
	}
	t.Logf("%d events, %d kills, %d alerts, every view at %d", last, kills, len(alertIDs), last)
}

// oneRowPerEvent checks that there is one table per view and that no view keeps an
// event id twice (no event applied twice), reading the store as the projections
// package does.
func oneRowPerEvent(t *testing.T, db *sql.DB, open func(context.Context) (*projections.Store, error)) {
	t.Helper()
	rows, err := db.Query(`SELECT view, tbl FROM view_tables`)
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]string{}
	for rows.Next() {
		var v, tbl string
		rows.Scan(&v, &tbl)
		tables[v] = tbl
	}
	rows.Close()
	if len(tables) != len(projections.ViewNames) {
		t.Fatalf("view tables: %v", tables)
	}
	ctx := context.Background()
	store, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for v := range tables {
		kept, err := store.KeptEvents(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, k := range kept {
			if ids[k.Event.ID] {
				t.Fatalf("view %s keeps event %s twice", v, k.Event.ID)
			}
			ids[k.Event.ID] = true
		}
		if len(kept) == 0 {
			t.Fatalf("view %s keeps nothing", v)
		}
	}
}

// alertsInStream reads the first n messages of the alerts stream and counts each alert
// id.
func alertsInStream(t *testing.T, as jetstream.Stream, n uint64) map[string]int {
	t.Helper()
	ids := map[string]int{}
	if n == 0 {
		return ids
	}
	cons, err := as.OrderedConsumer(context.Background(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < n; i++ {
		m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		e, err := domain.Parse(m.Data())
		if err != nil {
			t.Fatal(err)
		}
		ids[e.ID]++
	}
	return ids
}
