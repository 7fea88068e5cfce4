package domain

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// MaxFuture is how far ahead of the receiving clock an event time may lie.
const MaxFuture = 24 * time.Hour

// MinYear is the first year an event time may lie in.
const MinYear = 2000

// Decoder decodes and validates events arriving from outside. The zero value is ready to
// use and reads the wall clock.
type Decoder struct {
	// Now is the receiving clock, used to reject times more than MaxFuture ahead.
	// Optional; nil means time.Now.
	Now func() time.Time
}

// Decode parses one CloudEvent in structured JSON mode and checks every rule of the
// contract. All problems are reported together in a *ValidationError (which matches
// ErrInvalid). A type custody emits itself is rejected and also matches ErrInternalType.
// The event's strings share one string of its values (b itself is not kept): one
// allocation instead of one per string; a map that outlives the event should key on a
// copy (strings.Clone) of an id it keeps alone.
func (d Decoder) Decode(b []byte) (Event, error) {
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	return decode(b, now().UTC().Add(MaxFuture), false)
}

// Parse decodes an event read back from the log. It checks the same rules as Decode except
// the receiving clock (the event was checked against it when it was stored), and it
// also accepts custody's own types.
func Parse(b []byte) (Event, error) { return decode(b, time.Time{}, true) }

var topLevel = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true, "time": true,
	"subject": true, "datacontenttype": true, "dataschema": true, "data": true,
}

func decode(b []byte, notAfter time.Time, internal bool) (Event, error) {
	st := parseStates.Get().(*parseState)
	defer st.release()
	top, err := parseObject(st, b)
	if err != nil {
		return Event{}, &ValidationError{Problems: []*FieldError{{Field: "event", Rule: "must be one JSON object: " + jsonProblem(err)}}}
	}
	p := &parser{src: b}
	o := &object{p: p, m: top}
	var e Event

	if v, ok := o.str("specversion", true); ok && v != SpecVersion {
		p.fail("specversion", `must be exactly "1.0"`)
	}
	if v, ok := o.str("id", true); ok {
		if id, ok := canonicalUUID(v); ok {
			e.ID = id
		} else {
			p.fail("id", "must be a UUID in canonical 36-character form (8-4-4-4-12 hex digits, version 1-8, RFC variant; not the nil or max UUID)")
		}
	}
	if v, ok := o.str("source", true); ok {
		if !isURIReference(v) {
			p.fail("source", "must be a URI-reference naming the platform and tenant (e.g. genesys-cloud/org-3f1c), without spaces or control characters")
		} else {
			p.scan("source", v)
			e.Source = v
		}
	}
	typ, typOK := o.str("type", true)
	if typOK {
		t := Type(typ)
		switch {
		case t.Accepted():
			e.Type = t
		case t.Internal() && internal:
			e.Type = t
		case t.Internal():
			p.fail("type", fmt.Sprintf("%q is emitted by custody itself and never accepted from outside", typ))
			p.internal = true
		default:
			p.fail("type", "must be one of "+quoteList(typeNames()))
		}
	}
	if v, ok := o.str("time", true); ok {
		if t, ok := p.eventTime("time", v); ok {
			if !notAfter.IsZero() && t.After(notAfter) {
				p.fail("time", "must not be more than 24 h ahead of the receiving clock")
			} else {
				e.Time = t
			}
		}
	}
	if v, ok := o.str("subject", true); ok {
		if p.ident("subject", v) {
			e.Subject = v
		}
	}
	if v, ok := o.str("datacontenttype", false); ok {
		if v != ContentType {
			p.fail("datacontenttype", `must be exactly "application/json" when present`)
		} else {
			e.DataContentType = v
		}
	}
	if v, ok := o.str("dataschema", false); ok {
		if !isURIReference(v) {
			p.fail("dataschema", "must be a URI when present")
		} else {
			p.scan("dataschema", v)
			e.DataSchema = v
		}
	}
	var extra []string
	for _, m := range top {
		if !topLevel[m.name] {
			extra = append(extra, m.name)
		}
	}
	sortStrings(extra)
	for _, name := range extra {
		m := o.find(name)
		raw := jsontext.Value(m.str)
		if name == "data_base64" {
			p.fail(name, "is not accepted: data must be a JSON object in \"data\"")
			continue
		}
		if !isExtensionName(name) {
			p.fail(name, "unknown attribute; extension attribute names must be 1-20 characters of a-z and 0-9")
			continue
		}
		switch m.kind {
		case '"':
			s := m.str
			if s == "" {
				p.fail(name, "must not be empty")
				continue
			}
			p.scan(name, s)
			// Keep the string in the form MarshalJSON writes it, so that decoding the
			// canonical form gives back the same Event.
			raw, _ = json.Marshal(s)
		case '0', 't', 'f':
		case 'n':
			continue // null is the same as absent
		default:
			p.fail(name, "extension attribute must be a string, number or boolean")
			continue
		}
		if e.Extensions == nil {
			e.Extensions = map[string]jsontext.Value{}
		}
		e.Extensions[name] = raw
	}
	data := o.obj("data", true)
	if data != nil && typOK && e.Type != "" {
		e.Data = decodeData(e.Type, data, &e)
		data.finish()
	} else if data != nil {
		data.seenAll()
	}
	if len(p.problems) > 0 {
		ve := &ValidationError{Problems: p.problems}
		if p.internal {
			return Event{}, errors.Join(ve, ErrInternalType)
		}
		return Event{}, ve
	}
	return e, nil
}

func decodeData(t Type, d *object, e *Event) Data {
	p := d.p
	switch t {
	case InteractionStartedType:
		v := &InteractionStarted{}
		v.Channel = d.enum("channel", true, Channels)
		v.Direction = d.enum("direction", true, Directions)
		v.QueueID = d.ident("queueId", false)
		v.DivisionID = d.ident("divisionId", false)
		em := d.obj("email", v.Channel == "email")
		if em != nil {
			email := &Email{}
			email.To, _ = em.str("to", true)
			email.FromMasked = em.masked("fromMasked", true)
			email.TLS = em.enum("tls", true, EmailTLS)
			em.finish()
			if v.Channel == "email" {
				v.Email = email
			}
		}
		return v
	case InteractionClassifiedType:
		v := &InteractionClassified{}
		v.InteractionType = d.enum("interactionType", true, InteractionKind)
		v.DataClassification = d.enum("dataClassification", true, Classifications)
		v.Part2, _ = d.boolean("part2", false)
		return v
	case ConsentCapturedType:
		return &ConsentCaptured{Method: d.enum("method", true, ConsentMethods)}
	case ConsentDeclinedType:
		return &ConsentDeclined{Method: d.enum("method", true, ConsentMethods)}
	case AgentAssignedType:
		v := &AgentAssigned{}
		v.AgentID = d.ident("agentId", true)
		v.Authorized, _ = d.boolean("authorized", true)
		v.QueueID = d.ident("queueId", false)
		return v
	case PHIAccessedType:
		v := &PHIAccessed{}
		v.AgentID = d.ident("agentId", true)
		v.Action = d.enum("action", true, AccessActions)
		needsRecording := v.Action == "recording_accessed" || v.Action == "transcript_viewed"
		v.RecordingID = d.ident("recordingId", needsRecording)
		v.RecipientMasked = d.masked("recipientMasked", v.Action == "forwarded")
		if ip, ok := d.str("remoteIp", false); ok {
			if _, err := netip.ParseAddr(ip); err != nil {
				p.fail(d.path("remoteIp"), "must be an IP address")
			} else {
				v.RemoteIP = ip
			}
		}
		return v
	case InteractionTransferredType:
		v := &InteractionTransferred{}
		v.FromQueueID = d.ident("fromQueueId", true)
		v.ToQueueID = d.ident("toQueueId", true)
		v.FromDivisionID = d.ident("fromDivisionId", false)
		v.ToDivisionID = d.ident("toDivisionId", false)
		return v
	case InteractionEndedType:
		v := &InteractionEnded{}
		v.Disposition, _ = d.str("disposition", false)
		return v
	case RecordingStoredType:
		v := &RecordingStored{}
		v.RecordingID = d.ident("recordingId", true)
		v.Kind = d.enum("kind", true, RecordingKinds)
		if s, ok := d.str("retention", true); ok {
			r, ok := ParseRetention(s)
			if !ok {
				p.fail(d.path("retention"), "must be an ISO 8601 duration of years, months and/or days only, upper case in that order, at least one day (e.g. P6Y, P90D, P1Y6M)")
			}
			v.Retention = r
		}
		v.LegalHold, _ = d.boolean("legalHold", false)
		return v
	case RedactionRequestedType:
		return &RedactionRequested{RecordingID: d.ident("recordingId", true)}
	case RedactionCompletedType:
		v := &RedactionCompleted{}
		v.RecordingID = d.ident("recordingId", true)
		v.Status = d.enum("status", true, RedactionStatus)
		return v
	case RecordPurgedType:
		v := &RecordPurged{}
		v.RecordingID = d.ident("recordingId", true)
		v.OperatorID = d.ident("operatorId", true)
		if n, ok := d.integer("recordCount", true); ok {
			if n < 1 {
				p.fail(d.path("recordCount"), "must be an integer of at least 1")
			}
			v.RecordCount = n
		}
		v.Reason = d.enum("reason", true, PurgeReasons)
		return v
	case TrainingCompletedType:
		v := &TrainingCompleted{}
		v.Course, _ = d.str("course", true)
		if s, ok := d.str("expiresAt", true); ok {
			if t, ok := p.eventTime(d.path("expiresAt"), s); ok {
				if !e.Time.IsZero() && !t.After(e.Time) {
					p.fail(d.path("expiresAt"), "must be after the event time")
				}
				v.ExpiresAt = t
			}
		}
		return v
	case TrainingExpiredType:
		v := &TrainingExpired{}
		v.Course, _ = d.str("course", true)
		return v
	case AlertRaisedType:
		v := &AlertRaised{}
		d.decodeInto(v)
		return v
	case ReportExecutedType:
		v := &ReportExecuted{}
		d.decodeInto(v)
		return v
	case CheckpointSignedType:
		return decodeCheckpoint(d)
	}
	return nil
}

// parser collects problems of one event.
type parser struct {
	src      []byte
	problems []*FieldError
	internal bool
}

func (p *parser) fail(field, rule string) {
	p.problems = append(p.problems, &FieldError{Field: field, Rule: rule})
}

// scan applies the minimum-necessary recognizers to a string value.
func (p *parser) scan(field, s string) {
	if rule := RawIdentifier(s); rule != "" {
		p.fail(field, rule)
	}
}

func (p *parser) ident(field, s string) bool {
	if !IsIdentifier(s) {
		p.fail(field, "must be 1-128 characters of A-Z a-z 0-9 _ - :")
		return false
	}
	p.scan(field, s)
	return true
}

func (p *parser) eventTime(field, s string) (time.Time, bool) {
	t, rule := ParseTime(s)
	if rule != "" {
		p.fail(field, rule)
		return time.Time{}, false
	}
	return t, true
}

// member is one member of a parsed JSON object: strings unquoted, objects parsed,
// other values kept as their JSON text.
type member struct {
	name string
	str  string   // kind '"': the string; other scalar kinds and arrays: the JSON text
	obj  []member // kind '{'
	// lo and hi bound str in the parse state's values until parseObject sets it.
	lo, hi int32
	kind   jsontext.Kind
	seen   bool
}

// parseState is what decoding one event uses and gives back when done: the jsontext
// decoder, the event's values (every string unquoted, and the JSON text of every other
// scalar) gathered in one buffer that becomes one string, of which every member's value
// is a substring, and the member lists of its objects. Reading an event allocates once
// for its values, and what its strings keep alive is about their own size: not the
// names, quotes and punctuation of the event's text.
type parseState struct {
	r     bytes.Reader
	dec   *jsontext.Decoder
	vals  []byte
	lists [][]member
	used  int
}

var parseStates = sync.Pool{New: func() any {
	st := &parseState{}
	st.dec = jsontext.NewDecoder(&st.r)
	return st
}}

// release clears what the state refers to and gives it back to the pool.
func (st *parseState) release() {
	for i := range st.lists[:st.used] {
		clear(st.lists[i])
		st.lists[i] = st.lists[i][:0]
	}
	st.used, st.vals = 0, st.vals[:0]
	st.r.Reset(nil)
	parseStates.Put(st)
}

// parseObject reads exactly one JSON object with the jsontext decoder, which rejects
// duplicate member names and invalid UTF-8. It streams raw values instead of building
// maps by reflection: decoding is on the path of every ingest, view and rebuild. The
// members stay valid until st is released.
func parseObject(st *parseState, b []byte) ([]member, error) {
	st.r.Reset(b)
	st.dec.Reset(&st.r)
	dec := st.dec
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, err
	}
	if tok.Kind() != '{' {
		return nil, fmt.Errorf("got %s", kindName(tok.Kind()))
	}
	ms, err := st.readMembers()
	if err != nil {
		return nil, err
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		if err == nil {
			err = errors.New("unexpected data after the object")
		}
		return nil, err
	}
	vals := string(st.vals)
	for _, l := range st.lists[:st.used] {
		for i := range l {
			if m := &l[i]; m.kind != '{' {
				m.str = vals[m.lo:m.hi]
			}
		}
	}
	return ms, nil
}

// readMembers reads the members of an object whose '{' was read, and its '}'.
func (st *parseState) readMembers() ([]member, error) {
	dec := st.dec
	i := st.used
	if i == len(st.lists) {
		st.lists = append(st.lists, make([]member, 0, 12))
	}
	st.used++
	ms := st.lists[i][:0]
	defer func() { st.lists[i] = ms }() // what append grew, and the members for parseObject
	for {
		if dec.PeekKind() == '}' {
			_, err := dec.ReadToken()
			return ms, err
		}
		name, err := st.readName()
		if err != nil {
			return nil, err
		}
		m := member{name: name, kind: dec.PeekKind()}
		switch m.kind {
		case '{':
			if _, err := dec.ReadToken(); err != nil {
				return nil, err
			}
			if m.obj, err = st.readMembers(); err != nil {
				return nil, err
			}
		default:
			v, err := dec.ReadValue()
			if err != nil {
				return nil, err
			}
			m.lo = int32(len(st.vals))
			switch {
			case m.kind != '"':
				st.vals = append(st.vals, v...)
			case bytes.IndexByte(v, '\\') < 0:
				st.vals = append(st.vals, v[1:len(v)-1]...)
			default:
				if st.vals, err = jsontext.AppendUnquote(st.vals, v); err != nil {
					return nil, err
				}
			}
			m.hi = int32(len(st.vals))
		}
		ms = append(ms, m)
	}
}

// readName reads an object name: one of the contract's names without allocating.
func (st *parseState) readName() (string, error) {
	v, err := st.dec.ReadValue()
	if err != nil {
		return "", err
	}
	if len(v) < 2 || v[0] != '"' {
		return "", fmt.Errorf("got %s where a name was expected", kindName(v.Kind()))
	}
	if bytes.IndexByte(v, '\\') < 0 {
		raw := v[1 : len(v)-1]
		if name, ok := knownNames[string(raw)]; ok {
			return name, nil
		}
		return string(raw), nil
	}
	u, err := jsontext.AppendUnquote(nil, v)
	if err != nil {
		return "", err
	}
	return string(u), nil
}

// knownNames are the member names of the contract's events, each its own key.
var knownNames = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{
		"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema", "data",
		"channel", "direction", "queueId", "divisionId", "email", "to", "fromMasked", "tls",
		"interactionType", "dataClassification", "part2", "method", "agentId", "authorized", "action",
		"recordingId", "recipientMasked", "remoteIp", "fromQueueId", "toQueueId", "fromDivisionId",
		"toDivisionId", "disposition", "kind", "retention", "legalHold", "operatorId", "recordCount",
		"reason", "course", "expiresAt",
	} {
		m[n] = n
	}
	return m
}()

// object is one JSON object under validation; it remembers which members were read so
// that the rest can be reported as unknown.
type object struct {
	p   *parser
	m   []member
	pre string // path prefix, "" at top level, "data." inside data
}

func (o *object) path(key string) string { return o.pre + key }

// scan is parser.scan for the member key, its path built only for a problem.
func (o *object) scan(key, s string) {
	if rule := RawIdentifier(s); rule != "" {
		o.p.fail(o.path(key), rule)
	}
}

func (o *object) find(key string) *member {
	for i := range o.m {
		if o.m[i].name == key {
			return &o.m[i]
		}
	}
	return nil
}

// get returns the member, marking it read; nil when absent or null, and a missing
// required member is reported.
func (o *object) get(key string, required bool) *member {
	m := o.find(key)
	if m != nil {
		m.seen = true
	}
	if m == nil || m.kind == 'n' {
		if required {
			o.p.fail(o.path(key), "is required")
		}
		return nil
	}
	return m
}

func (o *object) str(key string, required bool) (string, bool) {
	s, ok := o.unscanned(key, required)
	if ok && o.pre != "" {
		o.scan(key, s)
	}
	return s, ok
}

// unscanned is str without the minimum-necessary scan, for values that are not text
// (hashes, signatures).
func (o *object) unscanned(key string, required bool) (string, bool) {
	m := o.get(key, required)
	if m == nil {
		return "", false
	}
	if m.kind != '"' {
		o.p.fail(o.path(key), "must be a string, not "+kindName(m.kind))
		return "", false
	}
	if m.str == "" {
		o.p.fail(o.path(key), "must not be empty")
		return "", false
	}
	return m.str, true
}

func (o *object) enum(key string, required bool, allowed []string) string {
	s, ok := o.str(key, required)
	if !ok {
		return ""
	}
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	o.p.fail(o.path(key), "must be one of "+quoteList(allowed))
	return ""
}

func (o *object) ident(key string, required bool) string {
	m := o.get(key, required)
	if m == nil {
		return ""
	}
	if m.kind != '"' {
		o.p.fail(o.path(key), "must be a string, not "+kindName(m.kind))
		return ""
	}
	if !IsIdentifier(m.str) {
		o.p.fail(o.path(key), "must be 1-128 characters of A-Z a-z 0-9 _ - :")
		return ""
	}
	o.scan(key, m.str)
	return m.str
}

func (o *object) masked(key string, required bool) string {
	s, ok := o.str(key, required)
	if !ok {
		return ""
	}
	if !IsMaskedEmail(s) {
		o.p.fail(o.path(key), RuleMasked)
		return ""
	}
	return s
}

func (o *object) boolean(key string, required bool) (bool, bool) {
	m := o.get(key, required)
	if m == nil {
		return false, false
	}
	switch m.kind {
	case 't':
		return true, true
	case 'f':
		return false, true
	}
	o.p.fail(o.path(key), "must be a boolean (true or false), not "+kindName(m.kind))
	return false, false
}

func (o *object) integer(key string, required bool) (int64, bool) {
	m := o.get(key, required)
	if m == nil {
		return 0, false
	}
	if m.kind != '0' {
		o.p.fail(o.path(key), "must be a JSON integer, not "+kindName(m.kind))
		return 0, false
	}
	n, err := strconv.ParseInt(m.str, 10, 64)
	if err != nil {
		o.p.fail(o.path(key), "must be a JSON integer (no fraction or exponent) within 64 bits")
		return 0, false
	}
	return n, true
}

func (o *object) obj(key string, required bool) *object {
	m := o.get(key, required)
	if m == nil {
		return nil
	}
	if m.kind != '{' {
		o.p.fail(o.path(key), "must be a JSON object, not "+kindName(m.kind))
		return nil
	}
	pre := o.path(key) + "."
	if o.pre == "" && key == "data" {
		pre = "data." // no allocation for every event's data
	}
	return &object{p: o.p, m: m.obj, pre: pre}
}

// finish reports every member that was not read as unknown.
func (o *object) finish() {
	var unknown []string
	for _, m := range o.m {
		if !m.seen {
			unknown = append(unknown, m.name)
		}
	}
	sortStrings(unknown)
	for _, k := range unknown {
		o.p.fail(o.path(k), "unknown field")
	}
}

func (o *object) seenAll() {
	for i := range o.m {
		o.m[i].seen = true
	}
}

// decodeInto decodes custody's own payloads (read back from the log) with unknown
// members rejected.
func (o *object) decodeInto(v any) {
	var env struct {
		Data jsontext.Value `json:"data"`
	}
	err := json.Unmarshal(o.p.src, &env)
	if err == nil {
		err = json.Unmarshal(env.Data, v, json.RejectUnknownMembers(true))
	}
	if err != nil {
		o.p.fail(strings.TrimSuffix(o.pre, "."), jsonProblem(err))
	}
	o.seenAll()
}

// ParseTime parses a contract time: RFC 3339 as Go's time.RFC3339Nano parses it, with T
// (or t), an explicit offset within ±23:59, at most nine fraction digits, no leap second,
// a year from 2000 on. It returns the instant in UTC, or the broken rule.
func ParseTime(s string) (time.Time, string) {
	const rule = "must be an RFC 3339 time with an explicit offset (Z or ±hh:mm), e.g. 2026-03-08T06:59:59.123Z"
	if len(s) > 10 && s[10] == 't' {
		s = s[:10] + "T" + s[11:]
	}
	if len(s) > 0 && (s[len(s)-1] == 'z') {
		s = s[:len(s)-1] + "Z"
	}
	// Go's parser also takes a comma as the decimal mark; the limit applies to both.
	if i := strings.IndexAny(s, ".,"); i >= 0 {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j-i-1 > 9 {
			return time.Time{}, "must have at most nine fraction digits"
		}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if _, err2 := time.Parse("2006-01-02T15:04:05.999999999", s); err2 == nil {
			return time.Time{}, "must have an explicit offset (Z or ±hh:mm); a time without one is never guessed as local time"
		}
		return time.Time{}, rule
	}
	// Go's lenient fallback parser also takes offsets of 24 hours or 60 minutes
	// (+24:00, +23:60); the contract allows ±23:59 at most. A successful parse ends in
	// Z or ±hh:mm.
	if n := len(s); s[n-1] != 'Z' && (n < 6 || s[n-5:n-3] > "23" || s[n-2:] > "59") {
		return time.Time{}, "must have an offset within ±23:59"
	}
	t = t.UTC()
	if t.Year() < MinYear {
		return time.Time{}, "must not be before the year 2000"
	}
	return t, ""
}

// IsIdentifier reports whether s follows the subject character rule: 1-128 characters
// of A-Z a-z 0-9 _ - :.
func IsIdentifier(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == ':') {
			return false
		}
	}
	return true
}

// canonicalUUID checks the canonical 36-character form, version 1-8 and the RFC variant,
// and returns it in lower case.
func canonicalUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r >= 'A' && r <= 'F' }) {
		return canonicalUUIDUpper(s)
	}
	if !uuidShape(s) {
		return "", false
	}
	return s, true
}

// uuidShape checks the canonical form of a lower-case UUID.
func uuidShape(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	if v := s[14]; v < '1' || v > '8' {
		return false
	}
	switch s[19] {
	case '8', '9', 'a', 'b':
		return true
	}
	return false
}

// canonicalUUIDUpper is canonicalUUID for a UUID with upper-case hex digits.
func canonicalUUIDUpper(s string) (string, bool) {
	b := []byte(s)
	for i, c := range b {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
			continue
		}
		switch {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			b[i] = c + ('a' - 'A')
		default:
			return "", false
		}
	}
	if v := b[14]; v < '1' || v > '8' {
		return "", false
	}
	switch b[19] {
	case '8', '9', 'a', 'b':
	default:
		return "", false
	}
	return string(b), true
}

// NewID checks and canonicalizes an event id; ok is false when it is not a UUID the
// contract accepts.
func NewID(s string) (string, bool) { return canonicalUUID(s) }

func isURIReference(s string) bool {
	// Unreserved characters and slashes (what a platform and tenant name is made of)
	// always parse: no scheme, port, host or escape to check.
	plain := true
	for i := 0; i < len(s) && plain; i++ {
		c := s[i]
		plain = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' || c == '/'
	}
	if plain {
		return true
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	_, err := url.Parse(s)
	return err == nil
}

func isExtensionName(s string) bool {
	if len(s) == 0 || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 'n':
		return "null"
	}
	return "invalid JSON"
}

func jsonProblem(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	msg = strings.TrimPrefix(msg, "jsontext: ")
	return msg
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, ", ")
}

func typeNames() []string {
	out := make([]string, len(Types))
	for i, t := range Types {
		out[i] = string(t)
	}
	return out
}

func sortStrings(xs []string) {
	for i := 1; i < len(xs); i++ {
		for j := i; j > 0 && xs[j] < xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
}
