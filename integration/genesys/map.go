package genesys

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/mail"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custody/custody/domain"
)

// MapperConfig configures a Mapper.
type MapperConfig struct {
	// Source is the CloudEvents source of every event, naming platform and tenant, e.g.
	// "genesys-cloud/org-3f1c". Required.
	Source string
	// Mapping is the attribute, queue and role table. Optional; zero means DefaultMapping.
	Mapping Mapping
	// AllowUnknownFields ignores fields a Genesys model does not have as this adapter
	// knows it, instead of rejecting the payload. Optional; default false (rejected, so
	// that a field Genesys adds is reviewed before data keeps flowing).
	AllowUnknownFields bool
	// Now is the receiving clock for the contract's "at most 24 h ahead" rule. Optional;
	// default time.Now.
	Now func() time.Time
}

// Mapper turns Genesys payloads into contract events. It is safe for concurrent use.
// Every event it returns has passed the contract's validation (domain.Decoder), carries
// a deterministic id and never a raw identifier of a customer: no name, phone number,
// e-mail address (except masked), subject line, wrap-up note or attribute value is
// copied into an event.
type Mapper struct {
	source string
	m      Mapping
	allow  bool
	dec    domain.Decoder
}

// NewMapper checks the configuration and returns a Mapper.
func NewMapper(c MapperConfig) (*Mapper, error) {
	var errs []error
	if c.Source == "" {
		errs = append(errs, errors.New("source: required (e.g. genesys-cloud/org-3f1c)"))
	} else if strings.ContainsAny(c.Source, " \t\r\n") {
		errs = append(errs, errors.New("source: must be a URI-reference without spaces"))
	}
	if err := c.Mapping.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return &Mapper{source: c.Source, m: c.Mapping.withDefaults(), allow: c.AllowUnknownFields, dec: domain.Decoder{Now: c.Now}}, nil
}

// Source returns the CloudEvents source of the mapper's events.
func (m *Mapper) Source() string { return m.source }

// EventID is the deterministic id of an event: a version 8 UUID from the SHA-256 of
// "genesys", the type, the subject and the fact's key parts. Keys never contain a time
// that differs between the real-time and the reconciliation path, so the same fact seen
// by both, or re-sent after a restart, has the same id and the log keeps it once.
func EventID(t domain.Type, subject string, key ...string) string {
	return domain.DeterministicID(append([]string{"genesys", string(t), subject}, key...)...)
}

// pending is an event before validation.
type pending struct {
	subject string
	at      time.Time
	data    domain.Data
	key     []string
	path    string // the payload field the event comes from, for error messages
}

// finish validates pending events through the contract's decoder and returns them in
// canonical form. A failure names the event type and the contract's field and rule.
func (m *Mapper) finish(ps []pending, p *problems) []domain.Event {
	out := make([]domain.Event, 0, len(ps))
	for _, pe := range ps {
		e := domain.Event{
			ID: EventID(pe.data.EventType(), pe.subject, pe.key...), Source: m.source,
			Type: pe.data.EventType(), Time: pe.at, Subject: pe.subject, Data: pe.data,
		}
		b, err := e.MarshalJSON()
		if err == nil {
			e, err = m.dec.Decode(b)
		}
		if err != nil {
			for _, fe := range domain.Problems(err) {
				p.add(pe.path, fmt.Sprintf("would give an invalid %s event: %s: %s", pe.data.EventType(), fe.Field, fe.Rule))
			}
			if len(domain.Problems(err)) == 0 {
				p.add(pe.path, fmt.Sprintf("would give an invalid %s event: %v", pe.data.EventType(), err))
			}
			continue
		}
		out = append(out, e)
	}
	return out
}

// Conversation maps one AnalyticsConversation record (a conversation of a detail job's
// results, of the synchronous query or of GET /api/v2/analytics/conversations/{id}/details).
func (m *Mapper) Conversation(b []byte) ([]domain.Event, error) {
	var c conversation
	if err := decodeJSON(b, &c); err != nil {
		return nil, &PayloadError{What: "conversation", Problems: []error{err}}
	}
	return m.conversation(&c, "")
}

func (m *Mapper) conversation(c *conversation, path string) ([]domain.Event, error) {
	var p problems
	ps := m.conversationPending(c, path, &p)
	what := "conversation"
	if domain.IsIdentifier(c.ConversationID) {
		what += " " + c.ConversationID
	}
	if err := p.err(what); err != nil {
		return nil, err
	}
	evs := m.finish(ps, &p)
	if err := p.err(what); err != nil {
		return nil, err
	}
	return evs, nil
}

// timed is a parsed segment.
type timed struct {
	start, end  time.Time
	segmentType string
	queue       string
}

func (m *Mapper) conversationPending(c *conversation, path string, p *problems) []pending {
	p.unknownFields(path, "AnalyticsConversation", c.Rest, conversationKnown, m.allow)
	conv := m.ident(p, join(path, "conversationId"), c.ConversationID, true)
	start := m.timeField(p, join(path, "conversationStart"), c.ConversationStart, true)
	end := m.timeField(p, join(path, "conversationEnd"), c.ConversationEnd, false)

	// Walk every participant, session and segment: check fields, parse times.
	segs := make([][][]timed, len(c.Participants))
	for i := range c.Participants {
		pt := &c.Participants[i]
		pp := index(join(path, "participants"), i)
		p.unknownFields(pp, "AnalyticsParticipant", pt.Rest, participantKnown, m.allow)
		if pt.Purpose == "" {
			p.add(join(pp, "purpose"), "required")
		}
		if pt.UserID != "" {
			m.ident(p, join(pp, "userId"), pt.UserID, true)
		}
		segs[i] = make([][]timed, len(pt.Sessions))
		for j := range pt.Sessions {
			s := &pt.Sessions[j]
			sp := index(join(pp, "sessions"), j)
			p.unknownFields(sp, "AnalyticsSession", s.Rest, sessionKnown, m.allow)
			for k := range s.Segments {
				g := &s.Segments[k]
				gp := index(join(sp, "segments"), k)
				p.unknownFields(gp, "AnalyticsConversationSegment", g.Rest, segmentKnown, m.allow)
				t := timed{segmentType: g.SegmentType, queue: g.QueueID}
				t.start = m.timeField(p, join(gp, "segmentStart"), g.SegmentStart, true)
				t.end = m.timeField(p, join(gp, "segmentEnd"), g.SegmentEnd, false)
				if g.QueueID != "" {
					m.ident(p, join(gp, "queueId"), g.QueueID, true)
				}
				segs[i][j] = append(segs[i][j], t)
			}
		}
	}
	if len(p.errs) > 0 {
		return nil
	}

	// The channel and direction come from the customer's first session (an external
	// participant's when there is no customer; any participant's as a last resort).
	pi, si := primarySession(c)
	if pi < 0 {
		p.add(join(path, "participants"), "must include a session with a mediaType")
		return nil
	}
	sess := &c.Participants[pi].Sessions[si]
	sp := index(join(index(join(path, "participants"), pi), "sessions"), si)
	channel, ignored := m.channel(p, join(sp, "mediaType"), sess.MediaType)
	if ignored || channel == "" {
		return nil
	}
	direction := strings.ToLower(cmp.Or(c.OriginatingDirection, sess.Direction))
	if !slices.Contains(domain.Directions, direction) {
		p.add(join(path, "originatingDirection"), "must be inbound or outbound (or the customer session's direction must be)")
		return nil
	}
	division := ""
	for i, d := range c.DivisionIDs {
		if d == "*" || d == "" {
			continue
		}
		division = m.ident(p, index(join(path, "divisionIds"), i), d, true)
		break
	}
	started := &domain.InteractionStarted{Channel: channel, Direction: direction, DivisionID: division}
	if channel == "email" {
		started.Email = m.email(p, sp, direction, sess.AddressTo, sess.AddressFrom)
	}
	var out []pending
	out = append(out, pending{subject: conv, at: start, data: started, path: join(path, "conversationStart")})

	// Attributes: the customer's and external participants' first, then the others';
	// the first participant to set a name wins.
	attrs := map[string]string{}
	attrPath := map[string]string{}
	for _, i := range participantOrder(c) {
		for k, v := range c.Participants[i].Attributes {
			if _, ok := attrs[k]; !ok {
				attrs[k] = v
				attrPath[k] = join(index(join(path, "participants"), i), "attributes")
			}
		}
	}
	// Analytics keeps only an attribute's last value, not when it was set: the time of a
	// decision made in the IVR is the end of the IVR, else the conversation's start.
	decided := start
	if t := ivrEnd(c, segs); !t.IsZero() {
		decided = t
	}
	out = append(out, m.attributePending(p, conv, attrs, attrPath, decided)...)
	if !m.hasClassification(attrs) {
		if q, at := firstQueue(c, segs, m.m.QueueClassification); q != "" {
			cl := m.m.QueueClassification[q]
			out = append(out, classified(conv, at, cl.InteractionType, cl.DataClassification, cl.Part2, join(path, "participants")))
		}
	}

	// Assignments: every user (agent or not) who had an interact segment, once per
	// queue, at the earliest such segment.
	for i := range c.Participants {
		pt := &c.Participants[i]
		if pt.UserID == "" || (pt.Purpose != "agent" && pt.Purpose != "user") {
			continue
		}
		first := map[string]time.Time{}
		var queues []string
		for _, ss := range segs[i] {
			for _, t := range ss {
				if t.segmentType != "interact" {
					continue
				}
				if at, ok := first[t.queue]; !ok || t.start.Before(at) {
					if !ok {
						queues = append(queues, t.queue)
					}
					first[t.queue] = t.start
				}
			}
		}
		for _, q := range queues {
			out = append(out, m.assigned(conv, first[q], pt.UserID, q, join(index(join(path, "participants"), i), "userId")))
		}
	}

	// Transfers: consecutive different queues of the ACD participants, by time.
	var acd []timed
	for i := range c.Participants {
		if c.Participants[i].Purpose != "acd" {
			continue
		}
		for _, ss := range segs[i] {
			for _, t := range ss {
				if t.queue != "" {
					acd = append(acd, t)
				}
			}
		}
	}
	slices.SortStableFunc(acd, func(a, b timed) int { return a.start.Compare(b.start) })
	for i := 1; i < len(acd); i++ {
		if acd[i].queue != acd[i-1].queue {
			out = append(out, pending{subject: conv, at: acd[i].start, path: join(path, "participants"),
				data: &domain.InteractionTransferred{FromQueueID: acd[i-1].queue, ToQueueID: acd[i].queue},
				key:  []string{acd[i-1].queue, acd[i].queue, domain.FormatTime(acd[i].start)}})
		}
	}

	if !end.IsZero() {
		disp := ""
		if ss := segs[pi][si]; len(ss) > 0 {
			disp = strings.ToLower(sess.Segments[len(ss)-1].DisconnectType)
		}
		out = append(out, ended(conv, end, disp, join(path, "conversationEnd")))
	}
	return out
}

func ended(conv string, at time.Time, disposition, path string) pending {
	return pending{subject: conv, at: at, data: &domain.InteractionEnded{Disposition: disposition}, path: path}
}

func classified(conv string, at time.Time, kind, class string, part2 bool, path string) pending {
	return pending{subject: conv, at: at, path: path,
		data: &domain.InteractionClassified{InteractionType: kind, DataClassification: class, Part2: part2},
		key:  []string{class, kind, strconv.FormatBool(part2)}}
}

func (m *Mapper) assigned(conv string, at time.Time, user, queue, path string) pending {
	auth := m.m.Authorization.Authorized(user, queue)
	return pending{subject: conv, at: at, path: path,
		data: &domain.AgentAssigned{AgentID: user, Authorized: auth, QueueID: queue},
		key:  []string{user, queue, strconv.FormatBool(auth)}}
}

// primarySession finds the session that gives the channel.
func primarySession(c *conversation) (int, int) {
	for _, i := range participantOrder(c) {
		for j, s := range c.Participants[i].Sessions {
			if s.MediaType != "" {
				return i, j
			}
		}
	}
	return -1, -1
}

// participantOrder lists customer participants, then external ones, then the others.
func participantOrder(c *conversation) []int {
	rank := func(purpose string) int {
		switch purpose {
		case "customer":
			return 0
		case "external":
			return 1
		}
		return 2
	}
	order := make([]int, len(c.Participants))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return rank(c.Participants[a].Purpose) - rank(c.Participants[b].Purpose)
	})
	return order
}

// ivrEnd is the latest end of an IVR participant's segment.
func ivrEnd(c *conversation, segs [][][]timed) time.Time {
	var end time.Time
	for i := range c.Participants {
		if c.Participants[i].Purpose != "ivr" {
			continue
		}
		for _, ss := range segs[i] {
			for _, t := range ss {
				if t.end.After(end) {
					end = t.end
				}
			}
		}
	}
	return end
}

// firstQueue is the earliest queue of the conversation that the table classifies.
func firstQueue(c *conversation, segs [][][]timed, table map[string]Classification) (string, time.Time) {
	var q string
	var at time.Time
	for i := range c.Participants {
		for _, ss := range segs[i] {
			for _, t := range ss {
				if _, ok := table[t.queue]; ok && t.queue != "" && (q == "" || t.start.Before(at)) {
					q, at = t.queue, t.start
				}
			}
		}
	}
	return q, at
}

// channel maps a media type; ignored is true for a media type the mapping ignores.
func (m *Mapper) channel(p *problems, path, mediaType string) (channel string, ignored bool) {
	mt := strings.ToLower(mediaType)
	if ch, ok := m.m.Channels[mt]; ok {
		return ch, false
	}
	if slices.Contains(m.m.IgnoredMedia, mt) {
		return "", true
	}
	if mt == "" {
		p.add(path, "required")
		return "", false
	}
	p.add(path, "is a media type that the mapping neither maps (channels) nor ignores (ignoredMedia)")
	return "", false
}

// email builds the e-mail part: the routing address is the payer's side (To of an
// inbound, From of an outbound e-mail), the other address is masked.
func (m *Mapper) email(p *problems, path, direction, to, from string) *domain.Email {
	routing, other := to, from
	routingField, otherField := "addressTo", "addressFrom"
	if direction == "outbound" {
		routing, other = from, to
		routingField, otherField = "addressFrom", "addressTo"
	}
	routing, other = bareAddress(routing), bareAddress(other)
	if routing == "" {
		p.add(join(path, routingField), "required for an e-mail conversation (the routing address)")
	}
	if other == "" {
		p.add(join(path, otherField), "required for an e-mail conversation (masked in the event)")
	}
	tls, ok := m.m.EmailTLS[strings.ToLower(routing)]
	if !ok {
		tls, ok = m.m.EmailTLS["*"]
	}
	if !ok && routing != "" {
		p.add(join(path, routingField), "has no emailTls entry in the mapping (nor \"*\"): Genesys does not report the TLS of e-mail, so the mapping must")
	}
	return &domain.Email{To: routing, FromMasked: domain.MaskEmail(other), TLS: tls}
}

func bareAddress(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if a, err := mail.ParseAddress(s); err == nil {
		return a.Address
	}
	return s
}

func (m *Mapper) attr(attrs map[string]string, name string) (string, bool) {
	if name == "-" || name == "" {
		return "", false
	}
	v, ok := attrs[name]
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

func (m *Mapper) hasClassification(attrs map[string]string) bool {
	_, ok := m.attr(attrs, m.m.Attributes.Classification)
	return ok
}

// attributePending maps the classification and consent attributes. at is the time the
// decision is taken to have happened unless the consent time attribute says otherwise.
func (m *Mapper) attributePending(p *problems, conv string, attrs, attrPath map[string]string, at time.Time) []pending {
	a := m.m.Attributes
	field := func(name string) string { return join(attrPath[name], name) }
	var out []pending
	if class, ok := m.attr(attrs, a.Classification); ok {
		class = strings.ToLower(class)
		if !slices.Contains(domain.Classifications, class) {
			p.add(field(a.Classification), "must be one of "+strings.Join(domain.Classifications, ", "))
		}
		kind := m.m.DefaultInteractionType
		if v, ok := m.attr(attrs, a.InteractionType); ok {
			kind = strings.ToLower(v)
			if !slices.Contains(domain.InteractionKind, kind) {
				p.add(field(a.InteractionType), "must be one of "+strings.Join(domain.InteractionKind, ", "))
			}
		}
		part2 := false
		if v, ok := m.attr(attrs, a.Part2); ok {
			b, err := strconv.ParseBool(strings.ToLower(v))
			if err != nil {
				p.add(field(a.Part2), "must be true or false")
			}
			part2 = b
		}
		out = append(out, classified(conv, at, kind, class, part2, field(a.Classification)))
	}
	if v, ok := m.attr(attrs, a.Consent); ok {
		decision, known := m.m.ConsentValues[strings.ToLower(v)]
		if !known {
			p.add(field(a.Consent), "must be one of the mapping's consentValues ("+strings.Join(slices.Sorted(maps.Keys(m.m.ConsentValues)), ", ")+")")
			return out
		}
		method := m.m.DefaultConsentMethod
		if v, ok := m.attr(attrs, a.ConsentMethod); ok {
			method = strings.ToLower(v)
			if !slices.Contains(domain.ConsentMethods, method) {
				p.add(field(a.ConsentMethod), "must be one of "+strings.Join(domain.ConsentMethods, ", "))
			}
		}
		when := at
		if v, ok := m.attr(attrs, a.ConsentTime); ok {
			t, rule := domain.ParseTime(v)
			if rule != "" {
				p.add(field(a.ConsentTime), rule)
			} else {
				when = t
			}
		}
		var data domain.Data = &domain.ConsentCaptured{Method: method}
		if decision == "declined" {
			data = &domain.ConsentDeclined{Method: method}
		}
		out = append(out, pending{subject: conv, at: when, data: data, key: []string{method}, path: field(a.Consent)})
	}
	return out
}

// ident checks an identifier field; the value is returned when valid.
func (m *Mapper) ident(p *problems, path, v string, required bool) string {
	if v == "" {
		if required {
			p.add(path, "required")
		}
		return ""
	}
	if !domain.IsIdentifier(v) {
		p.add(path, "must be an id of 1-128 characters of A-Z a-z 0-9 _ - :")
		return ""
	}
	return v
}

// timeField parses an ISO-8601 time with offset.
func (m *Mapper) timeField(p *problems, path, v string, required bool) time.Time {
	if v == "" {
		if required {
			p.add(path, "required")
		}
		return time.Time{}
	}
	t, rule := domain.ParseTime(v)
	if rule != "" {
		p.add(path, rule)
	}
	return t
}

// epochMillis converts a detail event's eventTime.
func epochMillis(p *problems, path string, v *int64) time.Time {
	if v == nil {
		p.add(path, "required")
		return time.Time{}
	}
	t := time.UnixMilli(*v).UTC()
	if t.Year() < domain.MinYear {
		p.add(path, "must be milliseconds since 1970 of a time from the year 2000 on")
	}
	return t
}

// auditFacts are the fields of an audit message, REST or topic.
type auditFacts struct {
	id, user, client, level, action, entityType, entityID, status string
	at                                                            time.Time
	context                                                       map[string]string
	remoteIPs                                                     []string
	path                                                          string
	idField, userField                                            string
}

// audit maps an audit message: a recording read is phi.accessed (recording_accessed), a
// recording deletion record.purged; anything else gives no event.
func (m *Mapper) audit(a auditFacts, p *problems) []pending {
	if !slices.Contains(m.m.RecordingEntityTypes, a.entityType) {
		return nil
	}
	read := slices.Contains(m.m.ReadActions, a.action)
	del := slices.Contains(m.m.DeleteActions, a.action)
	if !read && !del {
		return nil
	}
	if strings.EqualFold(a.status, "FAILURE") {
		return nil // refused: nothing was read or deleted
	}
	m.ident(p, join(a.path, a.idField), a.id, true)
	rec := m.ident(p, join(a.path, "entity.id"), a.entityID, true)
	conv := m.ident(p, join(a.path, "context.conversationId"), a.context["conversationId"], false)
	if a.context["conversationId"] == "" {
		p.add(join(a.path, "context.conversationId"), "required: a recording audit without its conversation cannot be attributed to an interaction")
	}
	if a.at.IsZero() {
		return nil
	}
	actor := ""
	switch {
	case a.user != "":
		actor = m.ident(p, join(a.path, a.userField), a.user, true)
	case a.client != "":
		if c := m.ident(p, join(a.path, "client.id"), a.client, true); c != "" {
			actor = "client:" + c
		}
	case del && strings.EqualFold(a.level, "SYSTEM"):
		actor = "system"
	default:
		p.add(join(a.path, a.userField), "required (or a client id): who acted")
	}
	if len(p.errs) > 0 {
		return nil
	}
	if read {
		ip := ""
		for _, s := range a.remoteIPs {
			if addr, err := netip.ParseAddr(s); err == nil {
				ip = addr.String()
				break
			}
		}
		return []pending{{subject: conv, at: a.at, path: a.path, key: []string{a.id},
			data: &domain.PHIAccessed{AgentID: actor, Action: "recording_accessed", RecordingID: rec, RemoteIP: ip}}}
	}
	reason := m.m.ManualPurgeReason
	if strings.EqualFold(a.level, "SYSTEM") {
		reason = "retention_expired"
	}
	return []pending{{subject: conv, at: a.at, path: a.path, key: []string{a.id},
		data: &domain.RecordPurged{RecordingID: rec, OperatorID: actor, RecordCount: 1, Reason: reason}}}
}

func (a *auditMessage) facts(path string) auditFacts {
	f := auditFacts{id: a.ID, level: a.Level, action: a.Action, entityType: a.EntityType, status: a.Status,
		context: a.Context, remoteIPs: a.RemoteIP, path: path, idField: "id", userField: "user.id"}
	if a.User != nil {
		f.user = a.User.ID
	}
	if a.Client != nil {
		f.client = a.Client.ID
	}
	if a.Entity != nil {
		f.entityID = a.Entity.ID
	}
	return f
}

// auditMessage maps one REST AuditLogMessage.
func (m *Mapper) auditMessage(a *auditMessage, path string, p *problems) []pending {
	p.unknownFields(path, "AuditLogMessage", a.Rest, auditMessageKnown, m.allow)
	f := a.facts(path)
	if slices.Contains(m.m.RecordingEntityTypes, a.EntityType) {
		f.at = m.timeField(p, join(path, "eventDate"), a.EventDate, true)
	}
	return m.audit(f, p)
}

// retentionPending maps one retention entity with the media type of its recording.
func (m *Mapper) retentionPending(r *retention, media, path string, p *problems) []pending {
	p.unknownFields(path, "RecordingRetention", r.Rest, retentionKnown, m.allow)
	conv := m.ident(p, join(path, "conversationId"), r.ConversationID, true)
	rec := m.ident(p, join(path, "recordingId"), r.RecordingID, true)
	created := m.timeField(p, join(path, "creationTime"), r.CreationTime, true)
	del := m.timeField(p, join(path, "deleteDate"), r.DeleteDate, false)
	kind, ok := m.m.RecordingKinds[strings.ToLower(media)]
	switch {
	case media == "" && m.m.DefaultRecordingKind != "":
		kind = m.m.DefaultRecordingKind
	case media == "":
		p.add(join(path, "media"), "unknown: a retention entry carries no media type (the backfill reads it from the recording's "+
			"recordingmetadata); set defaultRecordingKind in the mapping to ingest retention pages from a file")
	case !ok:
		p.add(join(path, "media"), "has no recordingKinds entry in the mapping")
	}
	if len(p.errs) > 0 {
		return nil
	}
	ret, _ := domain.ParseRetention(m.m.DefaultRetention)
	if !del.IsZero() {
		days := int(math.Round(del.Sub(created).Hours() / 24))
		if days < 1 {
			days = 1
		}
		ret = domain.Retention{Days: days}
	}
	return []pending{{subject: conv, at: created, path: path, key: []string{rec},
		data: &domain.RecordingStored{RecordingID: rec, Kind: kind, Retention: ret}}}
}
