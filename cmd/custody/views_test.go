package main_test

// Tests comparing the product's reports (custody report NAME --format json) with the
// brute-force oracle of oracle_test.go: over simulated traffic, over property-generated
// histories (pgregory.net/rapid) with the boundary cases of the counter and arrival
// order, and over a log prefix (--as-of-seq).

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	main "github.com/custody/custody/cmd/custody"
	"github.com/custody/custody/domain"
	sim "github.com/custody/custody/integration/simulate"
)

var reportNames = []string{"unauthorized", "consent", "retention", "exposure", "access-audit"}

// tb is what both *testing.T and *rapid.T offer.
type tb interface {
	Helper()
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// cli runs custody in-process and returns its exit status, stdout and stderr.
func cli(stdin []byte, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := main.Run(context.Background(), args, bytes.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func splitLines(b []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// parseLines decodes every line (duplicates included) in arrival order.
func parseLines(t tb, lines [][]byte) []domain.Event {
	t.Helper()
	evs := make([]domain.Event, 0, len(lines))
	for _, l := range lines {
		e, err := domain.Parse(l)
		if err != nil {
			t.Fatalf("test event invalid: %v\n%s", err, l)
		}
		evs = append(evs, e)
	}
	return evs
}

// publishLines stores lines in order in the log of data; every line must be valid.
func publishLines(t tb, data string, lines [][]byte, extra ...string) {
	t.Helper()
	in := append(bytes.Join(lines, []byte("\n")), '\n')
	code, _, errs := cli(in, append([]string{"publish", "--data", data}, append(extra, "-")...)...)
	if code != 0 {
		t.Fatalf("publish: exit %d\n%s", code, tail(errs))
	}
}

// productReport runs custody report name --format json and decodes its output. A zero
// asOf leaves --as-of out (default: now).
func productReport(t tb, data, name string, asOf time.Time, extra ...string) map[string]any {
	t.Helper()
	args := []string{"report", name, "--data", data, "--format", "json"}
	if !asOf.IsZero() {
		args = append(args, "--as-of", fmtTime(asOf))
	}
	args = append(args, extra...)
	code, out, errs := cli(nil, args...)
	if code != 0 {
		t.Fatalf("custody %s: exit %d\n%s", strings.Join(args, " "), code, tail(errs))
	}
	var v any
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("custody %s: output is not JSON: %v\n%s", strings.Join(args, " "), r, tail(out))
			}
		}()
		v = decodeJSON([]byte(out))
	}()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("custody %s: output is not a JSON object:\n%s", strings.Join(args, " "), tail(out))
	}
	return m
}

// compareReport describes the differences between a product report and the oracle's
// fields, plus the common fields report, asOf and logPosition ("" when equal).
func compareReport(name string, got, want map[string]any, asOf time.Time, logPos int) string {
	var diffs []string
	if got["report"] != name {
		diffs = append(diffs, fmt.Sprintf("%s.report: %s, want %q", name, short(got["report"]), name))
	}
	if s, ok := got["asOf"].(string); !ok {
		diffs = append(diffs, fmt.Sprintf("%s.asOf: %s, want a string", name, short(got["asOf"])))
	} else if at, err := time.Parse(time.RFC3339Nano, s); err != nil || !at.Equal(asOf) || !strings.HasSuffix(s, "Z") {
		diffs = append(diffs, fmt.Sprintf("%s.asOf: %q, want %s", name, s, fmtTime(asOf)))
	}
	if n, ok := got["logPosition"].(json.Number); !ok || string(n) != strconv.Itoa(logPos) {
		diffs = append(diffs, fmt.Sprintf("%s.logPosition: %s, want %d", name, short(got["logPosition"]), logPos))
	}
	if id, ok := got["executionId"].(string); !ok || id == "" {
		diffs = append(diffs, fmt.Sprintf("%s.executionId: %s, want a non-empty string", name, short(got["executionId"])))
	}
	if d := diffJSON(name, normalizeJSON(want), any(got)); d != "" {
		diffs = append(diffs, d)
	}
	return strings.Join(diffs, "\n")
}

// thresholdDiffs checks the alerts report against the oracle: every agent whose count
// reaches 4 on the final set has an active unauthorized_access_threshold alert, and no
// other agent has one.
func thresholdDiffs(t tb, data string, events []domain.Event) string {
	t.Helper()
	want := oracleThresholdAgents(events, oracleOpts{})
	got := productReport(t, data, "alerts", time.Time{})
	list, ok := got["alerts"].([]any)
	if !ok {
		return fmt.Sprintf("alerts.alerts: %s, want a list", short(got["alerts"]))
	}
	active := map[string]bool{}
	for _, a := range list {
		m, _ := a.(map[string]any)
		if m["rule"] == "unauthorized_access_threshold" && m["status"] == "active" {
			id, _ := m["agentId"].(string)
			active[id] = true
		}
	}
	var diffs []string
	for _, A := range sortedKeys(want) {
		if !active[A] {
			diffs = append(diffs, fmt.Sprintf("alerts: agent %s reaches count 4 on the final set but has no active unauthorized_access_threshold alert", A))
		}
	}
	for _, A := range sortedKeys(active) {
		if !want[A] {
			diffs = append(diffs, fmt.Sprintf("alerts: agent %s has an active unauthorized_access_threshold alert but never reaches 4 on the final set", A))
		}
	}
	return strings.Join(diffs, "\n")
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ---- (a) simulated traffic ----

func TestViewsMatchOracleOnSimulatedTraffic(t *testing.T) {
	for _, seed := range []int64{1, 2} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := sim.Write(&buf, sim.Config{Seed: seed, Interactions: 1500}); err != nil {
				t.Fatal(err)
			}
			lines := splitLines(buf.Bytes())
			events := parseLines(t, lines)
			stored, late := oracleStored(events, 24*time.Hour)
			for i, l := range late {
				if l {
					t.Fatalf("simulated traffic has a late event: %s", stored[i].ID)
				}
			}
			data := filepath.Join(t.TempDir(), "data")
			publishLines(t, data, lines)
			start := sim.DefaultStart
			for _, asOf := range []time.Time{
				start.Add(7 * 24 * time.Hour),         // end of the window
				start.Add(84*time.Hour + 1234567890),  // mid-window, off any grid
				start.Add(24 * time.Hour),             // a day in
				start.Add(8*24*time.Hour + time.Hour), // after the window: due dates, overdue redactions
			} {
				for _, name := range reportNames {
					got := productReport(t, data, name, asOf)
					want := oracleReport(name, events, asOf, oracleOpts{})
					if d := compareReport(name, got, want, asOf, len(stored)); d != "" {
						t.Errorf("seed %d, report %s as of %s differs from the oracle:\n%s", seed, name, fmtTime(asOf), d)
					}
				}
			}
			if d := thresholdDiffs(t, data, events); d != "" {
				t.Errorf("seed %d:\n%s", seed, d)
			}
		})
	}
}

// ---- (c) --as-of-seq on a prefix ----

func TestViewsAsOfSeqPrefix(t *testing.T) {
	var buf bytes.Buffer
	if err := sim.Write(&buf, sim.Config{Seed: 3, Interactions: 300}); err != nil {
		t.Fatal(err)
	}
	lines := splitLines(buf.Bytes())
	events := parseLines(t, lines)
	stored, _ := oracleStored(events, 24*time.Hour)
	data := filepath.Join(t.TempDir(), "data")
	publishLines(t, data, lines)
	end := sim.DefaultStart.Add(8 * 24 * time.Hour)
	for _, n := range []int{len(stored) / 3, len(stored) * 2 / 3, len(stored)} {
		for _, name := range reportNames {
			got := productReport(t, data, name, end, "--as-of-seq", strconv.Itoa(n))
			want := oracleReport(name, events, end, oracleOpts{AsOfSeq: n})
			if d := compareReport(name, got, want, end, n); d != "" {
				t.Errorf("report %s --as-of-seq %d differs from the oracle:\n%s", name, n, d)
			}
		}
	}
	// A prefix and an earlier instant together.
	mid := sim.DefaultStart.Add(3 * 24 * time.Hour)
	n := len(stored) / 2
	for _, name := range reportNames {
		got := productReport(t, data, name, mid, "--as-of-seq", strconv.Itoa(n))
		want := oracleReport(name, events, mid, oracleOpts{AsOfSeq: n})
		if d := compareReport(name, got, want, mid, n); d != "" {
			t.Errorf("report %s --as-of %s --as-of-seq %d differs from the oracle:\n%s", name, fmtTime(mid), n, d)
		}
	}
}

// ---- (b) property-generated histories ----

// genEvent is one generated fact; line renders it.
type genEvent struct {
	id   string
	typ  string
	at   time.Time
	subj string
	data map[string]any
}

func (g genEvent) line() []byte { return eventLine(g.id, g.typ, g.at, g.subj, g.data) }

// resend is a second delivery of base event orig: the same bytes, the id in upper case,
// or the same id with other content (a later time).
type resend struct {
	orig int
	kind int
}

func (r resend) line(base []genEvent) []byte {
	g := base[r.orig]
	switch r.kind {
	case 1:
		g.id = strings.ToUpper(g.id)
	case 2:
		g.at = g.at.Add(2 * time.Hour)
	}
	return g.line()
}

var propBase = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

const propSlot = 2 * time.Hour // time grid: 0..72 h in steps of 2 h

func drawHistory(rt *rapid.T) []genEvent {
	nI := rapid.IntRange(3, 8).Draw(rt, "interactions")
	nA := rapid.IntRange(2, 4).Draw(rt, "agents")
	nE := rapid.IntRange(5, 40).Draw(rt, "events")
	inter := func() string { return fmt.Sprintf("i%d", rapid.IntRange(1, nI).Draw(rt, "interaction")) }
	agent := func() string { return fmt.Sprintf("a%d", rapid.IntRange(1, nA).Draw(rt, "agent")) }
	rec := func() string { return fmt.Sprintf("r%d", rapid.IntRange(1, 4).Draw(rt, "recording")) }
	at := func() time.Time {
		return propBase.Add(time.Duration(rapid.IntRange(0, 36).Draw(rt, "slot")) * propSlot)
	}
	types := []string{
		"interaction.started", "interaction.started",
		"interaction.classified", "interaction.classified", "interaction.classified", "interaction.classified",
		"consent.captured", "consent.captured", "consent.declined",
		"agent.assigned", "agent.assigned", "agent.assigned", "agent.assigned",
		"phi.accessed", "phi.accessed", "phi.accessed", "phi.accessed", "phi.accessed", "phi.accessed",
		"interaction.ended", "interaction.ended",
		"recording.stored", "recording.stored",
		"redaction.requested", "redaction.completed", "record.purged",
		"retag", "reassign", "reassign", "reclassify", "touch24", "touch24",
	}
	var out []genEvent
	for k := 0; k < nE; k++ {
		// ids: a random first hex digit (so byte order and time order disagree), then the
		// counter, which keeps them unique.
		id := fmt.Sprintf("%x%07x-0000-4000-8000-%012x", rapid.IntRange(0, 15).Draw(rt, "idPrefix"), k, k)
		typ := rapid.SampledFrom(types).Draw(rt, "type")
		if typ == "retag" {
			if len(out) == 0 {
				typ = "phi.accessed"
			} else {
				// A failover re-tag: the same fact again under a new id.
				g := out[rapid.IntRange(0, len(out)-1).Draw(rt, "retagOf")]
				g.id = id
				out = append(out, g)
				continue
			}
		}
		// Follow-ups of an earlier event, so that ties and exact 24-h gaps are frequent.
		var prev []genEvent
		for _, p := range out {
			switch {
			case typ == "reassign" && p.typ == "agent.assigned",
				typ == "reclassify" && p.typ == "interaction.classified",
				typ == "touch24" && (p.typ == "agent.assigned" || p.typ == "phi.accessed"):
				prev = append(prev, p)
			}
		}
		if len(prev) > 0 {
			p := prev[rapid.IntRange(0, len(prev)-1).Draw(rt, "followUpOf")]
			g := genEvent{id: id, typ: p.typ, subj: p.subj}
			// the same instant, one slot later, or (touch24) exactly 24 h later
			step := time.Duration(rapid.IntRange(0, 1).Draw(rt, "followUpStep")) * propSlot
			switch typ {
			case "reassign":
				g.at = p.at.Add(step)
				g.data = map[string]any{"agentId": p.data["agentId"], "authorized": rapid.Bool().Draw(rt, "authorized")}
			case "reclassify":
				g.at = p.at.Add(step)
				g.data = map[string]any{
					"interactionType":    rapid.SampledFrom([]string{"claims_inquiry", "prescription_refill", "other"}).Draw(rt, "interactionType"),
					"dataClassification": rapid.SampledFrom([]string{"protected_health_information", "restricted", "internal", "public"}).Draw(rt, "class"),
				}
			case "touch24":
				g.typ = "phi.accessed"
				g.at = p.at.Add(24 * time.Hour)
				if rapid.Bool().Draw(rt, "sameInstant") {
					g.at = p.at
				}
				g.subj = inter()
				g.data = map[string]any{"agentId": p.data["agentId"], "action": "body_viewed"}
			}
			out = append(out, g)
			continue
		}
		if typ == "reassign" || typ == "touch24" {
			typ = "agent.assigned"
		} else if typ == "reclassify" {
			typ = "interaction.classified"
		}
		g := genEvent{id: id, typ: typ, at: at(), subj: inter()}
		switch typ {
		case "interaction.started":
			ch := rapid.SampledFrom([]string{"voice", "voice", "voice", "email", "chat", "message"}).Draw(rt, "channel")
			g.data = map[string]any{"channel": ch, "direction": rapid.SampledFrom([]string{"inbound", "outbound"}).Draw(rt, "direction")}
			if ch == "email" {
				g.data["email"] = map[string]any{"to": "claims@bluepayer.example", "fromMasked": "j***@example.org", "tls": rapid.SampledFrom([]string{"TLSv1.3", "none"}).Draw(rt, "tls")}
			}
		case "interaction.classified":
			g.data = map[string]any{
				"interactionType":    rapid.SampledFrom([]string{"claims_inquiry", "prescription_refill", "other"}).Draw(rt, "interactionType"),
				"dataClassification": rapid.SampledFrom([]string{"protected_health_information", "protected_health_information", "restricted", "internal", "public"}).Draw(rt, "class"),
			}
		case "consent.captured", "consent.declined":
			g.data = map[string]any{"method": rapid.SampledFrom([]string{"ivr_verbal", "written"}).Draw(rt, "method")}
		case "agent.assigned":
			g.data = map[string]any{"agentId": agent(), "authorized": rapid.Bool().Draw(rt, "authorized")}
		case "phi.accessed":
			action := rapid.SampledFrom([]string{"handled", "body_viewed", "transcript_viewed", "recording_accessed", "attachment_viewed", "forwarded"}).Draw(rt, "action")
			g.data = map[string]any{"agentId": agent(), "action": action}
			if action == "transcript_viewed" || action == "recording_accessed" {
				g.data["recordingId"] = rec()
			}
			if action == "forwarded" {
				g.data["recipientMasked"] = "p***@pharmacy.example"
			}
		case "interaction.ended":
			g.data = map[string]any{}
		case "recording.stored":
			g.data = map[string]any{
				"recordingId": rec(),
				"kind":        rapid.SampledFrom([]string{"audio", "screen", "transcript", "email"}).Draw(rt, "kind"),
				"retention":   rapid.SampledFrom([]string{"P1D", "P2D", "P90D", "P1Y"}).Draw(rt, "retention"),
			}
			if rapid.IntRange(0, 4).Draw(rt, "hold") == 0 {
				g.data["legalHold"] = true
			}
		case "redaction.requested":
			g.data = map[string]any{"recordingId": rec()}
		case "redaction.completed":
			g.data = map[string]any{"recordingId": rec(), "status": rapid.SampledFrom([]string{"complete", "failed"}).Draw(rt, "status")}
		case "record.purged":
			g.data = map[string]any{
				"recordingId": rapid.SampledFrom([]string{"r1", "r2", "r3", "r4", "r9"}).Draw(rt, "purgedRecording"),
				"operatorId":  "ops-retention-job",
				"recordCount": rapid.IntRange(1, 3).Draw(rt, "recordCount"),
				"reason":      rapid.SampledFrom([]string{"retention_expired", "retention_expired", "patient_request"}).Draw(rt, "reason"),
			}
		}
		out = append(out, g)
	}
	return out
}

// drawOnTimeOrder draws an arrival order of base in which no event is late: each step
// picks any remaining event whose time is at most 24 h after the earliest remaining one,
// so the maximum time seen never gets more than 24 h ahead of an event still to come.
// Exactly-24-h-behind arrivals happen often on the grid.
func drawOnTimeOrder(rt *rapid.T, base []genEvent, label string) []int {
	remaining := make([]int, len(base))
	for i := range remaining {
		remaining[i] = i
	}
	var order []int
	for len(remaining) > 0 {
		min := base[remaining[0]].at
		for _, i := range remaining {
			if base[i].at.Before(min) {
				min = base[i].at
			}
		}
		var cand []int
		for k, i := range remaining {
			if !base[i].at.After(min.Add(24 * time.Hour)) {
				cand = append(cand, k)
			}
		}
		k := cand[rapid.IntRange(0, len(cand)-1).Draw(rt, label)]
		order = append(order, remaining[k])
		remaining = append(remaining[:k], remaining[k+1:]...)
	}
	return order
}

// arrival renders base in order with the re-sends inserted at drawn places after their
// originals.
func arrival(rt *rapid.T, base []genEvent, order []int, resends []resend, label string) [][]byte {
	type item struct {
		line []byte
		orig int // -1 for a base event
	}
	var items []item
	for _, i := range order {
		items = append(items, item{base[i].line(), -1})
	}
	for _, r := range resends {
		pos := 0
		for p, i := range order {
			if i == r.orig {
				pos = p
			}
		}
		// after the original and after the re-sends already placed after it
		p := rapid.IntRange(pos+1, len(order)).Draw(rt, label)
		// map the position in order to a position in items
		seen, at := -1, len(items)
		for q, it := range items {
			if it.orig == -1 {
				seen++
				if seen == p {
					at = q
					break
				}
			}
		}
		items = append(items[:at], append([]item{{r.line(base), r.orig}}, items[at:]...)...)
	}
	lines := make([][]byte, len(items))
	for i, it := range items {
		lines[i] = it.line
	}
	return lines
}

// setRapidFlag sets a rapid flag for the duration of a test unless the command line or
// the environment set it.
func setRapidFlag(t *testing.T, name, value, env string) {
	set := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	if _, ok := os.LookupEnv(env); set || ok {
		return
	}
	f := flag.Lookup(name)
	if f == nil {
		return
	}
	old := f.Value.String()
	_ = flag.Set(name, value)
	t.Cleanup(func() { _ = flag.Set(name, old) })
}

func TestViewsMatchOracleOnGeneratedHistories(t *testing.T) {
	checks := "40"
	if testing.Short() {
		checks = "10"
	}
	setRapidFlag(t, "rapid.checks", checks, "RAPID_CHECKS")
	setRapidFlag(t, "rapid.nofailfile", "true", "RAPID_NOFAILFILE")
	setRapidFlag(t, "rapid.shrinktime", "60s", "RAPID_SHRINKTIME")
	rapid.Check(t, func(rt *rapid.T) {
		base := drawHistory(rt)
		var resends []resend
		for n := rapid.IntRange(0, 3).Draw(rt, "resends"); n > 0; n-- {
			resends = append(resends, resend{rapid.IntRange(0, len(base)-1).Draw(rt, "resendOf"), rapid.IntRange(0, 2).Draw(rt, "resendKind")})
		}
		linesA := arrival(rt, base, drawOnTimeOrder(rt, base, "orderA"), resends, "resendAtA")
		// Order B: another on-time order (both must then print the same reports), or an
		// arbitrary one with late events (compared with the oracle only).
		withLate := rapid.IntRange(0, 2).Draw(rt, "withLate") == 2
		var orderB []int
		if withLate {
			idx := make([]int, len(base))
			for i := range idx {
				idx[i] = i
			}
			orderB = rapid.Permutation(idx).Draw(rt, "orderB")
		} else {
			orderB = drawOnTimeOrder(rt, base, "orderB")
		}
		linesB := arrival(rt, base, orderB, resends, "resendAtB")
		endAsOf := propBase.Add(80 * time.Hour)
		midAsOf := propBase.Add(time.Duration(rapid.IntRange(0, 36).Draw(rt, "midSlot")) * propSlot)

		rt.Logf("history A (arrival order):\n%s", bytes.Join(linesA, []byte("\n")))
		rt.Logf("history B (arrival order, late events possible: %v):\n%s", withLate, bytes.Join(linesB, []byte("\n")))

		evA, evB := parseLines(rt, linesA), parseLines(rt, linesB)
		storedA, _ := oracleStored(evA, 24*time.Hour)
		storedB, lateB := oracleStored(evB, 24*time.Hour)
		nLate := 0
		for _, l := range lateB {
			if l {
				nLate++
			}
		}
		rt.Logf("late events in B: %d", nLate)

		dirA, err := os.MkdirTemp(t.TempDir(), "a")
		if err != nil {
			rt.Fatalf("%v", err)
		}
		dirB, err := os.MkdirTemp(t.TempDir(), "b")
		if err != nil {
			rt.Fatalf("%v", err)
		}
		defer os.RemoveAll(dirA)
		defer os.RemoveAll(dirB)
		publishLines(rt, dirA, linesA)
		publishLines(rt, dirB, linesB)

		var diffs []string
		for _, name := range reportNames {
			gotA := productReport(rt, dirA, name, endAsOf)
			if d := compareReport(name, gotA, oracleReport(name, evA, endAsOf, oracleOpts{}), endAsOf, len(storedA)); d != "" {
				diffs = append(diffs, "order A, as of "+fmtTime(endAsOf)+":\n"+d)
			}
			gotB := productReport(rt, dirB, name, endAsOf)
			if d := compareReport(name, gotB, oracleReport(name, evB, endAsOf, oracleOpts{}), endAsOf, len(storedB)); d != "" {
				diffs = append(diffs, "order B, as of "+fmtTime(endAsOf)+":\n"+d)
			}
			if !withLate {
				delete(gotA, "executionId")
				delete(gotB, "executionId")
				if !reflect.DeepEqual(gotA, gotB) {
					diffs = append(diffs, fmt.Sprintf("report %s: orders A and B (same set, no late event) print different reports:\nA: %s\nB: %s", name, short(gotA), short(gotB)))
				}
			}
			gotMid := productReport(rt, dirA, name, midAsOf)
			if d := compareReport(name, gotMid, oracleReport(name, evA, midAsOf, oracleOpts{}), midAsOf, len(storedA)); d != "" {
				diffs = append(diffs, "order A, as of "+fmtTime(midAsOf)+":\n"+d)
			}
		}
		if d := thresholdDiffs(rt, dirA, evA); d != "" {
			diffs = append(diffs, "order A: "+d)
		}
		if d := thresholdDiffs(rt, dirB, evB); d != "" {
			diffs = append(diffs, "order B: "+d)
		}
		if len(diffs) > 0 {
			rt.Fatalf("%s", strings.Join(diffs, "\n"))
		}
	})
}

// TestViewsHandPickedBoundaries runs the counter's boundary cases through the product:
// touches exactly 24 h apart, equal timestamps, reclassification after access,
// re-authorization, a re-sent event and a late one.
func TestViewsHandPickedBoundaries(t *testing.T) {
	h := &hist{t: t}
	// a1: i1..i4 at 0, 1, 2 and exactly 24 h: never 4 (half-open window).
	for i, at := range []float64{0, 1, 2, 24} {
		I := fmt.Sprintf("i%d", i+1)
		h.phi(I, hours(0))
		h.access(I, "a1", hours(at))
	}
	// a2: four ePHI interactions within 24 h, two touched at the same instant; a fifth
	// internal until reclassified after the access; one re-authorized later.
	for i, at := range []float64{3, 3, 4, 5} {
		I := fmt.Sprintf("j%d", i+1)
		h.phi(I, hours(0))
		h.access(I, "a2", hours(at))
	}
	h.add("interaction.classified", hours(1), "j5", map[string]any{"interactionType": "other", "dataClassification": "internal"})
	h.access("j5", "a2", hours(5))
	h.phi("j5", hours(6)) // reclassified after the access
	h.assign("j4", "a2", hours(5), false)
	h.assign("j4", "a2", hours(8), true) // re-authorized
	h.evs = append(h.evs, h.evs[len(h.evs)-1])
	h.lines = append(h.lines, h.lines[len(h.lines)-1]) // re-sent
	h.access("i1", "a3", hours(40))
	h.access("j1", "a3", hours(10)) // 30 h behind: late
	data := filepath.Join(t.TempDir(), "data")
	publishLines(t, data, h.lines)
	stored, _ := oracleStored(h.evs, 24*time.Hour)
	for _, at := range []float64{0, 2, 3, 5, 6, 8, 23.99, 24, 26, 29, 50} {
		for _, name := range reportNames {
			got := productReport(t, data, name, hours(at))
			want := oracleReport(name, h.evs, hours(at), oracleOpts{})
			if d := compareReport(name, got, want, hours(at), len(stored)); d != "" {
				t.Errorf("report %s as of %s:\n%s", name, fmtTime(hours(at)), d)
			}
		}
	}
	if d := thresholdDiffs(t, data, h.evs); d != "" {
		t.Error(d)
	}
}
