// Package genesys ingests Genesys Cloud into custody's event contract
// (shared/contract/EVENTS.md): conversations, their classification and consent, agent
// assignments, recording reads and deletions, and recording retention.
//
// It imports only domain. It publishes nothing itself: a caller hands the events it
// returns to the log (cmd wires `custody ingest genesys`).
//
// # Three ways in
//
//   - Near real time: Mapper.Notification maps one notification, as the WebSocket
//     notification channel delivers it ({"topicName", "version", "eventBody",
//     "metadata"}) or as an Amazon EventBridge event ({"detail-type", "detail": {...}}).
//     The topics that give events are listed in Topics (subscribe to them with the
//     literal {id}, as EventBridge's topic filter takes them).
//   - Reconciliation and backfill: Backfill runs, from a persisted watermark, the
//     asynchronous conversation detail jobs (POST
//     /api/v2/analytics/conversations/details/jobs, poll the state until FULFILLED, page
//     the results by cursor; the only analytics source with participant attributes),
//     the audit query (POST /api/v2/audits/query, poll until Succeeded, page by cursor)
//     for recording reads and deletions, and the recording retention query (GET
//     /api/v2/recordings/retention/query, paged by nextUri) for delete dates, looking up
//     each recording's media type in GET /api/v2/conversations/{id}/recordingmetadata
//     (metadata only: the adapter never fetches media, which Genesys would log as a read).
//   - Files: Mapper.ReadFile and Mapper.ScanFile read an export a customer downloaded:
//     JSON Lines or pretty-printed documents, each a notification, an EventBridge event,
//     a detail job results page (or the synchronous query's response), one conversation
//     record, an audit results page or a retention page. Every rejected document is
//     reported with its line, the field and the rule.
//
// # What is mapped to what
//
// "attr X" is the participant attribute named by Mapping.Attributes.X (defaults in
// brackets); the attributes of the customer's participant win over the others'.
//
//	event                    detail job record (backfill)                          notification (real time)
//	interaction.started      conversationStart; channel from the customer's        customer.start: eventTime,
//	                         first session's mediaType (Mapping.Channels);         mediaType, direction,
//	                         direction from originatingDirection;                  divisionId; e-mail as in
//	                         divisionId = divisionIds[0]; e-mail: to = routing      the detail record
//	                         address (addressTo inbound, addressFrom outbound),
//	                         fromMasked = the other address masked
//	                         (m***@example.org), tls = Mapping.EmailTLS
//	interaction.classified   attr Classification [hipaa_phi_class], attr           attributes: eventTime
//	                         InteractionType [hipaa_interaction_type] (else
//	                         DefaultInteractionType, other), attr Part2
//	                         [hipaa_part2]; at the IVR's end, else at
//	                         conversationStart. Without the attribute:
//	                         Mapping.QueueClassification of the first queue,
//	                         at that queue's first segment
//	consent.captured /       attr Consent [hipaa_consent_captured] through         attributes: eventTime,
//	                         ConsentValues (true/yes/captured,                     or attr ConsentTime
//	                         false/no/declined); method = attr ConsentMethod
//	                         [hipaa_consent_method] else DefaultConsentMethod
//	                         (ivr_verbal); time = attr ConsentTime
//	                         [hipaa_consent_ts] else the IVR's end
//	consent.declined
//	agent.assigned           each agent or user participant with a userId:         user.start (userId,
//	                         its first interact segment per queue; authorized      queueId); acd.end with
//	                         = Mapping.Authorization (queue/role table)            answeredUserId
//	interaction.transferred  consecutive different queues of the ACD               (not available)
//	                         participants
//	interaction.ended        conversationEnd; disposition = the customer           customer.end: eventTime,
//	                         session's last disconnectType (lower case)            disconnectType
//	phi.accessed             audit entityType Recording or ScreenRecording,        audit topic: the same
//	                         action Read/View/Download, status not FAILURE:        (userId, eventTime)
//	                         recording_accessed by user.id (else client: +
//	                         client.id), recordingId = entity.id, remoteIp =
//	                         first address of remoteIp, subject =
//	                         context.conversationId, time = eventDate
//	record.purged            audit action Delete/HardDelete/Purge: operatorId      audit topic: the same
//	                         as above (system at level SYSTEM without
//	                         actor), recordCount 1, reason retention_expired
//	                         at level SYSTEM, else ManualPurgeReason
//	                         (error_correction)
//	recording.stored         retention query entry: recordingId, subject =         (not available)
//	                         conversationId, time = creationTime, retention
//	                         = deleteDate - creationTime in whole days (P2190D),
//	                         DefaultRetention (P6Y) without deleteDate; kind
//	                         from recordingmetadata.media via RecordingKinds
//
// Nothing else of a payload reaches an event: no participantName, ani, dnis, address
// (except the routing address and the masked other one), subject, wrap-up note, message
// text or attribute value beyond the mapped enumerations. Topics acd.start, user.end,
// flow.*, acw, wrapup, outbound, contact, voicemail.*, the heartbeat and the data-lake
// availability notice are accepted and give no event; any other topic is rejected with
// ErrUnknownTopic. Media types in Mapping.IgnoredMedia (cobrowse, screenshare, video,
// internalmessage) give no events; a media type in neither Channels nor IgnoredMedia is
// rejected.
//
// Every event passes the contract's validation (domain.Decoder) before it is returned,
// including the minimum-necessary recognizers; a record that would give an invalid event
// is rejected, naming the Genesys field and the contract's rule.
//
// # Deterministic ids
//
// An event's id is a version 8 UUID from the SHA-256 of "genesys", its type, its subject
// and the fact's key (EventID): nothing for interaction.started and interaction.ended;
// the classification, type and part2 for interaction.classified; the method for
// consent; user, queue and authorized for agent.assigned; the audit record's id for
// phi.accessed and record.purged; the recording id for recording.stored. The key holds
// no time that differs between paths, so the real-time event and the reconciled one are
// the same event, and a page re-sent after a restart is dropped by the log as a
// duplicate. The first copy to reach the log is kept: its time is the notification's
// when the real-time path came first (more precise than the detail job's approximations
// for attributes).
//
// # Unexpected fields
//
// Each record is decoded strictly: a duplicate key, invalid UTF-8, a value of the wrong
// JSON type, a missing required field or a value outside the mapped enumerations is
// rejected, naming the field path ("participants[2].sessions[0].mediaType") and the
// rule, never the value. A field that the Genesys model (as the platform SDK generates
// it) does not have is rejected as well, unless MapperConfig.AllowUnknownFields is set:
// Genesys adds fields in new releases, and the default makes someone review a new field
// before data keeps flowing (the backfill stops without moving its watermark, so
// nothing is lost). Nested objects the adapter does not read (flow, metrics,
// evaluations, message, propertyChanges) are not inspected.
//
// # Defaults and configuration
//
// Config (connection and backfill): Region is the Genesys domain (mypurecloud.com,
// usw2.pure.cloud, ...: https://login.<Region> and https://api.<Region>); ClientID and
// ClientSecret (a file or an environment variable, never a value in a file, never
// logged) of an OAuth client with the client-credentials grant; Window 24 h; Concurrency
// 4 requests in flight; PageSize 1000 (detail results), AuditPageSize and
// RetentionPageSize 500; PollInterval 3 s, PollTimeout 30 min; AuditService "Quality";
// AuditDelay 1 h; RetentionEvery 24 h; MaxRetries 5; MaxRetryAfter 180 s;
// RequestTimeout 60 s.
//
// Mapping (LoadMapping reads it from JSON; unknown keys are errors; a map or list given
// replaces its default):
//
//	{
//	  "attributes": {"classification": "hipaa_phi_class", "consent": "hipaa_consent_captured"},
//	  "queueClassification": {"<queueId>": {"interactionType": "prescription_refill",
//	                                        "dataClassification": "protected_health_information"}},
//	  "authorization": {"queueRoles": {"<queueId>": ["claims-phi"], "*": ["supervisor-phi"]},
//	                    "userRoles": {"<userId>": ["claims-phi"]}},
//	  "emailTls": {"claims@payer.example": "TLSv1.2"}
//	}
//
// # What Genesys does not provide, and the customer must configure
//
//   - Classification and consent exist only as participant attributes that the
//     customer's Architect flows set ("Set Participant Data") under the configured names.
//     Analytics keeps only their last value and no time; have the flow also write
//     hipaa_consent_ts, or rely on the attributes notification's eventTime.
//   - `authorized` is not a Genesys concept: the customer exports the queue/role table
//     (Mapping.Authorization). By default nobody is authorized, which the alerts make
//     visible at once.
//   - The TLS of an e-mail is not reported: Mapping.EmailTLS says it per routing address.
//   - Redaction (there is no per-recording redaction API), legal hold (deletion
//     protection is not reported by the retention query) and training (an LMS feed) are
//     not ingested from Genesys.
//   - Recording reads come from the audit service: the organization must have it, the
//     OAuth client needs audits:audit:view, analytics:conversationDetail:view and
//     recording:recording:view (not viewSensitiveData), and AuditService must be the
//     service that owns Recording in GET /api/v2/audits/query/servicemapping. An audit
//     record without context.conversationId cannot be attributed and is rejected.
//   - In HIPAA mode tokens expire after 15 idle minutes: the client signs in again on a
//     401, once per request, and retries it.
//   - Transfers are only reconciled from detail jobs; the notification path has no state.
//
// # Watermark and delivery guarantees
//
// Backfill.Run moves each phase's part of the Watermark (the instant up to which
// everything was emitted, and the job and cursor of the page to fetch next) only after
// Emit returned nil for the page, and saves it through a WatermarkStore (FileWatermark:
// JSON replaced atomically with a synced temporary file and a rename). A restart resumes
// from the saved job and cursor: nothing is lost. A crash between Emit and the save
// emits that page again, with the same ids, and the log drops the duplicates; a job whose
// results expired is submitted again for its window, with the same effect. Detail jobs
// never run past the data lake's dataAvailabilityDate and audits stay AuditDelay behind
// now, so a window is never marked done before its data exists. A detail job includes
// every conversation active in its window, so a conversation spanning two windows is
// seen twice and deduplicated by id.
//
// # Logs
//
// The Logger receives method, route (a path without query), status, attempt, wait,
// Genesys correlation id and counts. No payload value, response body, client secret or
// token is ever logged; errors name fields and rules, and HTTPError carries only the
// Genesys error code.
//
// # Unverified
//
// Built from the Genesys platform SDK's models and published documentation, not against
// a live tenant: which participant receives Architect attributes, whether recording
// audits carry context.conversationId, the audit service owning recordings, the maximum
// detail job page size and interval, and the retention query's threshold semantics
// should be checked on a test organization.
package genesys
