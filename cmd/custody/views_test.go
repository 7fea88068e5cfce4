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
	"slices"
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
	t.Parallel()
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
			t0 := time.Now()
			publishLines(t, data, lines)
			t.Logf("published %d lines in %v", len(lines), time.Since(t0).Round(time.Millisecond))
			start := sim.DefaultStart
			instants := []time.Time{
				start.Add(7 * 24 * time.Hour),        // end of the window
				start.Add(84*time.Hour + 1234567890), // mid-window, off any grid
				start.Add(24 * time.Hour),            // a day in
			}
			if testing.Short() {
				instants = instants[:2]
			}
			for _, asOf := range instants {
				for _, name := range reportNames {
					t0 := time.Now()
					got := productReport(t, data, name, asOf)
					t1 := time.Now()
					want := oracleReport(name, events, asOf, oracleOpts{})
					t.Logf("%s as of %s: product %v, oracle %v", name, fmtTime(asOf), t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
					if d := compareReport(name, got, want, asOf, len(stored)); d != "" {
						t.Errorf("seed %d, report %s as of %s differs from the oracle:\n%s", seed, name, fmtTime(asOf), d)
					}
				}
			}
			// The oracle itself against what the simulator plants (simulate/doc.go): rogue
			// agents cross the threshold; the "exactly three" and "boundary" agents never do.
			if n := len(oracleThresholdAgents(events, oracleOpts{})); n < 1 || n > 4 {
				t.Errorf("seed %d: the oracle finds %d agents reaching the threshold; the simulator plants one or two rogue agents", seed, n)
			}
			if d := thresholdDiffs(t, data, events); d != "" {
				t.Errorf("seed %d:\n%s", seed, d)
			}
		})
	}
}

// ---- (c) --as-of-seq on a prefix ----

func TestViewsAsOfSeqPrefix(t *testing.T) {
	t.Parallel()
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
	for _, n := range []int{len(stored) / 3} {
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
	zone int // index in zones
	id   string
	typ  string
	at   time.Time
	subj string
	data map[string]any
}

// zones in which generated times are written (the same instant; the log compares in UTC).
var zones = []*time.Location{time.UTC, time.FixedZone("", 5*3600+30*60), time.FixedZone("", -8*3600), time.FixedZone("", -(23*3600 + 59*60))}

func (g genEvent) line() []byte {
	return eventLine(g.id, g.typ, g.at.In(zones[g.zone]), g.subj, g.data)
}

// resend is a second delivery of base event orig: the same bytes, the id in upper case,
// the same id with other content (a later time), or the same id and time with another
// event's type, subject and data (a duplicate whatever its content, EVENTS.md).
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
	case 3:
		o := base[(r.orig+1)%len(base)]
		if strings.HasPrefix(o.typ, "training.") {
			break // its expiry must follow its own time: a plain re-send instead
		}
		g.typ, g.subj, g.data = o.typ, o.subj, o.data
	}
	return g.line()
}

var propBase = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

const propSlot = 2 * time.Hour // time grid: 0..72 h in steps of 2 h

var propFractions = []time.Duration{0, time.Millisecond, 123456789, 999999999, 100 * time.Millisecond}

func drawHistory(rt *rapid.T) []genEvent {
	nI := rapid.IntRange(3, 8).Draw(rt, "interactions")
	nA := rapid.IntRange(2, 4).Draw(rt, "agents")
	nE := rapid.IntRange(5, 40).Draw(rt, "events")
	inter := func() string { return fmt.Sprintf("i%d", rapid.IntRange(1, nI).Draw(rt, "interaction")) }
	agent := func() string { return fmt.Sprintf("a%d", rapid.IntRange(1, nA).Draw(rt, "agent")) }
	rec := func() string { return fmt.Sprintf("r%d", rapid.IntRange(1, 3).Draw(rt, "recording")) }
	// All times on the grid, shifted by one fraction of a second per history.
	base := propBase.Add(rapid.SampledFrom(propFractions).Draw(rt, "fraction"))
	at := func() time.Time { return base.Add(time.Duration(rapid.IntRange(0, 36).Draw(rt, "slot")) * propSlot) }
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
		"accessAtCap", "decisionTie", "recAtDecide", "viewRedact", "purgeAtDue", "restore", "redactAtReq",
	}
	var out []genEvent
	newID := func(k int) string {
		// ids: a random first hex digit (so byte order and time order disagree), then the
		// counter, which keeps them unique.
		return fmt.Sprintf("%x%07x-0000-4000-8000-%012x", rapid.IntRange(0, 15).Draw(rt, "idPrefix"), k, k)
	}
	// A skeleton first: most interactions are started (often on voice) and classified
	// (mostly ePHI) early, so that the rules that need both are exercised.
	for i := 1; i <= nI && len(out) < nE; i++ {
		I := fmt.Sprintf("i%d", i)
		early := func() time.Time {
			return base.Add(time.Duration(rapid.IntRange(0, 12).Draw(rt, "earlySlot")) * propSlot)
		}
		if rapid.IntRange(0, 9).Draw(rt, "skeletonStart") < 8 {
			ch := rapid.SampledFrom([]string{"voice", "voice", "voice", "chat", "message"}).Draw(rt, "channel")
			out = append(out, genEvent{0, newID(len(out)), "interaction.started", early(), I, map[string]any{"channel": ch, "direction": "inbound"}})
		}
		if rapid.IntRange(0, 9).Draw(rt, "skeletonClass") < 8 && len(out) < nE {
			class := rapid.SampledFrom([]string{"protected_health_information", "protected_health_information", "restricted", "internal"}).Draw(rt, "class")
			out = append(out, genEvent{0, newID(len(out)), "interaction.classified", early(), I, map[string]any{"interactionType": "claims_inquiry", "dataClassification": class}})
		}
	}
	for k := len(out); k < nE; k++ {
		id := newID(k)
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
		// Follow-ups of an earlier event, so that ties and exact boundaries (24 h windows,
		// 4 h redaction buffer, due dates, access at the capture's instant) are frequent.
		source := map[string][]string{
			"reassign":    {"agent.assigned"},
			"reclassify":  {"interaction.classified"},
			"touch24":     {"agent.assigned", "phi.accessed"},
			"accessAtCap": {"consent.captured"},
			"decisionTie": {"consent.captured", "consent.declined"},
			"recAtDecide": {"consent.captured", "consent.declined"},
			"viewRedact":  {"redaction.requested"},
			"purgeAtDue":  {"recording.stored"},
			"restore":     {"recording.stored"},
			"redactAtReq": {"redaction.requested"},
		}
		if kinds, ok := source[typ]; ok {
			var prev []genEvent
			for _, p := range out {
				if slices.Contains(kinds, p.typ) {
					prev = append(prev, p)
				}
			}
			if len(prev) > 0 {
				p := prev[rapid.IntRange(0, len(prev)-1).Draw(rt, "followUpOf")]
				g := genEvent{id: id, typ: p.typ, subj: p.subj, at: p.at}
				// the same instant or one slot later
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
				case "touch24": // another interaction by the same user, exactly 24 h later or at the same instant
					g.typ = "phi.accessed"
					if !rapid.Bool().Draw(rt, "sameInstant") {
						g.at = p.at.Add(24 * time.Hour)
					}
					g.subj = inter()
					g.data = map[string]any{"agentId": p.data["agentId"], "action": "body_viewed"}
				case "accessAtCap": // an access at the instant of a capture
					g.typ = "phi.accessed"
					g.data = map[string]any{"agentId": agent(), "action": "handled"}
				case "decisionTie": // the opposite decision at the same instant
					g.typ = map[string]string{"consent.captured": "consent.declined", "consent.declined": "consent.captured"}[p.typ]
					g.data = map[string]any{"method": "ivr_verbal"}
				case "recAtDecide": // an audio or screen recording at the instant of a decision
					g.typ = "recording.stored"
					g.data = map[string]any{"recordingId": rec(), "kind": rapid.SampledFrom([]string{"audio", "screen"}).Draw(rt, "kind"), "retention": "P1D"}
				case "viewRedact": // a view of a recording 0, 2, 4 or 6 h after its redaction request
					g.typ = "phi.accessed"
					g.at = p.at.Add(time.Duration(rapid.IntRange(0, 3).Draw(rt, "viewAfter")) * propSlot)
					g.data = map[string]any{"agentId": agent(), "action": rapid.SampledFrom([]string{"recording_accessed", "transcript_viewed"}).Draw(rt, "action"), "recordingId": p.data["recordingId"]}
				case "redactAtReq": // a completion 0, 2 or 4 h after the request
					g.typ = "redaction.completed"
					g.at = p.at.Add(time.Duration(rapid.IntRange(0, 2).Draw(rt, "completeAfter")) * propSlot)
					g.data = map[string]any{"recordingId": p.data["recordingId"], "status": rapid.SampledFrom([]string{"complete", "failed"}).Draw(rt, "status")}
				case "purgeAtDue": // a purge at the due date, 2 h before or 2 h after
					g.typ = "record.purged"
					ret := map[string]int{"P1D": 1, "P2D": 2}[p.data["retention"].(string)]
					g.at = p.at.AddDate(0, 0, ret).Add(time.Duration(rapid.IntRange(-1, 1).Draw(rt, "purgeOffset")) * propSlot)
					g.data = map[string]any{"recordingId": p.data["recordingId"], "operatorId": "ops-retention-job", "recordCount": 1,
						"reason": rapid.SampledFrom([]string{"retention_expired", "legal_order"}).Draw(rt, "reason")}
				case "restore": // the same recording stored again, other data, same instant or later
					g.at = p.at.Add(step)
					g.subj = inter()
					g.data = map[string]any{"recordingId": p.data["recordingId"],
						"kind":      rapid.SampledFrom([]string{"audio", "transcript"}).Draw(rt, "kind"),
						"retention": rapid.SampledFrom([]string{"P1D", "P2D", "P1Y"}).Draw(rt, "retention")}
					if rapid.Bool().Draw(rt, "hold") {
						g.data["legalHold"] = true
					}
				}
				out = append(out, g)
				continue
			}
			typ = "agent.assigned" // no source yet
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
				"recordingId": rapid.SampledFrom([]string{"r1", "r2", "r3", "r9"}).Draw(rt, "purgedRecording"),
				"operatorId":  "ops-retention-job",
				"recordCount": rapid.IntRange(1, 3).Draw(rt, "recordCount"),
				"reason":      rapid.SampledFrom([]string{"retention_expired", "retention_expired", "patient_request"}).Draw(rt, "reason"),
			}
		}
		out = append(out, g)
	}
	for i := range out {
		out[i].zone = rapid.IntRange(0, len(zones)-1).Draw(rt, "zone")
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
	t.Parallel()
	checks := "30"
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
			resends = append(resends, resend{rapid.IntRange(0, len(base)-1).Draw(rt, "resendOf"), rapid.IntRange(0, 3).Draw(rt, "resendKind")})
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
		// An instant at an event's time, or 4 h or 24 h after it (the redaction buffer and
		// the counter's window end exactly there), or 2 h before it.
		midAsOf := base[rapid.IntRange(0, len(base)-1).Draw(rt, "midOf")].at.Add(
			rapid.SampledFrom([]time.Duration{0, 4 * time.Hour, 24 * time.Hour, -2 * time.Hour}).Draw(rt, "midDelta"))

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
				// The two orders are two logs: their roots differ, their bodies must not.
				ia, _ := gotA["integrity"].(map[string]any)
				ib, _ := gotB["integrity"].(map[string]any)
				if ia == nil || ib == nil || ia["bodySha256"] != ib["bodySha256"] {
					diffs = append(diffs, fmt.Sprintf("report %s: orders A and B: body hashes %v and %v differ", name, ia["bodySha256"], ib["bodySha256"]))
				}
				delete(gotA, "integrity")
				delete(gotB, "integrity")
				if !reflect.DeepEqual(gotA, gotB) {
					diffs = append(diffs, fmt.Sprintf("report %s: orders A and B (same set, no late event) print different reports:\nA: %s\nB: %s", name, short(gotA), short(gotB)))
				}
			}
			gotMid := productReport(rt, dirA, name, midAsOf)
			if d := compareReport(name, gotMid, oracleReport(name, evA, midAsOf, oracleOpts{}), midAsOf, len(storedA)); d != "" {
				diffs = append(diffs, "order A, as of "+fmtTime(midAsOf)+":\n"+d)
			}
		}
		// A log prefix (--as-of-seq) of order B, which may hold late events.
		seq := rapid.IntRange(1, len(storedB)).Draw(rt, "asOfSeq")
		name := rapid.SampledFrom(reportNames).Draw(rt, "asOfSeqReport")
		gotSeq := productReport(rt, dirB, name, midAsOf, "--as-of-seq", strconv.Itoa(seq))
		if d := compareReport(name, gotSeq, oracleReport(name, evB, midAsOf, oracleOpts{AsOfSeq: seq}), midAsOf, seq); d != "" {
			diffs = append(diffs, fmt.Sprintf("order B, --as-of-seq %d, as of %s:\n%s", seq, fmtTime(midAsOf), d))
		}
		// access-audit filters, over order A.
		if d := auditFilterDiffs(rt, dirA, evA, base, endAsOf, len(storedA)); d != "" {
			diffs = append(diffs, d)
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
	t.Parallel()
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

// TestViewsHandPickedConsentRetention runs the exact boundaries of consent, retention and
// redaction through the product: an access at the capture's instant, a tie of decisions
// (smallest id wins), a recording at a decision's instant, a purge at the due instant, a
// tie of purges and of stores, a redaction at exactly request + 4 h, a tie of
// completions, and views of a recording while its redaction is pending or overdue.
func TestViewsHandPickedConsentRetention(t *testing.T) {
	t.Parallel()
	h := &hist{t: t}
	small := func(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012x", 0x100000+n) }
	large := func(n int) string { return fmt.Sprintf("ffffffff-0000-4000-8000-%012x", n) }
	voicePHI := func(I string) {
		h.add("interaction.started", hours(0), I, map[string]any{"channel": "voice", "direction": "inbound"})
		h.phi(I, hours(0))
	}
	decide := func(id, typ, I string, at float64) {
		h.addID(id, typ, hours(at), I, map[string]any{"method": "ivr_verbal"})
	}
	store := func(id, I, rec, kind, ret string, at float64, hold bool) {
		d := map[string]any{"recordingId": rec, "kind": kind, "retention": ret}
		if hold {
			d["legalHold"] = true
		}
		h.addID(id, "recording.stored", hours(at), I, d)
	}
	purge := func(id, I, rec, reason string, at float64) {
		h.addID(id, "record.purged", hours(at), I, map[string]any{"recordingId": rec, "operatorId": "ops-1", "recordCount": 1, "reason": reason})
	}
	// c1: an access at the capture's instant is not before it.
	voicePHI("c1")
	decide(small(1), "consent.captured", "c1", 1)
	h.access("c1", "a1", hours(1))
	h.add("interaction.ended", hours(2), "c1", map[string]any{})
	// c2: capture and decline at the same instant, the decline has the smaller id: the
	// recording at that instant follows a decline. c3: the same with the capture smaller.
	voicePHI("c2")
	decide(large(2), "consent.captured", "c2", 1)
	decide(small(2), "consent.declined", "c2", 1)
	store(small(3), "c2", "rc2", "audio", "P7Y", 1, false)
	voicePHI("c3")
	decide(small(4), "consent.captured", "c3", 1)
	decide(large(4), "consent.declined", "c3", 1)
	store(small(5), "c3", "rc3", "screen", "P90D", 1, false)
	// c4: captured, then declined at the recording's instant.
	voicePHI("c4")
	decide(small(6), "consent.captured", "c4", 1)
	decide(small(7), "consent.declined", "c4", 2)
	store(small(8), "c4", "rc4", "audio", "P6Y", 2, false)
	// c6: a recording first stored as a transcript before the decline, stored again
	// (failover re-send, new id) as audio after it: the re-store is ignored (EVENTS.md,
	// Ties), so no recorded_after_decline.
	voicePHI("c6")
	store(small(40), "c6", "x1", "transcript", "P90D", 0, false)
	decide(small(41), "consent.declined", "c6", 1)
	store(small(42), "c6", "x1", "audio", "P90D", 2, false)
	// Retention.
	store(small(10), "c1", "p1", "audio", "P1D", 0, false)
	purge(small(11), "c1", "p1", "retention_expired", 24) // at due: purged
	store(small(12), "c1", "p2", "audio", "P1D", 0, false)
	purge(small(13), "c1", "p2", "retention_expired", 23) // before due: purged_early
	store(small(14), "c1", "p3", "audio", "P1D", 0, false)
	purge(large(15), "c1", "p3", "retention_expired", 10) // tie: the smaller id decides
	purge(small(15), "c1", "p3", "legal_order", 10)
	store(large(16), "c1", "p4", "audio", "P2D", 0, false) // tie of stores: smaller id decides
	store(small(16), "c3", "p4", "screen", "P1D", 0, true)
	// Redaction.
	store(small(20), "c1", "q1", "transcript", "P90D", 0, false)
	h.addID(small(21), "redaction.requested", hours(2), "c1", map[string]any{"recordingId": "q1"})
	store(small(22), "c1", "q2", "transcript", "P90D", 0, false)
	h.addID(small(23), "redaction.requested", hours(2), "c1", map[string]any{"recordingId": "q2"})
	h.addID(large(24), "redaction.completed", hours(3), "c1", map[string]any{"recordingId": "q2", "status": "complete"})
	h.addID(small(24), "redaction.completed", hours(3), "c1", map[string]any{"recordingId": "q2", "status": "failed"})
	view := func(rec string, at float64) {
		h.add("phi.accessed", hours(at), "c1", map[string]any{"agentId": "a5", "action": "transcript_viewed", "recordingId": rec})
	}
	view("q1", 1)   // before the request: none
	view("q1", 2)   // pending
	view("q1", 5.5) // pending
	view("q1", 6)   // overdue (exactly request + 4 h)
	view("q2", 3)   // failed: not counted
	h.add("interaction.ended", hours(30), "c9", map[string]any{})
	// c5: two classifications of the same class at the same instant: the smaller id
	// decides the interaction type (exposure's byInteractionType).
	h.addID(large(30), "interaction.classified", hours(1), "c5", map[string]any{"interactionType": "claims_inquiry", "dataClassification": "restricted"})
	h.addID(small(30), "interaction.classified", hours(1), "c5", map[string]any{"interactionType": "billing_dispute", "dataClassification": "restricted"})
	h.addID(small(31), "interaction.classified", hours(1), "c5", map[string]any{"interactionType": "prescription_refill", "dataClassification": "public"})
	h.access("c5", "a6", hours(2))

	// Publish in time order: no late event.
	idx := make([]int, len(h.lines))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return h.evs[idx[i]].Time.Before(h.evs[idx[j]].Time) })
	lines := make([][]byte, len(idx))
	for i, k := range idx {
		lines[i] = h.lines[k]
	}
	h.lines, h.evs = lines, parseLines(t, lines)

	// The oracle's answers on the cases above, as computed by hand.
	c := normalizeJSON(oracleReport("consent", h.evs, hours(10), oracleOpts{}))
	if got := short(c.(map[string]any)["violations"]); got != `[{"interactionId":"c2","reasons":["recorded_after_decline"]},{"interactionId":"c4","reasons":["recorded_after_decline"]}]` {
		t.Fatalf("oracle consent violations %s", got)
	}
	statuses := func(at float64) string {
		var st []string
		for _, x := range oracleReport("retention", h.evs, hours(at), oracleOpts{})["recordings"].([]any) {
			m := x.(map[string]any)
			st = append(st, fmt.Sprintf("%s:%s:%s:%s", m["recordingId"], m["status"], m["redaction"], m["interactionId"]))
		}
		return strings.Join(st, " ")
	}
	if got := statuses(5.99); got != "p1:active:none:c1 p2:active:none:c1 p3:active:none:c1 p4:held:none:c3 q1:active:pending:c1 q2:active:failed:c1 rc2:active:none:c2 rc3:active:none:c3 rc4:active:none:c4 x1:active:none:c6" {
		t.Fatalf("oracle retention as of 5.99: %s", got)
	}
	if got := statuses(6); !strings.Contains(got, "q1:active:overdue:c1") {
		t.Fatalf("oracle retention as of 6: %s", got)
	}
	if got := statuses(30); got != "p1:purged:none:c1 p2:purged_early:none:c1 p3:purged:none:c1 p4:held:none:c3 q1:active:overdue:c1 q2:active:failed:c1 rc2:active:none:c2 rc3:active:none:c3 rc4:active:none:c4 x1:active:none:c6" {
		t.Fatalf("oracle retention as of 30: %s", got)
	}
	if e := oracleReport("exposure", h.evs, hours(10), oracleOpts{})["agents"].([]any); e[1].(map[string]any)["pendingRedactionViews"] != 3 ||
		short(e[2].(map[string]any)["byInteractionType"]) != `{"billing_dispute":1}` {
		t.Fatalf("oracle exposure %v", e)
	}

	data := filepath.Join(t.TempDir(), "data")
	publishLines(t, data, h.lines)
	stored, _ := oracleStored(h.evs, 24*time.Hour)
	for _, at := range []float64{1, 2, 5.99, 6, 10, 23, 24, 30, 48, 50} {
		for _, name := range reportNames {
			got := productReport(t, data, name, hours(at))
			want := oracleReport(name, h.evs, hours(at), oracleOpts{})
			if d := compareReport(name, got, want, hours(at), len(stored)); d != "" {
				t.Errorf("report %s as of %s:\n%s", name, fmtTime(hours(at)), d)
			}
		}
	}
}

// auditFilterDiffs runs the access audit with one drawn filter (--agent, --interaction,
// --from/--to inclusive, --flagged) and compares it with the oracle's rows filtered.
func auditFilterDiffs(rt *rapid.T, data string, events []domain.Event, base []genEvent, asOf time.Time, logPos int) string {
	var args []string
	keep := func(map[string]any) bool { return true }
	switch rapid.IntRange(0, 4).Draw(rt, "auditFilter") {
	case 0:
		a := fmt.Sprintf("a%d", rapid.IntRange(1, 4).Draw(rt, "filterAgent"))
		args = []string{"--agent", a}
		keep = func(m map[string]any) bool { return m["agentId"] == a }
	case 1:
		i := fmt.Sprintf("i%d", rapid.IntRange(1, 8).Draw(rt, "filterInteraction"))
		args = []string{"--interaction", i}
		keep = func(m map[string]any) bool { return m["interactionId"] == i }
	case 2:
		from := base[rapid.IntRange(0, len(base)-1).Draw(rt, "filterFrom")].at
		to := from.Add(time.Duration(rapid.IntRange(0, 12).Draw(rt, "filterSpan")) * propSlot)
		args = []string{"--from", fmtTime(from), "--to", fmtTime(to)}
		keep = func(m map[string]any) bool {
			at, _ := time.Parse(time.RFC3339Nano, m["time"].(string))
			return !at.Before(from) && !at.After(to)
		}
	case 3, 4:
		flagged := rapid.Bool().Draw(rt, "filterFlagged")
		args = []string{"--flagged=" + strconv.FormatBool(flagged)}
		if flagged && rapid.Bool().Draw(rt, "bareFlagged") {
			args = []string{"--flagged"} // alone: true
		}
		keep = func(m map[string]any) bool { return m["flagged"] == flagged }
	}
	want := oracleReport("access-audit", events, asOf, oracleOpts{})
	var rows []any
	for _, r := range want["rows"].([]any) {
		if keep(r.(map[string]any)) {
			rows = append(rows, r)
		}
	}
	if rows == nil {
		rows = []any{}
	}
	want["rows"] = rows
	got := productReport(rt, data, "access-audit", asOf, args...)
	if d := compareReport("access-audit", got, want, asOf, logPos); d != "" {
		return fmt.Sprintf("access-audit %s as of %s:\n%s", strings.Join(args, " "), fmtTime(asOf), d)
	}
	return ""
}

// TestViewsThresholdEpisodesAndRetraction: two episodes of one agent give two active
// unauthorized_access_threshold alerts, triggered by the touches that crossed 4, with
// the window's interactions; a later reclassification that removes the first episode
// retracts its alert (status "retracted" with a time) and leaves the second active.
func TestViewsThresholdEpisodesAndRetraction(t *testing.T) {
	t.Parallel()
	h := &hist{t: t}
	for i, at := range []float64{0, 1, 2, 3, 30, 31, 32, 33} {
		I := fmt.Sprintf("i%d", i+1)
		h.phi(I, hours(at)) // classified at the touch: nothing arrives late
		h.access(I, "a1", hours(at))
	}
	// The count drops to 3 at exactly 24 h (the touch at 0 leaves the half-open window)
	// and reaches 4 again at 33 h: a second episode.
	if c := countAt(h.evs, "a1", hours(24)); len(c) != 3 {
		t.Fatalf("oracle count at 24 h: %v", c)
	}
	data := filepath.Join(t.TempDir(), "data")
	publishLines(t, data, h.lines)
	threshold := func() []map[string]any {
		var out []map[string]any
		for _, a := range productReport(t, data, "alerts", time.Time{})["alerts"].([]any) {
			if m := a.(map[string]any); m["rule"] == "unauthorized_access_threshold" {
				out = append(out, m)
			}
		}
		return out
	}
	got := threshold()
	want := []string{
		`a1 active 2026-03-02T03:00:00Z ["i1","i2","i3","i4"]`,
		`a1 active 2026-03-03T09:00:00Z ["i5","i6","i7","i8"]`,
	}
	describe := func(ms []map[string]any) []string {
		var out []string
		for _, m := range ms {
			out = append(out, fmt.Sprintf("%v %v %v %s", m["agentId"], m["status"], m["triggeredAt"], short(m["interactionIds"])))
		}
		return out
	}
	if d := describe(got); !reflect.DeepEqual(d, want) {
		t.Errorf("threshold alerts after two episodes:\n got %q\nwant %q", d, want)
	}
	if !reflect.DeepEqual(oracleThresholdAgents(h.evs, oracleOpts{}), map[string]bool{"a1": true}) {
		t.Fatal("oracle: a1 reaches 4")
	}

	// i2 declassified later: the first window never held 4 on the final set.
	h2 := &hist{t: t, n: h.n}
	h2.add("interaction.classified", hours(40), "i2", map[string]any{"interactionType": "other", "dataClassification": "public"})
	publishLines(t, data, h2.lines)
	got = threshold()
	if len(got) != 2 {
		t.Fatalf("threshold alerts after the retraction: %v", describe(got))
	}
	if got[0]["status"] != "retracted" || got[0]["retractedAt"] == nil || got[1]["status"] != "active" {
		t.Errorf("after the first episode's interaction is declassified: %q, retractedAt %v; want the first retracted (with a time) and the second active",
			describe(got), got[0]["retractedAt"])
	}
	if d := thresholdDiffs(t, data, append(h.evs, h2.evs...)); d != "" {
		t.Error(d)
	}
}

// TestViewsThresholdNoDipAtSameInstant: an interaction leaving the window at the instant
// another enters is no dip: one episode, one alert.
func TestViewsThresholdNoDipAtSameInstant(t *testing.T) {
	t.Parallel()
	h := &hist{t: t}
	for i, at := range []float64{0, 1, 2, 3, 24, 25} {
		I := fmt.Sprintf("i%d", i+1)
		h.phi(I, hours(at))
		h.access(I, "a1", hours(at))
	}
	for _, at := range []float64{3, 24, 25} {
		if c := countAt(h.evs, "a1", hours(at)); len(c) != 4 {
			t.Fatalf("oracle count at %v h: %v", at, c)
		}
	}
	data := filepath.Join(t.TempDir(), "data")
	publishLines(t, data, h.lines)
	var got []string
	for _, a := range productReport(t, data, "alerts", time.Time{})["alerts"].([]any) {
		if m := a.(map[string]any); m["rule"] == "unauthorized_access_threshold" {
			got = append(got, fmt.Sprintf("%v %v %v", m["agentId"], m["status"], m["triggeredAt"]))
		}
	}
	if want := []string{"a1 active 2026-03-02T03:00:00Z"}; !reflect.DeepEqual(got, want) {
		t.Errorf("threshold alerts %q, want %q", got, want)
	}
}
