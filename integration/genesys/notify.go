package genesys

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/custody/custody/domain"
	"github.com/go-json-experiment/json/jsontext"
)

// eventBridge is the Amazon EventBridge envelope of a Genesys Cloud event source.
type eventBridge struct {
	DetailType string         `json:"detail-type"`
	Detail     *notification  `json:"detail"`
	Rest       jsontext.Value `json:",embed"`
}

var eventBridgeKnown = names("version", "id", "source", "account", "time", "region", "resources")

// notification is a notification as the WebSocket channel delivers it and as EventBridge
// carries it in detail.
type notification struct {
	TopicName string         `json:"topicName"`
	EventBody jsontext.Value `json:"eventBody"`
	Rest      jsontext.Value `json:",embed"`
}

var notificationKnown = names("version", "metadata")

var (
	detailTopic = regexp.MustCompile(`^v2\.detail\.events\.conversation\.([^.]+)\.(.+)$`)
	auditTopic  = regexp.MustCompile(`^v2\.audits\.entitytype\.[^.]+\.entityid\.[^.]+$`)
	// detailUnmapped are detail topics that carry no contract fact; they are accepted
	// and give no event, so that a subscription to them does not fail the ingest.
	detailUnmapped = names("flow.start", "flow.end", "flow.outcome", "acw", "wrapup", "outbound",
		"contact", "voicemail.start", "voicemail.end")
	// otherUnmapped are non-conversation topics accepted without events: the WebSocket
	// heartbeat and the data-lake availability notice.
	otherUnmapped = names("channel.metadata", "v2.analytics.conversations.details.jobs.availability")
)

// Topics lists the notification topics that give events (with {id} for the ids), as
// they are entered in an EventBridge integration's topic filter.
var Topics = []string{
	"v2.detail.events.conversation.{id}.customer.start",
	"v2.detail.events.conversation.{id}.customer.end",
	"v2.detail.events.conversation.{id}.acd.end",
	"v2.detail.events.conversation.{id}.user.start",
	"v2.detail.events.conversation.{id}.attributes",
	"v2.audits.entitytype.{id}.entityid.{id}",
}

// Notification maps one notification payload: an EventBridge event ({"detail-type",
// "detail": {...}, ...}) or a bare notification ({"topicName", "version", "eventBody",
// "metadata"}) as the WebSocket channel and EventBridge's detail carry it. A topic this
// adapter does not know is rejected (ErrUnknownTopic); known topics without a contract
// fact (acd.start, user.end, flow.*, the heartbeat, ...) give no events and no error.
func (m *Mapper) Notification(b []byte) ([]domain.Event, error) {
	var top struct {
		DetailType *jsontext.Value `json:"detail-type"`
		Detail     *jsontext.Value `json:"detail"`
		Rest       jsontext.Value  `json:",embed"`
	}
	if err := decodeJSON(b, &top); err != nil {
		return nil, &PayloadError{What: "notification", Problems: []error{err}}
	}
	if top.DetailType != nil || top.Detail != nil {
		return m.eventBridge(b)
	}
	var n notification
	if err := decodeJSON(b, &n); err != nil {
		return nil, &PayloadError{What: "notification", Problems: []error{err}}
	}
	return m.notification(&n, "")
}

func (m *Mapper) eventBridge(b []byte) ([]domain.Event, error) {
	var e eventBridge
	if err := decodeJSON(b, &e); err != nil {
		return nil, &PayloadError{What: "EventBridge event", Problems: []error{err}}
	}
	var p problems
	p.unknownFields("", "EventBridge event", e.Rest, eventBridgeKnown, m.allow)
	if e.Detail == nil {
		p.add("detail", "required")
	}
	if err := p.err("EventBridge event"); err != nil {
		return nil, err
	}
	return m.notification(e.Detail, "detail")
}

func (m *Mapper) notification(n *notification, path string) ([]domain.Event, error) {
	var p problems
	what := "notification"
	p.unknownFields(path, "notification", n.Rest, notificationKnown, m.allow)
	topic := n.TopicName
	if topic == "" {
		p.add(join(path, "topicName"), "required")
		return nil, p.err(what)
	}
	var ps []pending
	bodyPath := join(path, "eventBody")
	switch {
	case otherUnmapped[topic]:
		return nil, p.err(what)
	case auditTopic.MatchString(topic):
		what = "notification " + topic
		ps = m.auditTopicBody(n.EventBody, bodyPath, &p)
	default:
		sm := detailTopic.FindStringSubmatch(topic)
		if sm == nil || (detailKnown[sm[2]] == nil && !detailUnmapped[sm[2]]) {
			fe := &FieldError{Field: join(path, "topicName"), Rule: "is not a topic this adapter maps (" +
				strings.Join(Topics, ", ") + ") or knowingly ignores"}
			return nil, &PayloadError{What: what, Problems: []error{fmt.Errorf("%w: %w", fe, ErrUnknownTopic)}}
		}
		what = "notification " + sm[2] + " of conversation " + sm[1]
		if detailUnmapped[sm[2]] {
			return nil, p.err(what)
		}
		ps = m.detailBody(sm[1], sm[2], n.EventBody, bodyPath, &p)
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

// prefixed rewrites a decoding error's field path under prefix.
func prefixed(err error, prefix string) error {
	if fe, ok := err.(*FieldError); ok {
		f := fe.Field
		if f == "(document)" {
			f = prefix
		} else if strings.HasPrefix(f, "[") {
			f = prefix + f
		} else {
			f = join(prefix, f)
		}
		return &FieldError{Field: f, Rule: fe.Rule}
	}
	return err
}

func (m *Mapper) detailBody(conv, suffix string, raw jsontext.Value, path string, p *problems) []pending {
	if len(raw) == 0 {
		p.add(path, "required")
		return nil
	}
	var b detailBody
	if err := decodeJSON(raw, &b); err != nil {
		p.addErr(prefixed(err, path))
		return nil
	}
	p.unknownFields(path, "detail event "+suffix, b.Rest, detailKnown[suffix], m.allow)
	// Members of the union that this topic's model does not have.
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"participantId", b.ParticipantID != ""}, {"sessionId", b.SessionID != ""}, {"mediaType", b.MediaType != ""},
		{"direction", b.Direction != ""}, {"addressTo", b.AddressTo != ""}, {"addressFrom", b.AddressFrom != ""},
		{"disconnectType", b.DisconnectType != ""}, {"divisionId", b.DivisionID != ""}, {"queueId", b.QueueID != ""},
		{"userId", b.UserID != ""}, {"answeredUserId", b.AnsweredUserID != ""}, {"attributes", b.Attributes != nil},
	} {
		if f.set && !detailKnown[suffix][f.name] && !m.allow {
			p.add(join(path, f.name), "is not a field of the Genesys detail event "+suffix+" model")
		}
	}
	at := epochMillis(p, join(path, "eventTime"), b.EventTime)
	switch {
	case b.ConversationID == "":
		p.add(join(path, "conversationId"), "required")
	case b.ConversationID != conv:
		p.add(join(path, "conversationId"), "must be the conversation id of the topic name")
	}
	m.ident(p, join(path, "conversationId"), conv, true)
	if len(p.errs) > 0 {
		return nil
	}
	switch suffix {
	case "customer.start":
		channel, ignored := m.channel(p, join(path, "mediaType"), b.MediaType)
		if ignored || channel == "" {
			return nil
		}
		dir := strings.ToLower(b.Direction)
		if dir == "" {
			p.add(join(path, "direction"), "required")
		} else if dir != "inbound" && dir != "outbound" {
			p.add(join(path, "direction"), "must be INBOUND or OUTBOUND")
		}
		d := &domain.InteractionStarted{Channel: channel, Direction: dir,
			DivisionID: m.ident(p, join(path, "divisionId"), b.DivisionID, false)}
		if channel == "email" {
			d.Email = m.email(p, path, dir, b.AddressTo, b.AddressFrom)
		}
		return []pending{{subject: conv, at: at, data: d, path: path}}
	case "customer.end":
		return []pending{ended(conv, at, strings.ToLower(b.DisconnectType), path)}
	case "acd.end":
		if b.AnsweredUserID == "" {
			return nil // abandoned, or answered by a flow: no one was assigned
		}
		user := m.ident(p, join(path, "answeredUserId"), b.AnsweredUserID, true)
		queue := m.ident(p, join(path, "queueId"), b.QueueID, false)
		return []pending{m.assigned(conv, at, user, queue, join(path, "answeredUserId"))}
	case "user.start":
		user := m.ident(p, join(path, "userId"), b.UserID, true)
		queue := m.ident(p, join(path, "queueId"), b.QueueID, false)
		return []pending{m.assigned(conv, at, user, queue, join(path, "userId"))}
	case "attributes":
		if b.Attributes == nil {
			p.add(join(path, "attributes"), "required")
			return nil
		}
		ap := map[string]string{}
		for k := range b.Attributes {
			ap[k] = join(path, "attributes")
		}
		return m.attributePending(p, conv, b.Attributes, ap, at)
	}
	return nil // acd.start, user.end: validated, no contract fact
}

func (m *Mapper) auditTopicBody(raw jsontext.Value, path string, p *problems) []pending {
	if len(raw) == 0 {
		p.add(path, "required")
		return nil
	}
	var a auditTopicMessage
	if err := decodeJSON(raw, &a); err != nil {
		p.addErr(prefixed(err, path))
		return nil
	}
	p.unknownFields(path, "AuditTopicAuditLogMessage", a.Rest, auditTopicKnown, m.allow)
	f := auditFacts{id: a.ID, user: a.UserID, level: a.Level, action: a.Action, entityType: a.EntityType,
		status: a.Status, context: a.Context, remoteIPs: a.RemoteIP, path: path, idField: "id", userField: "userId"}
	if a.ClientID != nil {
		f.client = a.ClientID.ID
	}
	if a.Entity != nil {
		f.entityID = a.Entity.ID
	}
	if slices.Contains(m.m.RecordingEntityTypes, a.EntityType) {
		f.at = m.timeField(p, join(path, "eventTime"), a.EventTime, true)
	}
	return m.audit(f, p)
}
