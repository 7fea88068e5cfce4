package main_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	main "github.com/custody/custody/cmd/custody"
	"github.com/custody/custody/domain"
)

// run executes custody in-process and returns its exit status, stdout and stderr.
func run(t testing.TB, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := main.Run(context.Background(), args, bytes.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func simulate(t testing.TB, args ...string) []byte {
	t.Helper()
	code, out, errs := run(t, nil, append([]string{"simulate"}, args...)...)
	if code != 0 {
		t.Fatalf("simulate: %d %s", code, errs)
	}
	return []byte(out)
}

var summary = regexp.MustCompile(`(?m)^published (\d+), duplicates (\d+), rejected (\d+)\n\z`)

func lastLine(t testing.TB, stderr string) (p, d, r int) {
	t.Helper()
	m := summary.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("last stderr line is not the summary:\n%s", tail(stderr))
	}
	fmt.Sscan(m[1], &p)
	fmt.Sscan(m[2], &d)
	fmt.Sscan(m[3], &r)
	return
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

// distinct counts the distinct ids of a JSON Lines input and groups events by subject.
func distinct(t testing.TB, jsonl []byte) (map[string]domain.Event, map[string][]domain.Event) {
	t.Helper()
	byID := map[string]domain.Event{}
	bySubject := map[string][]domain.Event{}
	sc := bufio.NewScanner(bytes.NewReader(jsonl))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		e, err := domain.Parse(sc.Bytes())
		if err != nil {
			t.Fatalf("simulated event invalid: %v", err)
		}
		if _, dup := byID[e.ID]; dup {
			continue
		}
		byID[e.ID] = e
		bySubject[e.Subject] = append(bySubject[e.Subject], e)
	}
	return byID, bySubject
}

func TestSimulatePublishReplay(t *testing.T) {
	n := "20000"
	if testing.Short() {
		n = "2000"
	}
	data := filepath.Join(t.TempDir(), "data")
	in := simulate(t, "--seed", "1", "--interactions", n)
	byID, bySubject := distinct(t, in)

	code, _, errs := run(t, in, "publish", "--data", data, "-")
	p, d, r := lastLine(t, errs)
	if code != 0 || r != 0 || p != len(byID) {
		t.Fatalf("publish: exit %d, published %d duplicates %d rejected %d; want %d published\n%s", code, p, d, r, len(byID), tail(errs))
	}
	lines := bytes.Count(in, []byte("\n"))
	if p+d != lines {
		t.Fatalf("published %d + duplicates %d != %d lines", p, d, lines)
	}

	// Publishing the same file again stores nothing new.
	code, _, errs = run(t, in, "publish", "--data", data, "-")
	p2, d2, r2 := lastLine(t, errs)
	if code != 0 || p2 != 0 || r2 != 0 || d2 != lines {
		t.Fatalf("second publish: exit %d, %d/%d/%d", code, p2, d2, r2)
	}

	// Replay of a few interactions equals the brute-force timeline of the input.
	subjects := make([]string, 0, len(bySubject))
	for s := range bySubject {
		subjects = append(subjects, s)
	}
	sort.Strings(subjects)
	for _, subj := range []string{subjects[0], subjects[len(subjects)/2], subjects[len(subjects)-1]} {
		want := bySubject[subj]
		code, out, errs := run(t, nil, "replay", "--data", data, "--interaction", subj, "--format", "jsonl")
		if code != 0 {
			t.Fatalf("replay %s: %d %s", subj, code, errs)
		}
		got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(got) != len(want) {
			t.Fatalf("replay %s: %d events, want %d", subj, len(got), len(want))
		}
		var prev time.Time
		seen := map[string]bool{}
		for _, line := range got {
			e, err := domain.Parse([]byte(line))
			if err != nil {
				t.Fatal(err)
			}
			if e.Time.Before(prev) {
				t.Fatalf("replay %s not in event-time order at %s", subj, e.ID)
			}
			prev = e.Time
			w, ok := byID[e.ID]
			if !ok || w.Subject != subj {
				t.Fatalf("replay %s printed foreign event %s", subj, e.ID)
			}
			wb, _ := w.MarshalJSON()
			if string(wb) != line {
				t.Fatalf("replay %s: stored bytes differ from the canonical input\n%s\n%s", subj, wb, line)
			}
			seen[e.ID] = true
		}
		if len(seen) != len(want) {
			t.Fatalf("replay %s: %d distinct events, want %d", subj, len(seen), len(want))
		}
		code, out, _ = run(t, nil, "replay", "--data", data, "--interaction", subj, "--tz", "America/Chicago")
		if code != 0 || !strings.Contains(out, "SEQ") || strings.Count(out, "\n") != len(want)+1 {
			t.Fatalf("replay table %s: exit %d\n%s", subj, code, out)
		}
	}
}

func TestPublishReportsBadLinesAndStoresNothingOfThem(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	good := `{"specversion":"1.0","id":"0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d0e","source":"genesys-cloud/org-3f1c","type":"consent.captured","time":"2026-03-08T06:59:59.123Z","subject":"c0a8e1f2","data":{"method":"ivr_verbal"}}`
	input := strings.Join([]string{
		good,
		``, // blank: skipped, counted
		`{"specversion":"1.0","id":"0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d0f","source":"s","type":"consent.captured","time":"2026-03-08T06:59:59","subject":"c0a8e1f2","data":{"method":"ivr_verbal"}}`,
		`{"specversion":"1.0","id":"0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d10","source":"s","type":"phi.accessed","time":"2026-03-08T06:59:59Z","subject":"c0a8e1f2","data":{"agentId":"a1","action":"forwarded","recipientMasked":"member.one@example.org"}}`,
		`{"specversion":"1.0","id":"0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d11","source":"s","type":"agent.assigned","time":"2026-03-08T06:59:59Z","subject":"c0a8e1f2","data":{"agentId":"SSN:123456789","authorized":"yes"}}`,
		good + "\r", // same id again: a duplicate, with a CRLF ending
		`not json`,
	}, "\n") + "\n"
	code, _, errs := run(t, []byte(input), "publish", "--data", data, "-")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, errs)
	}
	for _, want := range []string{
		"line 3: time: must have an explicit offset",
		"line 4: data.recipientMasked: must be a masked e-mail address",
		"line 5: data.agentId: contains a raw identifier shaped like a Social Security number",
		"line 5: data.authorized: must be a boolean",
		"line 7: event: must be one JSON object",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	if p, d, r := lastLine(t, errs); p != 1 || d != 1 || r != 4 {
		t.Fatalf("summary %d/%d/%d, want 1/1/4", p, d, r)
	}
	if strings.Contains(errs, "123456789") {
		t.Fatal("the rejection echoed the raw identifier")
	}
	// Only the good event is in the log.
	code, out, errs := run(t, nil, "replay", "--data", data, "--interaction", "c0a8e1f2", "--format", "jsonl")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d0e") {
		t.Fatalf("replay: %d\n%s\n%s", code, out, errs)
	}
}

func TestServeHoldsDataDirAndOthersConnect(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var serveErr bytes.Buffer
	go func() {
		done <- main.Run(ctx, []string{"serve", "--data", data}, bytes.NewReader(nil), &bytes.Buffer{}, &serveErr)
	}()
	// Wait for the address file.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(filepath.Join(data, "nats.url")); err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve did not publish its address: %s", serveErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	in := simulate(t, "--seed", "2", "--interactions", "50")
	pctx, pcancel := context.WithTimeout(context.Background(), time.Minute)
	var pout, perr bytes.Buffer
	code := main.Run(pctx, []string{"publish", "--data", data, "-"}, bytes.NewReader(in), &pout, &perr)
	pcancel()
	errs := perr.String()
	if code != 0 {
		select {
		case c := <-done:
			t.Fatalf("serve exited %d while publishing: %s", c, serveErr.String())
		default:
		}
		t.Fatalf("publish while serve runs: %d\n%s", code, tail(errs))
	}
	p, _, _ := lastLine(t, errs)
	_, bySubject := distinct(t, in)
	var subj string
	for s := range bySubject {
		subj = s
		break
	}
	code, out, errs := run(t, nil, "replay", "--data", data, "--interaction", subj, "--format", "jsonl")
	if code != 0 || strings.Count(out, "\n") != len(bySubject[subj]) {
		t.Fatalf("replay while serve runs: %d %s", code, errs)
	}
	cancel()
	select {
	case c := <-done:
		if c != 0 {
			t.Fatalf("serve exited %d: %s", c, serveErr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop on cancellation")
	}
	// After serve stopped, the data directory is free and holds everything.
	if _, err := os.Stat(filepath.Join(data, "nats.url")); !os.IsNotExist(err) {
		t.Fatal("serve left its address file behind")
	}
	code, _, errs = run(t, in, "publish", "--data", data, "-")
	if p2, d2, _ := lastLine(t, errs); code != 0 || p2 != 0 || d2 < p {
		t.Fatalf("republish after serve: %d %s", code, tail(errs))
	}
}

// TestReplayOrderUnderOutOfOrderArrival publishes one interaction's events in an order
// unrelated to their times (two with the same time), and checks that replay prints them
// by event time, ties by stream sequence, with sequences and receive times.
func TestReplayOrderUnderOutOfOrderArrival(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	at := func(min int) string {
		return time.Date(2026, 3, 8, 6, 0, 0, 0, time.UTC).Add(time.Duration(min) * time.Minute).Format(time.RFC3339Nano)
	}
	ev := func(id, typ string, min int, data string) string {
		return fmt.Sprintf(`{"specversion":"1.0","id":"0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d%s","source":"genesys-cloud/org-3f1c","type":"%s","time":"%s","subject":"gc-replay-1","data":%s}`, id, typ, at(min), data)
	}
	// Arrival order: ended, accessed, started, classified, consent (same time as accessed).
	lines := []string{
		ev("05", "interaction.ended", 30, `{"disposition":"resolved"}`),
		ev("04", "phi.accessed", 10, `{"agentId":"agent-7","action":"handled"}`),
		ev("01", "interaction.started", 0, `{"channel":"voice","direction":"inbound"}`),
		ev("02", "interaction.classified", 5, `{"interactionType":"claims_inquiry","dataClassification":"protected_health_information"}`),
		ev("03", "consent.captured", 10, `{"method":"ivr_verbal"}`),
		ev("06", "agent.assigned", 1, `{"agentId":"agent-9","authorized":true}`),
	}
	// One at a time, so stream sequences follow arrival order.
	for _, l := range lines {
		if code, _, errs := run(t, []byte(l+"\n"), "publish", "--data", data, "--atomic-batch", "0", "-"); code != 0 {
			t.Fatalf("publish: %s", errs)
		}
	}
	code, out, errs := run(t, nil, "replay", "--data", data, "--interaction", "gc-replay-1", "--format", "jsonl")
	if code != 0 {
		t.Fatalf("replay: %s", errs)
	}
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		e, err := domain.Parse([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID[len(e.ID)-2:])
	}
	// 04 (sequence 2) and 03 (sequence 5) share a time: the lower sequence first.
	if got, want := strings.Join(ids, " "), "01 06 02 04 03 05"; got != want {
		t.Fatalf("replay order %q, want %q", got, want)
	}
	code, out, _ = run(t, nil, "replay", "--data", data, "--interaction", "gc-replay-1")
	rows := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(rows) != 7 {
		t.Fatalf("table: %d rows\n%s", len(rows), out)
	}
	// Columns: event time, sequence, received. Sequence 3 (started) comes first.
	if f := strings.Fields(rows[1]); f[0] != at(0) || f[1] != "3" {
		t.Fatalf("first row %q", rows[1])
	}
	if code, _, errs := run(t, nil, "replay", "--data", data, "--interaction", "gc-unknown"); code != 1 || !strings.Contains(errs, "no events") {
		t.Fatalf("unknown interaction: exit %d %s", code, errs)
	}
	if code, _, errs := run(t, nil, "replay", "--data", data, "--interaction", "bad id"); code == 0 || !strings.Contains(errs, "--interaction") {
		t.Fatalf("bad id: exit %d %s", code, errs)
	}
}

// --flagged alone means true; a value after it needs an "=", and the error says so
// (nothing is opened or published before).
func TestReportFlaggedValueNeedsEquals(t *testing.T) {
	data := t.TempDir()
	code, _, errs := run(t, nil, "report", "access-audit", "--flagged", "false", "--data", data)
	if code == 0 || !strings.Contains(errs, "--flagged=false") {
		t.Fatalf("--flagged false: exit %d %s", code, errs)
	}
	code, _, errs = run(t, nil, "report", "consent", "--flagged", "--data", data)
	if code == 0 || !strings.Contains(errs, "access-audit report only") {
		t.Fatalf("--flagged on consent: exit %d %s", code, errs)
	}
	code, _, errs = run(t, nil, "report", "access-audit", "--flagged=maybe", "--data", data)
	if code == 0 || !strings.Contains(errs, "must be true or false") {
		t.Fatalf("--flagged=maybe: exit %d %s", code, errs)
	}
	// A flag that needs a value, followed by another flag, is named.
	code, _, errs = run(t, nil, "report", "access-audit", "--agent", "--format", "csv", "--data", data)
	if code == 0 || !strings.Contains(errs, "--agent has no value") {
		t.Fatalf("--agent --format csv: exit %d %s", code, errs)
	}
	code, _, errs = run(t, nil, "replay", "--interaction", "--format", "jsonl", "--data", data)
	if code == 0 || !strings.Contains(errs, "--interaction has no value") {
		t.Fatalf("replay --interaction --format: exit %d %s", code, errs)
	}
}
