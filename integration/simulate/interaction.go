package simulate

import (
	"slices"
	"strconv"
	"time"

	"github.com/custody/custody/domain"
)

// The traffic model's tables. Weights are relative; doc.go states the resulting shares.
var (
	channels       = []string{"voice", "email", "chat", "message"}
	channelCum     = cumulative(62, 18, 13, 7)
	inboundShare   = map[string]float64{"voice": 0.85, "email": 0.70, "chat": 0.97, "message": 0.60}
	kinds          = domain.InteractionKind // claims_inquiry ... other
	kindCum        = cumulative(34, 18, 14, 14, 10, 10)
	kindQueue      = []string{"q-claims", "q-pharmacy", "q-provider-services", "q-billing", "q-clinical-review", "q-general"}
	kindRouting    = []string{"claims@bluepayer.example", "pharmacy@bluepayer.example", "providers@bluepayer.example", "billing@bluepayer.example", "clinical@bluepayer.example", "memberservices@bluepayer.example"}
	classes        = domain.Classifications // public, internal, protected_health_information, restricted
	classByKindCum = [][]float64{
		cumulative(2, 8, 85, 5),   // claims_inquiry
		cumulative(1, 4, 85, 10),  // prescription_refill
		cumulative(10, 50, 38, 2), // provider_verification
		cumulative(3, 17, 75, 5),  // billing_dispute
		cumulative(0, 3, 72, 25),  // clinical_correspondence
		cumulative(40, 35, 23, 2), // other
	}
	divisions    = []string{"div-commercial", "div-medicare", "div-medicaid"}
	divisionCum  = cumulative(50, 30, 20)
	tlsVersions  = []string{"TLSv1.3", "TLSv1.2", "none"}
	tlsCum       = cumulative(70, 26, 4)
	maskDomains  = []string{"example.org", "example.com", "mail.example.net", "example.edu"}
	forwardTo    = []string{"providerrelations.example.org", "pharmacy.example.com", "compliance.example.org"}
	dispositions = []string{"resolved", "resolved", "resolved", "callback_scheduled", "escalated", "follow_up_required", "transferred_external", "voicemail"}
	operators    = []string{"ops-retention-job", "ops-records-mgmt", "ops-privacy-office", "ops-legal-hold-desk"}
	retentions   = map[string][]domain.Retention{
		"audio":      {{Years: 7}, {Years: 7}, {Years: 6}},
		"screen":     {{Years: 1, Months: 6}, {Days: 90}},
		"email":      {{Years: 6}, {Years: 7}},
		"transcript": {{Days: 90}, {Years: 6}, {Days: 30}},
		"attachment": {{Years: 6}, {Years: 1}},
	}
	shortRetentions = []domain.Retention{{Days: 1}, {Days: 2}, {Days: 3}}
)

// Consent paths of a voice interaction.
const (
	consentNormal   = iota // captured by the IVR before the agent
	consentDeclined        // declined in the IVR
	consentMissing         // never captured
	consentLate            // captured by the agent after opening the member's record
)

type platform struct{ prefix, source string }

var platforms = []platform{{"gc-", sourceGenesys}, {"cx-", sourceNICE}}

// recording is one artefact an interaction leaves behind.
type recording struct {
	id, kind string
}

// interaction generates the whole life of one interaction started at s.
func (g *gen) interaction(s time.Time) {
	p := platforms[0]
	if g.chance(0.3) {
		p = platforms[1]
	}
	id := g.ids.prefixed(p.prefix, s)
	src := p.source
	ch := channels[g.pick(channelCum)]
	dir := "outbound"
	if g.chance(inboundShare[ch]) {
		dir = "inbound"
	}
	k := g.pick(kindCum)
	queue := kindQueue[k]
	div := divisions[g.pick(divisionCum)]

	forced := g.lapseArmed && !s.Before(g.lapseExpiry.Add(-3*time.Hour)) && s.Before(g.lapseExpiry)
	if forced {
		g.lapseArmed = false
	}

	st := &domain.InteractionStarted{Channel: ch, Direction: dir}
	if g.chance(0.9) {
		st.QueueID, st.DivisionID = queue, div
	}
	attachments := false
	if ch == "email" {
		st.Email = &domain.Email{To: kindRouting[k], FromMasked: g.maskedAddr(), TLS: tlsVersions[g.pick(tlsCum)]}
		attachments = g.chance(0.3)
	}
	g.push(s, domain.InteractionStartedType, id, src, st)

	// Consent (voice needs it for ePHI; e-mail sometimes carries a written one).
	mode := consentNormal
	recordAfterDecline := false
	if ch == "voice" {
		switch r := g.rng.Float64(); {
		case forced:
		case r < 0.06:
			mode = consentDeclined
			recordAfterDecline = g.chance(0.35)
		case r < 0.11:
			mode = consentMissing
		case r < 0.15:
			mode = consentLate
		}
		ivr := s.Add(g.between(8*time.Second, 40*time.Second))
		switch mode {
		case consentNormal:
			g.push(ivr, domain.ConsentCapturedType, id, src, &domain.ConsentCaptured{Method: g.voiceMethod(dir)})
		case consentDeclined:
			g.push(ivr, domain.ConsentDeclinedType, id, src, &domain.ConsentDeclined{Method: g.voiceMethod(dir)})
		}
	} else if ch == "email" && g.chance(0.25) {
		m := "email"
		if g.chance(0.3) {
			m = "written"
		}
		g.push(s.Add(g.between(time.Minute, 10*time.Minute)), domain.ConsentCapturedType, id, src, &domain.ConsentCaptured{Method: m})
	}

	// Abandoned before an agent: never classified.
	if !forced && (ch == "voice" || ch == "chat") && g.chance(0.02) {
		g.push(s.Add(g.between(15*time.Second, 90*time.Second)), domain.InteractionEndedType, id, src, &domain.InteractionEnded{Disposition: "abandoned"})
		return
	}

	// Classification, after the IVR or the routing engine has read the intent.
	class := classes[g.pick(classByKindCum[k])]
	if forced && !domain.IsEPHI(class) {
		class = domain.ClassPHI
	}
	classified := forced || !g.chance(0.01)
	if classified {
		cl := &domain.InteractionClassified{InteractionType: kinds[k], DataClassification: class}
		if class == domain.ClassRestricted && (k == 1 || k == 4) && g.chance(0.35) {
			cl.Part2 = true
		}
		if ev, ok := g.push(s.Add(g.between(30*time.Second, 2*time.Minute)), domain.InteractionClassifiedType, id, src, cl); ok && g.chance(0.015) {
			g.retag(ev)
		}
	}
	ephi := classified && domain.IsEPHI(class)
	cand := candidate{id: id, source: src, start: s}

	// Assignment.
	wait := g.between(45*time.Second, 4*time.Minute)
	switch ch {
	case "email":
		wait = g.between(2*time.Minute, 2*time.Hour)
	case "chat":
		wait = g.between(45*time.Second, 2*time.Minute)
	}
	tAssign := s.Add(wait)
	if forced && !tAssign.Before(g.lapseExpiry) { // assigned while the training is still current
		tAssign = s.Add((g.lapseExpiry.Sub(s) / 2).Truncate(time.Millisecond))
	}
	agent := g.rng.IntN(g.nAgents)
	authorized := true
	if forced {
		agent = g.lapseAgent
	} else if !g.protected[agent] && g.chance(g.pUnauth) {
		authorized = false
	}
	g.assign(tAssign, id, src, agent, authorized, queue)
	cand.add(agent)
	if !authorized && g.chance(0.4) { // the platform re-checks the schedule and re-authorizes
		g.assign(tAssign.Add(g.between(2*time.Minute, 15*time.Minute)), id, src, agent, true, queue)
	}

	// Handling.
	t := tAssign.Add(g.between(2*time.Second, 10*time.Second))
	accessed := !(mode == consentDeclined && g.chance(0.5))
	if accessed {
		g.access(t, id, src, agent, "handled", "")
	}
	if mode == consentLate {
		g.push(t.Add(g.between(40*time.Second, 3*time.Minute)), domain.ConsentCapturedType, id, src, &domain.ConsentCaptured{Method: "ivr_verbal"})
	}
	if ch == "email" {
		t = t.Add(g.between(5*time.Second, time.Minute))
		g.access(t, id, src, agent, "body_viewed", "")
		if attachments {
			t = t.Add(g.between(5*time.Second, 2*time.Minute))
			g.access(t, id, src, agent, "attachment_viewed", "")
			if g.chance(0.4) {
				t = t.Add(g.between(5*time.Second, time.Minute))
				g.access(t, id, src, agent, "attachment_downloaded", "")
			}
		}
		if g.chance(0.06) {
			t = t.Add(g.between(time.Minute, 10*time.Minute))
			g.push(t, domain.PHIAccessedType, id, src, &domain.PHIAccessed{AgentID: g.staff[agent], Action: "forwarded",
				RecipientMasked: g.maskedTo(forwardTo[g.rng.IntN(len(forwardTo))]), RemoteIP: g.remoteIP(0.2)})
		}
	}

	// Transfer to another queue, sometimes another division, and a second agent.
	if ch != "email" && !forced && g.chance(0.07) {
		t = t.Add(g.between(time.Minute, 6*time.Minute))
		to := kindQueue[(k+1+g.rng.IntN(len(kindQueue)-1))%len(kindQueue)]
		tr := &domain.InteractionTransferred{FromQueueID: queue, ToQueueID: to}
		crossDivision := g.chance(0.3)
		if crossDivision || g.chance(0.5) {
			tr.FromDivisionID, tr.ToDivisionID = div, div
			if crossDivision {
				tr.ToDivisionID = divisions[(slices.Index(divisions, div)+1)%len(divisions)]
			}
		}
		g.push(t, domain.InteractionTransferredType, id, src, tr)
		second := g.rng.IntN(g.nAgents)
		if second == agent {
			second = (second + 1) % g.nAgents
		}
		auth2 := g.protected[second] || !g.chance(min(3*g.pUnauth, 0.06))
		t = t.Add(g.between(15*time.Second, 2*time.Minute))
		g.assign(t, id, src, second, auth2, to)
		cand.add(second)
		t = t.Add(g.between(2*time.Second, 8*time.Second))
		g.access(t, id, src, second, "handled", "")
	}

	// End.
	var talk time.Duration
	switch ch {
	case "voice":
		talk = g.between(2*time.Minute, 14*time.Minute)
	case "chat":
		talk = g.between(4*time.Minute, 20*time.Minute)
	case "message":
		talk = g.between(5*time.Minute, time.Hour)
	case "email":
		talk = g.between(3*time.Minute, 2*time.Hour)
	}
	end := t.Add(talk)
	if forced { // still open when the agent's training expires
		end = maxTime(end, g.lapseExpiry.Add(g.between(10*time.Minute, 40*time.Minute)))
	}
	ended := &domain.InteractionEnded{}
	if g.chance(0.9) {
		ended.Disposition = dispositions[g.rng.IntN(len(dispositions))]
	}
	g.push(end, domain.InteractionEndedType, id, src, ended)

	// Recordings.
	var recs [4]recording
	nrec := 0
	addRec := func(kind string) {
		recs[nrec] = recording{id: g.ids.prefixed("rec-", end), kind: kind}
		nrec++
	}
	switch ch {
	case "voice":
		if mode != consentDeclined || recordAfterDecline {
			if g.chance(0.95) || recordAfterDecline {
				addRec("audio")
			}
			if g.chance(0.3) {
				addRec("screen")
			}
		}
		if g.chance(0.5) {
			addRec("transcript")
		}
	case "email":
		addRec("email")
		if attachments {
			addRec("attachment")
		}
	default:
		addRec("transcript")
	}
	for _, r := range recs[:nrec] {
		g.recording(end, id, src, r, ephi)
	}

	// Later reviews of ePHI interactions with recordings.
	if ephi && nrec > 0 {
		if g.chance(0.10) { // QA review by a supervisor
			sup := g.supervisors[g.rng.IntN(len(g.supervisors))]
			tq := end.Add(g.between(20*time.Minute, 20*time.Hour))
			if !g.chance(g.pSupNoAssign) {
				g.assign(tq.Add(-g.between(time.Minute, 10*time.Minute)), id, src, sup, true, queue)
			}
			r := recs[g.rng.IntN(nrec)]
			g.reviewAccess(tq, id, src, sup, r)
			if r.kind == "email" && g.chance(0.5) {
				g.access(tq.Add(g.between(10*time.Second, 2*time.Minute)), id, src, sup, "body_viewed", "")
			}
			if attachments && g.chance(0.5) {
				g.access(tq.Add(g.between(10*time.Second, 3*time.Minute)), id, src, sup, "attachment_viewed", "")
			}
		}
		if g.chance(0.02) { // compliance audit
			aud := g.auditors[g.rng.IntN(len(g.auditors))]
			ta := end.Add(g.between(2*time.Hour, 30*time.Hour))
			if !g.chance(g.pAudNoAssign) {
				g.assign(ta.Add(-g.between(time.Minute, 30*time.Minute)), id, src, aud, true, "")
			}
			r := recs[g.rng.IntN(nrec)]
			g.reviewAccess(ta, id, src, aud, r)
			switch {
			case attachments && g.chance(0.5):
				g.access(ta.Add(g.between(time.Minute, 5*time.Minute)), id, src, aud, "attachment_downloaded", "")
			case g.chance(0.3):
				g.push(ta.Add(g.between(time.Minute, 20*time.Minute)), domain.PHIAccessedType, id, src, &domain.PHIAccessed{AgentID: g.staff[aud],
					Action: "forwarded", RecipientMasked: g.maskedTo("compliance.example.org"), RecordingID: r.id, RemoteIP: g.remoteIP(0.5)})
			}
		}
		if g.chance(0.04) { // the agent reviews their own interaction
			g.reviewAccess(end.Add(g.between(5*time.Minute, time.Hour)), id, src, agent, recs[g.rng.IntN(nrec)])
		}
	}

	// Reclassification later in time.
	if classified {
		var to string
		switch {
		case class == domain.ClassInternal && g.chance(0.15):
			to = domain.ClassPHI
		case class == domain.ClassPHI && g.chance(0.02):
			to = domain.ClassRestricted
		}
		if to != "" {
			cl := &domain.InteractionClassified{InteractionType: kinds[k], DataClassification: to, Part2: to == domain.ClassRestricted && g.chance(0.3)}
			g.push(end.Add(g.between(10*time.Minute, 36*time.Hour)), domain.InteractionClassifiedType, id, src, cl)
		}
	}

	if ephi {
		g.remember(cand)
	}
}

func (g *gen) assign(t time.Time, id, src string, who int, authorized bool, queue string) {
	a := &domain.AgentAssigned{AgentID: g.staff[who], Authorized: authorized}
	if queue != "" && g.chance(0.7) {
		a.QueueID = queue
	}
	g.push(t, domain.AgentAssignedType, id, src, a)
}

func (g *gen) access(t time.Time, id, src string, who int, action, recordingID string) {
	g.push(t, domain.PHIAccessedType, id, src, &domain.PHIAccessed{AgentID: g.staff[who], Action: action, RecordingID: recordingID, RemoteIP: g.remoteIP(0.2)})
}

// reviewAccess opens a recording after the fact: transcript_viewed for a transcript,
// recording_accessed for anything else.
func (g *gen) reviewAccess(t time.Time, id, src string, who int, r recording) {
	action := "recording_accessed"
	if r.kind == "transcript" {
		action = "transcript_viewed"
	}
	g.access(t, id, src, who, action, r.id)
}

// recording stores one artefact at the end of the interaction and plays out its
// redaction and retention life.
func (g *gen) recording(end time.Time, id, src string, r recording, ephi bool) {
	stored := end.Add(g.between(5*time.Second, 90*time.Second))
	short := g.chance(0.04)
	var ret domain.Retention
	if short {
		ret = shortRetentions[g.rng.IntN(len(shortRetentions))]
	} else {
		opts := retentions[r.kind]
		ret = opts[g.rng.IntN(len(opts))]
	}
	hold := g.chance(0.012)
	ev, ok := g.push(stored, domain.RecordingStoredType, id, src, &domain.RecordingStored{RecordingID: r.id, Kind: r.kind, Retention: ret, LegalHold: hold})
	if !ok {
		return
	}
	if g.chance(0.003) {
		g.retag(ev)
	}

	// Redaction of ePHI artefacts.
	if ephi && r.kind != "screen" && g.chance(0.45) {
		req := stored.Add(g.between(30*time.Second, 5*time.Minute))
		g.push(req, domain.RedactionRequestedType, id, src, &domain.RedactionRequested{RecordingID: r.id})
		switch x := g.rng.Float64(); {
		case x < 0.78: // on time
			g.push(req.Add(g.between(5*time.Minute, 3*time.Hour+50*time.Minute)), domain.RedactionCompletedType, id, src, &domain.RedactionCompleted{RecordingID: r.id, Status: "complete"})
		case x < 0.86: // late: after the 4 h buffer
			g.push(req.Add(g.between(4*time.Hour+10*time.Minute, 20*time.Hour)), domain.RedactionCompletedType, id, src, &domain.RedactionCompleted{RecordingID: r.id, Status: "complete"})
		case x < 0.91:
			g.push(req.Add(g.between(10*time.Minute, 3*time.Hour)), domain.RedactionCompletedType, id, src, &domain.RedactionCompleted{RecordingID: r.id, Status: "failed"})
		default: // still pending
		}
	}

	// Retention.
	due := ret.Due(stored)
	purge := func(at time.Time, reason string) {
		op := operators[0]
		if reason != "retention_expired" {
			op = operators[1+g.rng.IntN(len(operators)-1)]
		}
		n := int64(1 + g.rng.IntN(3))
		g.push(at, domain.RecordPurgedType, id, src, &domain.RecordPurged{RecordingID: r.id, OperatorID: op, RecordCount: n, Reason: reason})
		if g.chance(0.1) { // a second run of the job purges the copies it missed
			g.push(at.Add(g.between(time.Hour, 12*time.Hour)), domain.RecordPurgedType, id, src, &domain.RecordPurged{RecordingID: r.id, OperatorID: op, RecordCount: 1, Reason: reason})
		}
	}
	switch {
	case hold:
		if g.chance(0.3) { // purged although on hold
			reason := "retention_expired"
			if g.chance(0.3) {
				reason = "error_correction"
			}
			purge(stored.Add(g.between(2*time.Hour, 72*time.Hour)), reason)
		}
	case short:
		if g.chance(0.75) { // on time; the rest become overdue
			purge(due.Add(g.between(time.Minute, 6*time.Hour)), "retention_expired")
		}
	case g.chance(0.004): // early: the job ran on the wrong policy
		purge(stored.Add(g.between(time.Hour, 48*time.Hour)), "retention_expired")
	case g.chance(0.008):
		reasons := [...]string{"patient_request", "legal_order", "error_correction"}
		purge(stored.Add(g.between(time.Hour, 96*time.Hour)), reasons[g.rng.IntN(len(reasons))])
	}
}

func (g *gen) voiceMethod(dir string) string {
	if dir == "outbound" {
		if g.chance(0.6) {
			return "written"
		}
		return "ivr_verbal"
	}
	if g.chance(0.55) {
		return "ivr_verbal"
	}
	return "ivr_menu"
}

// maskedAddr is a member's masked address: one letter, ***@, a domain.
func (g *gen) maskedAddr() string {
	return g.maskedTo(maskDomains[g.rng.IntN(len(maskDomains))])
}

func (g *gen) maskedTo(domainName string) string {
	return string(rune('a'+g.rng.IntN(26))) + "***@" + domainName
}

// remoteIP returns, with probability p, a private IPv4 or documentation IPv6 address of
// the desktop that opened the record; else "".
func (g *gen) remoteIP(p float64) string {
	if !g.chance(p) {
		return ""
	}
	if g.chance(0.15) {
		return "2001:db8:4a::" + strconv.FormatUint(uint64(1+g.rng.IntN(0xfffe)), 16)
	}
	return "10." + strconv.Itoa(16+g.rng.IntN(16)) + "." + strconv.Itoa(g.rng.IntN(256)) + "." + strconv.Itoa(1+g.rng.IntN(254))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
