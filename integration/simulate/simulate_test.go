package simulate_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/simulate"
)

// traffic is one generated run, decoded.
type traffic struct {
	cfg    simulate.Config
	lines  [][]byte
	events []domain.Event // in arrival order, duplicates included
	unique []domain.Event // first arrival of each id
}

var (
	stdOnce sync.Once
	std     traffic
	stdErr  error
)

func standard(t *testing.T) *traffic {
	t.Helper()
	stdOnce.Do(func() {
		std, stdErr = generate(simulate.Config{Seed: 42, Interactions: 2000})
	})
	if stdErr != nil {
		t.Fatal(stdErr)
	}
	return &std
}

func generate(cfg simulate.Config) (traffic, error) {
	var buf bytes.Buffer
	if err := simulate.Write(&buf, cfg); err != nil {
		return traffic{}, err
	}
	tr := traffic{cfg: cfg}
	seen := map[string]bool{}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := slices.Clone(sc.Bytes())
		e, err := domain.Parse(line)
		if err != nil {
			return traffic{}, errors.Join(errors.New(string(line)), err)
		}
		tr.lines = append(tr.lines, line)
		tr.events = append(tr.events, e)
		if !seen[e.ID] {
			seen[e.ID] = true
			tr.unique = append(tr.unique, e)
		}
	}
	return tr, sc.Err()
}

func TestDeterministic(t *testing.T) {
	write := func(seed int64) []byte {
		var buf bytes.Buffer
		if err := simulate.Write(&buf, simulate.Config{Seed: seed, Interactions: 500}); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	a, b, c := write(7), write(7), write(8)
	if !bytes.Equal(a, b) {
		t.Error("the same seed gave different bytes")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds gave the same bytes")
	}
	if len(a) == 0 {
		t.Error("no output")
	}
}

func TestGenerateMatchesWrite(t *testing.T) {
	cfg := simulate.Config{Seed: 3, Interactions: 300}
	var buf, got bytes.Buffer
	if err := simulate.Write(&buf, cfg); err != nil {
		t.Fatal(err)
	}
	err := simulate.Generate(cfg, func(e domain.Event) error {
		b, err := e.MarshalJSON()
		got.Write(b)
		got.WriteByte('\n')
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), got.Bytes()) {
		t.Error("Generate and Write disagree")
	}
}

func TestEmitErrorStops(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := simulate.Generate(simulate.Config{Interactions: 100}, func(domain.Event) error {
		n++
		if n == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 10 {
		t.Fatalf("got %v after %d events, want stop after 10", err, n)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		cfg    simulate.Config
		fields []string
	}{
		{"defaults", simulate.Config{Interactions: 1}, nil},
		{"no interactions", simulate.Config{}, []string{"Interactions"}},
		{"few agents", simulate.Config{Interactions: 1, Agents: 3}, []string{"Agents"}},
		{"too many agents", simulate.Config{Interactions: 1, Agents: 10000}, []string{"Agents"}},
		{"negative days", simulate.Config{Interactions: 1, Days: -1}, []string{"Days"}},
		{"ancient start", simulate.Config{Interactions: 1, Start: time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{"Start"}},
		{"all at once", simulate.Config{Interactions: -5, Agents: 2, Days: 99999}, []string{"Interactions", "Agents", "Days"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.fields) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, simulate.ErrConfig) {
				t.Fatalf("got %v, want ErrConfig", err)
			}
			for _, f := range tt.fields {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q does not name %s", err, f)
				}
			}
			if gerr := simulate.Generate(tt.cfg, func(domain.Event) error { return nil }); !errors.Is(gerr, simulate.ErrConfig) {
				t.Errorf("Generate accepted an invalid config: %v", gerr)
			}
		})
	}
}

func TestEveryLineValid(t *testing.T) {
	tr := standard(t)
	start := simulate.DefaultStart
	end := start.Add(7 * 24 * time.Hour)
	dec := domain.Decoder{Now: func() time.Time { return end.Add(time.Hour) }}
	for i, line := range tr.lines {
		e, err := dec.Decode(line)
		if err != nil {
			t.Fatalf("line %d: %v\n%s", i+1, err, line)
		}
		if e.Time.Before(start) || e.Time.After(end) {
			t.Errorf("line %d: time %s outside the window", i+1, e.Time)
		}
		again, err := e.MarshalJSON()
		if err != nil || !bytes.Equal(again, line) {
			t.Fatalf("line %d is not canonical", i+1)
		}
	}
}

func TestAllTypes(t *testing.T) {
	tr := standard(t)
	count := map[domain.Type]int{}
	for _, e := range tr.unique {
		count[e.Type]++
	}
	for _, typ := range domain.Types {
		if count[typ] == 0 {
			t.Errorf("no %s event", typ)
		}
	}
	t.Logf("events %d (unique %d) for %d interactions: %v", len(tr.events), len(tr.unique), tr.cfg.Interactions, count)
}

var (
	reRawLike = regexp.MustCompile(`(?i)(ssn|mrn|npi)[^a-z0-9]{0,3}[0-9]`)
	reUUID    = `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`
	reIDs     = map[string]*regexp.Regexp{
		"interaction": regexp.MustCompile(`^(gc|cx)-` + reUUID + `$`),
		"agent":       regexp.MustCompile(`^(agent|supervisor|auditor)-[0-9]{4}$`),
		"recording":   regexp.MustCompile(`^rec-` + reUUID + `$`),
		"operator":    regexp.MustCompile(`^ops-[a-z-]+$`),
	}
)

func TestNoRawIdentifiers(t *testing.T) {
	tr := standard(t)
	for i, line := range tr.lines {
		// The whole line, ids and times included, not only the fields the decoder scans.
		if rule := domain.RawIdentifier(string(line)); rule != "" {
			t.Fatalf("line %d: %s\n%s", i+1, rule, line)
		}
		if reRawLike.Match(line) {
			t.Fatalf("line %d names SSN/MRN/NPI before digits\n%s", i+1, line)
		}
	}
	sources := map[string]bool{"genesys-cloud/org-3f1c": true, "nice-cxone/tenant-42": true, "lms/workday": true}
	for _, e := range tr.unique {
		if !sources[e.Source] {
			t.Errorf("unexpected source %q", e.Source)
		}
		check := func(kind, v string) {
			if v != "" && !reIDs[kind].MatchString(v) {
				t.Errorf("%s id %q of %s has an unexpected shape", kind, v, e.ID)
			}
		}
		if e.Type.AgentSubject() {
			check("agent", e.Subject)
		} else {
			check("interaction", e.Subject)
		}
		switch d := e.Data.(type) {
		case *domain.AgentAssigned:
			check("agent", d.AgentID)
		case *domain.PHIAccessed:
			check("agent", d.AgentID)
			check("recording", d.RecordingID)
		case *domain.RecordingStored:
			check("recording", d.RecordingID)
		case *domain.RecordPurged:
			check("recording", d.RecordingID)
			check("operator", d.OperatorID)
		}
	}
}

func TestArrivalOrder(t *testing.T) {
	tr := standard(t)
	var maxSeen time.Time
	late, worst := 0, time.Duration(0)
	byID := map[string][]byte{}
	dups, sameBytes := 0, 0
	for i, e := range tr.events {
		if e.Time.Before(maxSeen) {
			late++
			worst = max(worst, maxSeen.Sub(e.Time))
		} else {
			maxSeen = e.Time
		}
		if prev, ok := byID[e.ID]; ok {
			dups++
			if bytes.Equal(prev, tr.lines[i]) {
				sameBytes++
			}
		} else {
			byID[e.ID] = tr.lines[i]
		}
	}
	if late == 0 {
		t.Error("no out-of-order event")
	}
	if worst >= 24*time.Hour {
		t.Errorf("an event arrived %s behind the latest time seen; the contract allows less than 24 h", worst)
	}
	if dups == 0 || sameBytes != dups {
		t.Errorf("re-sent events: %d duplicates, %d byte-identical", dups, sameBytes)
	}
	t.Logf("late %d (worst %s), re-sent %d", late, worst, dups)
}

// world is the final state of the unique events, for the scenario checks.
type world struct {
	started  map[string]*domain.InteractionStarted
	ended    map[string][]time.Time
	classes  map[string][]domain.Event // interaction.classified by interaction
	assigned map[[2]string][]domain.Event
	touches  map[[2]string]time.Time // earliest touch of (agent, interaction)
}

func build(tr *traffic) *world {
	w := &world{
		started:  map[string]*domain.InteractionStarted{},
		ended:    map[string][]time.Time{},
		classes:  map[string][]domain.Event{},
		assigned: map[[2]string][]domain.Event{},
		touches:  map[[2]string]time.Time{},
	}
	touch := func(agent, id string, at time.Time) {
		k := [2]string{agent, id}
		if old, ok := w.touches[k]; !ok || at.Before(old) {
			w.touches[k] = at
		}
	}
	for _, e := range tr.unique {
		switch d := e.Data.(type) {
		case *domain.InteractionStarted:
			w.started[e.Subject] = d
		case *domain.InteractionEnded:
			w.ended[e.Subject] = append(w.ended[e.Subject], e.Time)
		case *domain.InteractionClassified:
			w.classes[e.Subject] = append(w.classes[e.Subject], e)
		case *domain.AgentAssigned:
			k := [2]string{d.AgentID, e.Subject}
			w.assigned[k] = append(w.assigned[k], e)
			touch(d.AgentID, e.Subject, e.Time)
		case *domain.PHIAccessed:
			touch(d.AgentID, e.Subject, e.Time)
		}
	}
	return w
}

// ephi is EVENTS.md's ePHI(I) over all events.
func (w *world) ephi(id string) bool {
	var best domain.Event
	for _, e := range w.classes[id] {
		if best.Data == nil || e.Time.After(best.Time) ||
			e.Time.Equal(best.Time) && domain.ClassificationRank(e.Data.(*domain.InteractionClassified).DataClassification) >
				domain.ClassificationRank(best.Data.(*domain.InteractionClassified).DataClassification) {
			best = e
		}
	}
	return best.Data != nil && domain.IsEPHI(best.Data.(*domain.InteractionClassified).DataClassification)
}

// authorized is the flag of the latest agent.assigned by time, false winning ties.
func (w *world) authorized(agent, id string) bool {
	var best *domain.Event
	for i, e := range w.assigned[[2]string{agent, id}] {
		a := e.Data.(*domain.AgentAssigned).Authorized
		if best == nil || e.Time.After(best.Time) || e.Time.Equal(best.Time) && !a {
			best = &w.assigned[[2]string{agent, id}][i]
		}
	}
	return best != nil && best.Data.(*domain.AgentAssigned).Authorized
}

// unauthorizedTimes lists, per user, the times of their unauthorized ePHI interactions.
func (w *world) unauthorizedTimes() map[string][]time.Time {
	out := map[string][]time.Time{}
	for k, at := range w.touches {
		if w.ephi(k[1]) && !w.authorized(k[0], k[1]) {
			out[k[0]] = append(out[k[0]], at)
		}
	}
	for _, ts := range out {
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	}
	return out
}

// maxCount is the brute-force maximum of count(A, t) over t: the count only rises at a
// touch time, so the maximum is reached at one of them.
func maxCount(ts []time.Time) int {
	best := 0
	for _, t := range ts {
		n := 0
		for _, u := range ts {
			if u.After(t.Add(-24*time.Hour)) && !u.After(t) {
				n++
			}
		}
		best = max(best, n)
	}
	return best
}

func TestUnauthorizedScenarios(t *testing.T) {
	w := build(standard(t))
	crossed, exactly3, apart24 := 0, 0, 0
	for agent, ts := range w.unauthorizedTimes() {
		m := maxCount(ts)
		switch {
		case m >= 4:
			crossed++
		case m == 3:
			exactly3++
		}
		for i := range ts {
			for j := i + 1; j < len(ts); j++ {
				if ts[j].Sub(ts[i]) == 24*time.Hour {
					apart24++
					if m >= 4 {
						t.Logf("%s has touches exactly 24 h apart and crosses anyway", agent)
					}
				}
			}
		}
	}
	reauth := 0
	for _, evs := range w.assigned {
		sawFalse := false
		slices.SortFunc(evs, func(a, b domain.Event) int { return a.Time.Compare(b.Time) })
		for _, e := range evs {
			a := e.Data.(*domain.AgentAssigned).Authorized
			if !a {
				sawFalse = true
			} else if sawFalse {
				reauth++
				break
			}
		}
	}
	t.Logf("agents crossing 4: %d, at exactly 3: %d, touch pairs exactly 24 h apart: %d, re-authorizations: %d", crossed, exactly3, apart24, reauth)
	if crossed == 0 {
		t.Error("no agent reaches 4 unauthorized ePHI interactions in 24 h")
	}
	if exactly3 == 0 {
		t.Error("no agent peaks at exactly 3")
	}
	if apart24 == 0 {
		t.Error("no unauthorized touches exactly 24 h apart")
	}
	if reauth == 0 {
		t.Error("no re-authorization")
	}
}

func TestScenarioCoverage(t *testing.T) {
	tr := standard(t)
	w := build(tr)
	c := map[string]int{}
	inc := func(name string, cond bool) {
		if cond {
			c[name]++
		}
	}

	// Interactions: channels, directions, e-mail transport, classifications.
	for _, st := range w.started {
		c["channel "+st.Channel]++
		c["direction "+st.Direction]++
		inc("queue and division", st.QueueID != "" && st.DivisionID != "")
		if st.Email != nil {
			c["tls "+st.Email.TLS]++
			inc("masked sender", domain.IsMaskedEmail(st.Email.FromMasked))
		}
	}
	for id, evs := range w.classes {
		distinct := map[string]bool{}
		for _, e := range evs {
			d := e.Data.(*domain.InteractionClassified)
			distinct[d.DataClassification] = true
			c["class "+d.DataClassification]++
			c["type "+d.InteractionType]++
			inc("part2", d.Part2)
		}
		inc("reclassified", len(distinct) > 1)
		for i := range evs {
			for j := i + 1; j < len(evs); j++ {
				a, b := evs[i], evs[j]
				inc("failover re-tag", a.ID != b.ID && a.Time.Equal(b.Time) &&
					*a.Data.(*domain.InteractionClassified) == *b.Data.(*domain.InteractionClassified))
			}
		}
		_ = id
	}

	// Consent, per voice ePHI interaction.
	captured := map[string][]time.Time{}
	declined := map[string][]time.Time{}
	accessed := map[string][]time.Time{}
	audio := map[string][]time.Time{}
	recStored := map[string]domain.Event{}
	requested := map[string]time.Time{}
	completed := map[string]domain.Event{}
	purged := map[string]domain.Event{}
	for _, e := range tr.unique {
		switch d := e.Data.(type) {
		case *domain.ConsentCaptured:
			captured[e.Subject] = append(captured[e.Subject], e.Time)
			c["consent "+d.Method]++
		case *domain.ConsentDeclined:
			declined[e.Subject] = append(declined[e.Subject], e.Time)
		case *domain.PHIAccessed:
			accessed[e.Subject] = append(accessed[e.Subject], e.Time)
			c["action "+d.Action]++
			c["by "+strings.SplitN(d.AgentID, "-", 2)[0]]++
			inc("remoteIp", d.RemoteIP != "")
			inc("recordingId named", d.RecordingID != "")
			inc("masked recipient", d.Action == "forwarded" && domain.IsMaskedEmail(d.RecipientMasked))
			_, assigned := w.assigned[[2]string{d.AgentID, e.Subject}]
			inc("access with no assignment", !assigned)
		case *domain.RecordingStored:
			c["kind "+d.Kind]++
			c["retention "+d.Retention.String()]++
			inc("legal hold", d.LegalHold)
			if _, ok := recStored[d.RecordingID]; !ok {
				recStored[d.RecordingID] = e
			} else {
				c["recording stored twice"]++
			}
			if d.Kind == "audio" || d.Kind == "screen" {
				audio[e.Subject] = append(audio[e.Subject], e.Time)
			}
		case *domain.RedactionRequested:
			requested[d.RecordingID] = e.Time
		case *domain.RedactionCompleted:
			completed[d.RecordingID] = e
		case *domain.RecordPurged:
			if _, ok := purged[d.RecordingID]; !ok {
				purged[d.RecordingID] = e
			}
			c["purge "+d.Reason]++
		case *domain.InteractionTransferred:
			c["transfer"]++
		case *domain.InteractionEnded:
			inc("disposition", d.Disposition != "")
		case *domain.TrainingCompleted:
			inc("training completed hipaa_annual", d.Course == "hipaa_annual" && d.ExpiresAt.After(e.Time))
		case *domain.TrainingExpired:
			c["training expired"]++
		}
	}
	earliest := func(ts []time.Time) (time.Time, bool) {
		if len(ts) == 0 {
			return time.Time{}, false
		}
		return slices.MinFunc(ts, func(a, b time.Time) int { return a.Compare(b) }), true
	}
	for id, st := range w.started {
		if st.Channel != "voice" || !w.ephi(id) {
			continue
		}
		c["consent required"]++
		first, ok := earliest(captured[id])
		inc("consent missing", !ok && len(w.ended[id]) > 0)
		for _, a := range accessed[id] {
			if !ok || a.Before(first) {
				c["accessed before consent"]++
				break
			}
		}
		for _, r := range audio[id] {
			var lastC, lastD time.Time
			for _, x := range captured[id] {
				if !x.After(r) && x.After(lastC) {
					lastC = x
				}
			}
			for _, x := range declined[id] {
				if !x.After(r) && x.After(lastD) {
					lastD = x
				}
			}
			if !lastD.IsZero() && lastD.After(lastC) {
				c["recorded after decline"]++
				break
			}
		}
	}

	// Retention and redaction as of the end of the window.
	end := simulate.DefaultStart.Add(7 * 24 * time.Hour)
	for rid, st := range recStored {
		d := st.Data.(*domain.RecordingStored)
		due := d.Retention.Due(st.Time)
		if p, ok := purged[rid]; ok {
			reason := p.Data.(*domain.RecordPurged).Reason
			switch {
			case d.LegalHold:
				c["purged under hold"]++
			case reason == "retention_expired" && p.Time.Before(due):
				c["purged early"]++
			case reason == "retention_expired":
				c["purged on time"]++
			default:
				c["purged for another reason"]++
			}
		} else if !d.LegalHold && !end.Before(due) {
			c["retention overdue"]++
		}
		if req, ok := requested[rid]; ok {
			done, ok := completed[rid]
			switch {
			case !ok:
				c["redaction pending"]++
			case done.Data.(*domain.RedactionCompleted).Status == "failed":
				c["redaction failed"]++
			case done.Time.Sub(req) < 4*time.Hour:
				c["redaction on time"]++
			default:
				c["redaction late"]++
			}
		}
	}

	// Training: an expiry while the agent holds open interactions, and authorized
	// assignments while the training is not current.
	type span struct{ from, to time.Time }
	completions := map[string][]span{}
	expiries := map[string][]time.Time{}
	for _, e := range tr.unique {
		switch d := e.Data.(type) {
		case *domain.TrainingCompleted:
			if d.Course == "hipaa_annual" {
				completions[e.Subject] = append(completions[e.Subject], span{e.Time, d.ExpiresAt})
			}
		case *domain.TrainingExpired:
			if d.Course == "hipaa_annual" {
				expiries[e.Subject] = append(expiries[e.Subject], e.Time)
			}
		}
	}
	current := func(agent string, at time.Time) bool {
		var last *span
		for i, s := range completions[agent] {
			if !s.from.After(at) && (last == nil || s.from.After(last.from)) {
				last = &completions[agent][i]
			}
		}
		if last == nil || !last.to.After(at) {
			return false
		}
		for _, x := range expiries[agent] {
			if !x.Before(last.from) && !x.After(at) {
				return false
			}
		}
		return true
	}
	for k, evs := range w.assigned {
		for _, e := range evs {
			if e.Data.(*domain.AgentAssigned).Authorized && !current(k[0], e.Time) {
				c["authorization discrepancy"]++
			}
		}
	}
	for agent, xs := range expiries {
		for _, x := range xs {
			for k, evs := range w.assigned {
				if k[0] != agent {
					continue
				}
				assignedBefore := slices.ContainsFunc(evs, func(e domain.Event) bool { return !e.Time.After(x) })
				endedBefore := slices.ContainsFunc(w.ended[k[1]], func(e time.Time) bool { return !e.After(x) })
				inc("training expired with open interactions", assignedBefore && !endedBefore)
			}
		}
	}

	want := []string{
		"channel voice", "channel email", "channel chat", "channel message",
		"direction inbound", "direction outbound", "queue and division",
		"tls TLSv1.2", "tls TLSv1.3", "tls none", "masked sender",
		"class public", "class internal", "class protected_health_information", "class restricted",
		"type claims_inquiry", "type prescription_refill", "type provider_verification",
		"type billing_dispute", "type clinical_correspondence", "type other",
		"part2", "reclassified", "failover re-tag",
		"consent ivr_verbal", "consent ivr_menu", "consent written", "consent email",
		"consent missing", "accessed before consent", "recorded after decline",
		"action handled", "action body_viewed", "action transcript_viewed", "action recording_accessed",
		"action attachment_viewed", "action attachment_downloaded", "action forwarded",
		"by agent", "by supervisor", "by auditor", "remoteIp", "recordingId named", "masked recipient",
		"access with no assignment",
		"kind audio", "kind screen", "kind email", "kind transcript", "kind attachment",
		"retention P7Y", "retention P6Y", "retention P90D", "retention P1Y6M", "retention P30D", "retention P1D", "retention P2D",
		"legal hold", "recording stored twice",
		"redaction on time", "redaction late", "redaction failed", "redaction pending",
		"purge retention_expired", "purge patient_request", "purge legal_order", "purge error_correction",
		"purged on time", "purged early", "purged under hold", "purged for another reason", "retention overdue",
		"transfer", "disposition",
		"training completed hipaa_annual", "training expired", "training expired with open interactions",
		"authorization discrepancy",
	}
	for _, name := range want {
		if c[name] == 0 {
			t.Errorf("scenario %q does not appear", name)
		}
	}
	if c["channel voice"]*2 <= len(w.started) {
		t.Errorf("voice is not the majority: %d of %d", c["channel voice"], len(w.started))
	}
	if phi := c["class protected_health_information"] + c["class restricted"]; phi*2 <= len(w.classes) {
		t.Errorf("PHI is not the majority of classifications")
	}
	names := make([]string, 0, len(c))
	for k := range c {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k + "=" + itoa(c[k]) + "  ")
	}
	t.Log(b.String())
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestSmallAndOddConfigs(t *testing.T) {
	for _, cfg := range []simulate.Config{
		{Interactions: 1},
		{Interactions: 50, Agents: 8, Days: 1},
		{Interactions: 300, Days: 2, Start: time.Date(2024, 2, 28, 23, 30, 0, 0, time.FixedZone("X", -5*3600))},
	} {
		tr, err := generate(cfg)
		if err != nil {
			t.Fatalf("%+v: %v", cfg, err)
		}
		start := cfg.Start
		if start.IsZero() {
			start = simulate.DefaultStart
		}
		days := max(cfg.Days, 1)
		if cfg.Days == 0 {
			days = 7
		}
		end := start.Add(time.Duration(days) * 24 * time.Hour)
		for _, e := range tr.events {
			if e.Time.Before(start) || e.Time.After(end) {
				t.Errorf("%+v: event time %s outside the window", cfg, e.Time)
			}
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	cfg := simulate.Config{Seed: 1, Interactions: 20000}
	var n countingWriter
	if err := simulate.Write(&n, cfg); err != nil {
		b.Fatal(err)
	}
	lines := n.lines
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := simulate.Write(io.Discard, cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

type countingWriter struct{ lines int }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.lines += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}
