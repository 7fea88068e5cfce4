package genesys

import (
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// The wire models below carry the Genesys Cloud field names of the platform SDK's
// generated models (their JSON tags are the wire names). Each struct holds the fields
// the adapter maps; every other member is captured in Rest and checked against the
// model's other known field names, so that an unexpected field is reported by name
// (see MapperConfig.AllowUnknownFields). Nested objects the adapter does not read
// (flow, metrics, evaluations, message, propertyChanges, ...) are not inspected.

// conversation is AnalyticsConversation: one record of an asynchronous detail job's
// results (participants carry attributes) or of the synchronous query (they do not).
type conversation struct {
	ConversationID       string         `json:"conversationId"`
	ConversationStart    string         `json:"conversationStart"`
	ConversationEnd      string         `json:"conversationEnd"`
	OriginatingDirection string         `json:"originatingDirection"`
	DivisionIDs          []string       `json:"divisionIds"`
	Participants         []participant  `json:"participants"`
	Rest                 jsontext.Value `json:",embed"`
}

var conversationKnown = names("conferenceStart", "conversationInitiator", "customerParticipation",
	"externalTag", "knowledgeBaseIds", "mediaStatsMinConversationMos", "mediaStatsMinConversationRFactor",
	"originatingSocialMediaPublic", "selfServed", "accessAttributes", "evaluations", "surveys", "resolutions")

// participant is AnalyticsParticipant (attributes only in the asynchronous model).
type participant struct {
	ParticipantID string            `json:"participantId"`
	Purpose       string            `json:"purpose"`
	UserID        string            `json:"userId"`
	Attributes    map[string]string `json:"attributes"`
	Sessions      []session         `json:"sessions"`
	Rest          jsontext.Value    `json:",embed"`
}

var participantKnown = names("participantName", "externalContactId", "externalOrganizationId",
	"flaggedReason", "teamId", "screenRecording")

// session is AnalyticsSession.
type session struct {
	SessionID   string         `json:"sessionId"`
	MediaType   string         `json:"mediaType"`
	Direction   string         `json:"direction"`
	AddressFrom string         `json:"addressFrom"`
	AddressTo   string         `json:"addressTo"`
	Recording   bool           `json:"recording"`
	Segments    []segment      `json:"segments"`
	Rest        jsontext.Value `json:",embed"`
}

var sessionKnown = names("activeSkillIds", "acwSkipped", "addressOther", "addressSelf", "agentAssistantId",
	"agentBullseyeRing", "agentOwned", "ani", "assignerId", "authenticated", "bargedParticipantId", "bcc",
	"callbackNumbers", "callbackScheduledTime", "callbackUserName", "cc", "cleared", "coachedParticipantId",
	"cobrowseRole", "cobrowseRoomId", "deliveryStatus", "deliveryStatusChangeDate", "destinationAddresses",
	"dispositionAnalyzer", "dispositionName", "dnis", "edgeId", "eligibleAgentCounts", "extendedDeliveryStatus",
	"flowInType", "flowOutType", "journeyActionId", "journeyActionMapId", "journeyActionMapVersion",
	"journeyCustomerId", "journeyCustomerIdType", "journeyCustomerSessionId", "journeyCustomerSessionIdType",
	"mediaBridgeId", "mediaCount", "messageType", "monitoredParticipantId", "outboundCampaignId",
	"outboundContactId", "outboundContactListId", "peerId", "protocolCallId", "provider", "remote",
	"remoteNameDisplayable", "removedSkillIds", "requestedRoutings", "roomId", "routingRing", "routingRule",
	"routingRuleType", "screenShareAddressSelf", "screenShareRoomId", "scriptId", "selectedAgentId",
	"selectedAgentRank", "sessionDnis", "sharingScreen", "skipEnabled", "timeoutSeconds", "usedRouting",
	"videoAddressSelf", "videoRoomId", "waitingInteractionCounts", "proposedAgents", "agentGroups",
	"mediaEndpointStats", "flow", "metrics")

// segment is AnalyticsConversationSegment.
type segment struct {
	SegmentStart   string         `json:"segmentStart"`
	SegmentEnd     string         `json:"segmentEnd"`
	SegmentType    string         `json:"segmentType"`
	QueueID        string         `json:"queueId"`
	DisconnectType string         `json:"disconnectType"`
	Rest           jsontext.Value `json:",embed"`
}

var segmentKnown = names("audioMuted", "conference", "destinationConversationId", "destinationSessionId",
	"errorCode", "groupId", "q850ResponseCodes", "requestedLanguageId", "requestedRoutingSkillIds",
	"requestedRoutingUserIds", "sipResponseCodes", "sourceConversationId", "sourceSessionId", "subject",
	"videoMuted", "wrapUpCode", "wrapUpNote", "wrapUpTags", "scoredAgents", "properties")

// conversationPage is AnalyticsConversationAsyncQueryResponse (cursor,
// dataAvailabilityDate) or AnalyticsConversationQueryResponse (totalHits, aggregations).
type conversationPage struct {
	Conversations        []conversation `json:"conversations"`
	Cursor               string         `json:"cursor"`
	DataAvailabilityDate string         `json:"dataAvailabilityDate"`
	Rest                 jsontext.Value `json:",embed"`
}

var conversationPageKnown = names("totalHits", "aggregations")

// detailBody is the eventBody of the v2.detail.events.conversation.{id}.* topics: the
// union of the fields of the customer, acd, user and attributes event models. Which of
// them a topic may carry is checked per topic (detailKnown).
type detailBody struct {
	EventTime      *int64            `json:"eventTime"`
	ConversationID string            `json:"conversationId"`
	ParticipantID  string            `json:"participantId"`
	SessionID      string            `json:"sessionId"`
	MediaType      string            `json:"mediaType"`
	Direction      string            `json:"direction"`
	AddressTo      string            `json:"addressTo"`
	AddressFrom    string            `json:"addressFrom"`
	DisconnectType string            `json:"disconnectType"`
	DivisionID     string            `json:"divisionId"`
	QueueID        string            `json:"queueId"`
	UserID         string            `json:"userId"`
	AnsweredUserID string            `json:"answeredUserId"`
	Attributes     map[string]string `json:"attributes"`
	Rest           jsontext.Value    `json:",embed"`
}

var (
	detailCommon = []string{"eventTime", "conversationId", "participantId", "conversationExternalContactIds",
		"conversationExternalOrganizationIds"}
	detailSession = []string{"sessionId", "mediaType", "provider", "direction", "ani", "dnis", "addressTo",
		"addressFrom", "callbackUserName", "callbackNumbers", "callbackScheduledTime", "subject", "messageType",
		"divisionId"}
	detailACD = []string{"queueId", "requestedRoutings", "usedRouting", "requestedRoutingSkillIds",
		"requestedLanguageId", "requestedRoutingUserIds", "routingPriority"}
	detailEnd = []string{"disconnectType", "interactingDurationMs"}

	// detailKnown lists, per topic suffix, every field of the topic's event model.
	detailKnown = map[string]map[string]bool{
		"customer.start": names(cat(detailCommon, detailSession, []string{"externalOrganizationId", "externalContactId"})...),
		"customer.end":   names(cat(detailCommon, detailSession, detailEnd, []string{"externalOrganizationId", "externalContactId"})...),
		"acd.start":      names(cat(detailCommon, detailSession, detailACD)...),
		"acd.end":        names(cat(detailCommon, detailSession, detailACD, []string{"disconnectType", "acdOutcome", "answeredUserId", "connectedDurationMs"})...),
		"user.start":     names(cat(detailCommon, detailSession, []string{"userId", "queueId"})...),
		"user.end":       names(cat(detailCommon, detailSession, detailEnd, []string{"userId", "queueId"})...),
		"attributes":     names(cat(detailCommon, []string{"attributes"})...),
	}
)

// ref is an entity reference ({id, name, selfUri}); its other members are not inspected.
type ref struct {
	ID   string         `json:"id"`
	Rest jsontext.Value `json:",embed"`
}

// auditMessage is AuditLogMessage (REST results of POST /api/v2/audits/query).
type auditMessage struct {
	ID         string            `json:"id"`
	User       *ref              `json:"user"`
	Client     *ref              `json:"client"`
	RemoteIP   []string          `json:"remoteIp"`
	Level      string            `json:"level"`
	EventDate  string            `json:"eventDate"`
	Action     string            `json:"action"`
	Entity     *ref              `json:"entity"`
	EntityType string            `json:"entityType"`
	Status     string            `json:"status"`
	Context    map[string]string `json:"context"`
	Rest       jsontext.Value    `json:",embed"`
}

var auditMessageKnown = names("userHomeOrgId", "serviceName", "message", "application", "initiatingAction",
	"transactionInitiator", "propertyChanges", "entityChanges")

// auditTopicMessage is AuditTopicAuditLogMessage (notification topic
// v2.audits.entitytype.{id}.entityid.{id}): eventTime instead of eventDate, userId
// instead of user.id, clientId instead of client.
type auditTopicMessage struct {
	ID         string            `json:"id"`
	UserID     string            `json:"userId"`
	ClientID   *ref              `json:"clientId"`
	RemoteIP   []string          `json:"remoteIp"`
	Level      string            `json:"level"`
	EventTime  string            `json:"eventTime"`
	Action     string            `json:"action"`
	Entity     *ref              `json:"entity"`
	EntityType string            `json:"entityType"`
	Status     string            `json:"status"`
	Context    map[string]string `json:"context"`
	Rest       jsontext.Value    `json:",embed"`
}

var auditTopicKnown = names("userHomeOrgId", "username", "userDisplay", "serviceName", "message", "propertyChanges")

// auditPage is AuditQueryExecutionResultsResponse ({id, pageSize, cursor, entities,
// downloadUrl}) or the realtime query's page ({entities, pageSize, pageNumber, total,
// pageCount}).
type auditPage struct {
	Cursor      string         `json:"cursor"`
	DownloadURL string         `json:"downloadUrl"`
	Entities    []auditMessage `json:"entities"`
	Rest        jsontext.Value `json:",embed"`
}

var auditPageKnown = names("id", "pageSize", "pageNumber", "total", "pageCount")

// retention is RecordingRetention, one entity of GET /api/v2/recordings/retention/query.
type retention struct {
	ConversationID string         `json:"conversationId"`
	RecordingID    string         `json:"recordingId"`
	CreationTime   string         `json:"creationTime"`
	DeleteDate     string         `json:"deleteDate"`
	Rest           jsontext.Value `json:",embed"`
}

var retentionKnown = names("archiveDate", "archiveMedium", "exportDate", "exportedDate")

// retentionPage is RecordingRetentionCursorEntityListing.
type retentionPage struct {
	Entities []retention    `json:"entities"`
	NextURI  string         `json:"nextUri"`
	Rest     jsontext.Value `json:",embed"`
}

var retentionPageKnown = names("selfUri", "previousUri")

// recordingMeta is Recordingmetadata (GET /api/v2/conversations/{id}/recordingmetadata):
// the adapter reads only the media type, never the media.
type recordingMeta struct {
	ID             string         `json:"id"`
	ConversationID string         `json:"conversationId"`
	Media          string         `json:"media"`
	Rest           jsontext.Value `json:",embed"`
}

var recordingMetaKnown = names("name", "path", "startTime", "endTime", "mediaSubtype", "mediaSubject",
	"annotations", "fileState", "restoreExpirationTime", "archiveDate", "archiveMedium", "deleteDate",
	"exportDate", "exportedDate", "maxAllowedRestorationsForOrg", "remainingRestorationsAllowedForOrg",
	"sessionId", "selfUri", "region", "recordingFileRole", "creationTime")

func names(ns ...string) map[string]bool {
	m := make(map[string]bool, len(ns))
	for _, n := range ns {
		m[n] = true
	}
	return m
}

func cat(lists ...[]string) []string { return slices.Concat(lists...) }

// decodeJSON decodes one JSON value strictly (duplicate keys and invalid UTF-8 are
// errors; keys match exactly) and turns a decoding failure into a *FieldError naming
// the path and the rule, never the value.
func decodeJSON(b []byte, v any) error {
	err := json.Unmarshal(b, v)
	if err == nil {
		return nil
	}
	var se *json.SemanticError
	if errors.As(err, &se) {
		var syn *jsontext.SyntacticError
		if errors.As(se.Err, &syn) {
			return &FieldError{Field: pointerPath(syn.JSONPointer), Rule: "invalid JSON: " + syntaxRule(syn)}
		}
		rule := "has a value this adapter cannot read"
		if se.GoType != nil {
			rule = "must be " + goKind(se.GoType)
		}
		return &FieldError{Field: pointerPath(se.JSONPointer), Rule: rule}
	}
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		return &FieldError{Field: pointerPath(syn.JSONPointer), Rule: "invalid JSON: " + syntaxRule(syn)}
	}
	return &FieldError{Field: "(document)", Rule: "invalid JSON"}
}

func syntaxRule(e *jsontext.SyntacticError) string {
	if e.Err == nil {
		return "syntax error"
	}
	return strings.TrimPrefix(e.Err.Error(), "jsontext: ")
}

// goKind names the JSON shape a Go type expects.
func goKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a JSON string"
	case reflect.Bool:
		return "a JSON boolean (true or false)"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a JSON integer"
	case reflect.Slice:
		return "a JSON array"
	case reflect.Map, reflect.Struct:
		if t == reflect.TypeFor[jsontext.Value]() {
			return "valid JSON"
		}
		return "a JSON object"
	}
	return "of another JSON type"
}

// pointerPath turns "/participants/0/sessions/1" into "participants[0].sessions[1]".
func pointerPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.Atoi(tok); err == nil && tok != "" {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	if b.Len() == 0 {
		return "(document)"
	}
	return b.String()
}

// join builds a child path.
func join(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}

func index(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }

// memberNames lists the names of a JSON object's members in order.
func memberNames(v jsontext.Value) []string {
	if len(v) == 0 {
		return nil
	}
	dec := jsontext.NewDecoder(strings.NewReader(string(v)))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return nil
	}
	var out []string
	for dec.PeekKind() == '"' {
		tok, err := dec.ReadToken()
		if err != nil {
			return out
		}
		out = append(out, tok.String())
		if err := dec.SkipValue(); err != nil {
			return out
		}
	}
	return out
}

// unknownFields reports every member of rest that is not a known field of the model.
func (p *problems) unknownFields(path, model string, rest jsontext.Value, known map[string]bool, allow bool) {
	if allow {
		return
	}
	for _, n := range memberNames(rest) {
		if !known[n] {
			p.add(join(path, n), "is not a field of the Genesys "+model+" model that this adapter knows; "+
				"if Genesys added it, review it and set allowUnknownFields to ignore such fields")
		}
	}
}
