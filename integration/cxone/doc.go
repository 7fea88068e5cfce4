// Package cxone ingests NICE CXone contacts into custody: it reads completed contacts
// and their custom data from the CXone Reporting API, pinned to version v34.0, and
// turns them into contract events (shared/contract/EVENTS.md) that it hands to a
// caller-supplied Emit, moving a persisted watermark only after Emit accepted them.
// ReadFile does the same for an export on disk, so a customer can backfill from a
// download. The package imports domain only; the command wires Emit to the log.
//
//	a, err := cxone.New(cxone.Config{
//		ClientID:        "…", ClientSecret:    cxone.Secret{File: "/run/secrets/cxone-client"},
//		AccessKeyID:     "…", AccessKeySecret: cxone.Secret{Env: "CXONE_ACCESS_KEY_SECRET"},
//		Mapping:         mapping,                      // cxone.LoadMapping(path)
//		Watermark:       cxone.NewFileWatermark(path), // survives restarts
//		Emit:            publish,                      // func(ctx, []domain.Event) error
//	})
//	_, err = a.Backfill(ctx, from, to) // history, window by window
//	err = a.Run(ctx)                   // then incremental passes until ctx ends
//
// # Authentication and discovery
//
// CXone has no client-credentials grant. A back-end application authenticates with
// the access key of a CXone user (Profile > Access Keys), whose permissions bound what
// the adapter can read, and with the client id and secret NICE issued for the
// application:
//
//  1. GET {Issuer}/.well-known/openid-configuration gives token_endpoint (Issuer
//     defaults to https://cxone.niceincontact.com; Config.TokenURL skips this step).
//  2. POST token_endpoint, form-encoded, with HTTP Basic client_id:client_secret:
//     grant_type=password&username=<access key id>&password=<access key secret>. The
//     answer holds access_token, expires_in, refresh_token and an id_token whose
//     tenantId claim names the tenant.
//  3. GET {Issuer}/.well-known/cxone-configuration?tenantId=… gives api_endpoint, the
//     tenant's API host (Config.APIBaseURL skips this step).
//
// The token is cached and renewed a minute before expires_in runs out (half-way for a
// lifetime under two minutes), first with grant_type=refresh_token, then, if that is
// refused, with the access key. A 401 from the API drops the token, authenticates
// again with the access key and sends the request once more; a second 401 is ErrAuth.
// The id_token is read only for tenantId; it came straight from the token endpoint over
// TLS, which vouches for it (OpenID Connect Core 3.1.3.7).
//
// Secrets are never values in a configuration: a Secret names a file or an environment
// variable, errors name the file or the variable, and no log line carries a secret or a
// token.
//
// # What is read
//
// Field names change with the version in the path (older versions say contactStart,
// fromAddr, ACWSeconds …), so the adapter speaks one version, APIVersion (v34.0), and
// rejects payloads with the older names.
//
//	GET {api}/inContactAPI/services/v34.0/contacts/completed
//	    ?startDate=…&endDate=…   (Backfill: one window)   or   ?updatedSince=… (Poll)
//	    &top=PageSize&skip=N&orderBy=contactId asc
//	    &fields=contactId,masterContactId,contactStartDate,mediaTypeName,isOutbound,
//	            fromAddress,toAddress,skillId,agentId,preQueueSeconds,inQueueSeconds,
//	            totalDurationSeconds,abandoned,primaryDispositionId
//	→ {"_links": {"self", "next", "previous"}, "businessUnitId", "lastPollTime",
//	   "totalRecords", "completedContacts": [...]}   (204: none)
//
//	GET {api}/inContactAPI/services/v34.0/contacts/{contactId}/custom-data
//	→ {"contactCustomData": [{"name", "value"}]}   (204: none)
//
// The fields parameter asks for what the mapping reads and nothing else (no agent
// names, no disposition notes). fromAddress and toAddress are read for Email contacts
// only, to mask the member's address; for other media they are dropped unread.
// Paging is top and skip: a window is read until a page comes back with fewer than
// top contacts, empty, or with _links.next null. Custom data is read per contact,
// Config.Concurrency requests at a time (default 4).
//
// # Mapping
//
// A contact's interaction is its master contact: every contact of a transfer chain has
// the subject "cx-"+masterContactId. The source is "nice-cxone/bu-"+businessUnitId.
// Queue ids are "cx-skill-"+skillId; agent ids are the Mapping.Agents entry for the
// agentId (for example the employee id the LMS reports training for), else
// "cx-agent-"+agentId. Times: start = contactStartDate, routed = start +
// preQueueSeconds (the IVR is over), answered = routed + inQueueSeconds, end = start +
// totalDurationSeconds; routed and answered never lie after end.
//
//	event                   from                                          time
//	interaction.started     the master contact (contactId == masterContactId) start
//	interaction.classified  custom data hipaa_phi_class, else the skill's     routed
//	                        rule (Mapping.Skills), else
//	                        Mapping.DefaultClassification
//	consent.captured        custom data hipaa_consent_captured = "true"       hipaa_consent_ts,
//	consent.declined        custom data hipaa_consent_captured = "false"      else routed
//	agent.assigned          agentId ≠ 0 and not abandoned                     answered
//	interaction.ended       the master contact                                end
//
// The data of each:
//
//   - interaction.started: channel from mediaTypeName (Call voice, Email email, Chat
//     chat, SMS message; Mapping.Channels adds or overrides, "skip" leaves a media
//     type out, an unlisted one is an error); direction from isOutbound; queueId;
//     for e-mail {to: the payer's routing address (toAddress inbound, fromAddress
//     outbound), fromMasked: the member's address masked (j***@example.org), tls:
//     custom data hipaa_email_tls, else Mapping.DefaultEmailTLS}.
//   - interaction.classified: dataClassification; interactionType from
//     hipaa_interaction_type, else the skill's, else "other"; part2 from hipaa_part2,
//     else the skill's.
//   - consent.*: method from hipaa_consent_method, else "ivr_verbal".
//   - agent.assigned: agentId; queueId; authorized from hipaa_agent_authorized, else
//     the skill's rule, else Mapping.DefaultAuthorized (false).
//   - interaction.ended: disposition "abandoned", else "cxone-disposition-" +
//     primaryDispositionId when it is not 0, else none.
//
// Custom data values are strings: booleans are exactly "true" or "false", enumerations
// exactly the contract's words, times RFC 3339 with an offset. Only the fields the
// mapping names are read; every other custom data field (member ids, anything a script
// stores) is dropped unread. A field with the mapping's prefix ("hipaa_") that the
// mapping does not name is an error, so a misspelled field in a Studio script fails
// loudly instead of losing consent. A contact nothing classifies gets no
// interaction.classified and is therefore not ePHI (EVENTS.md); Stats.Unclassified
// counts them and the window's log line is a warning when there are any.
//
// Names, phone numbers, e-mail addresses (other than the payer's routing address and
// the masked member address), disposition notes and custom data never reach an event.
// Every event is encoded and parsed back with domain.Parse before Emit sees it, so the
// contract's checks (raw identifiers, masked addresses, identifier characters) apply
// here already.
//
// # Event ids and deduplication
//
// An event id is a version 8 UUID from the SHA-256 of "cxone", the business unit, the
// contactId, the kind of fact, its time and the facts that distinguish it (the
// classification, the consent decision and method, the agent and the authorized flag),
// as domain.DeterministicID derives alert ids. The same contact gives the same ids from
// the API, from a file, after a restart or a second run, so whatever is sent twice is
// dropped by the log as a duplicate. A fact that changed (custom data edited later, a
// new mapping) gets a new id at the same time: for classification the more
// restrictive class wins the tie, for authorization false wins (EVENTS.md, "Rules").
//
// # Defaults and the mapping file
//
// LoadMapping reads a JSON file; keys match exactly, unknown or repeated keys are
// errors, absent keys keep their defaults, and channels merge over the default
// channels. The defaults (DefaultMapping) spelled out, with the optional keys:
//
//	{
//	  "customData": {
//	    "prefix": "hipaa_",                      "consent": "hipaa_consent_captured",
//	    "consentTime": "hipaa_consent_ts",       "consentMethod": "hipaa_consent_method",
//	    "classification": "hipaa_phi_class",     "interactionType": "hipaa_interaction_type",
//	    "part2": "hipaa_part2",                  "authorized": "hipaa_agent_authorized",
//	    "emailTls": "hipaa_email_tls"
//	  },
//	  "defaultConsentMethod": "ivr_verbal",      "defaultInteractionType": "other",
//	  "defaultClassification": "",               "defaultAuthorized": false,
//	  "defaultEmailTls": "",
//	  "channels": {"Call": "voice", "Email": "email", "Chat": "chat", "SMS": "message"},
//	  "skills": {"1234": {"interactionType": "claims_inquiry",
//	             "dataClassification": "protected_health_information", "authorized": true}},
//	  "agents": {"99999": "agent-0001"},
//	  "agentPrefix": "cx-agent-"
//	}
//
// Config's other defaults: PageSize 100, Concurrency 4, Window 24 h, OrderBy
// "contactId asc", PollInterval 5 min, PollLookback 24 h, MaxRetries 5, MaxRetryAfter
// 180 s, RetryBackoff 1 s (doubling, at most 30 s), Timeout 30 s per request.
//
// # Guarantees
//
//   - Watermark. Backfill reads [from, to) in windows; after each page that Emit
//     accepted it saves the window, the contacts emitted so far (skip) and the
//     window's totalRecords; after a window, the next window's start. A restart
//     resumes at that skip if the window still has the same totalRecords, and
//     otherwise reads the window again from its start: re-sent events deduplicate,
//     and no contact is lost to rows moving between pages. Poll saves the first
//     page's lastPollTime as the next updatedSince only after its last page was
//     emitted; an interrupted pass runs again whole. FileWatermark writes a
//     temporary file, syncs it, renames it over the old one and syncs the directory.
//   - Emit. Events are emitted page by page, in page order; a page's events are
//     emitted only when every contact of the page and its custom data passed every
//     check, and the watermark never passes a page Emit did not accept.
//   - Retries. 429 waits Retry-After (seconds or an HTTP date) up to MaxRetryAfter
//     (a longer one is ErrRateLimited; 180 s is the limit the Genesys SDK uses);
//     5xx other than 501 and network errors back off; at most MaxRetries retries, then
//     ErrRateLimited or ErrUnavailable. 401 authenticates once more (above). Other
//     statuses are a *StatusError and are not retried.
//   - Strict payloads. A field the adapter reads must have its documented JSON type and
//     be present when required (null is absent); a field API v34.0 does not define is
//     an error unless Config.AllowUnknownFields; a field name of an older version is
//     always an error. A *PayloadError lists every problem of the page or line at
//     once, each naming the field by its JSON path and the rule, never the value.
//   - No ePHI in logs. Log lines carry operation names, HTTP statuses, counts, window
//     bounds and skips, never a URL (a custom-data URL holds a contact id), a contact,
//     agent or tenant id, an address, custom data, a token or a secret; errors do the
//     same, so a caller may log them.
//
// # Files
//
// ReadFile reads JSON Lines of the API's own answers: completed-contacts pages, bulk
// custom-data pages (GET …/contacts/custom-data, items {contactId, name, value}) and
// per-contact custom data ({"contactId": …, "contactCustomData": [...]}), in any order.
// The checks are those of the API path; problems are reported as "line N: field: rule".
// The events equal, byte for byte, those a Backfill of the same contacts emits.
//
// # Timing
//
// Completed contacts appear only after the contact ended, so their events reach
// custody minutes after the facts (Poll every PollInterval). A backfill of history
// into a log that already holds live events is late by more than the allowed lateness
// (EVENTS.md, "Arrival order"): the log keeps it and the access audit shows it, the
// other views leave it out. Backfill before live ingest starts, oldest first, or with
// a larger lateness (which needs a view rebuild).
//
// # What CXone cannot provide
//
// The published CXone APIs this package uses know nothing of HIPAA; these facts must
// come from elsewhere, and the customer must add them:
//
//   - Recording access (phi.accessed). No public CXone API audits who played back or
//     downloaded a recording, or who opened a contact; the only audit-history
//     endpoints cover configuration objects. The adapter therefore emits no
//     phi.accessed, and it never calls media-playback, which serves media and would
//     itself be an access. The customer must send phi.accessed from the system that
//     serves recordings and transcripts to people (the recording or quality platform's
//     own audit export, or the agent desktop or a Studio REST action posting
//     CloudEvents to custody's signed webhook, POST /v1/events on custody serve). Without it the consent rule's
//     accessed_before_consent and the unauthorized-access counter see only
//     agent.assigned touches.
//   - Recordings, redaction and purges (recording.stored, redaction.*, record.purged).
//     Not in the completed-contacts or custom-data APIs. The Data Extraction API's
//     "Recording interaction metadata" and get-recording-status exist, but their
//     fields were not verified; mask and unmask suppress live recording, they are
//     not post-hoc redaction; privacy erasure answers only a requestId. The customer's
//     retention and redaction workflow must report these events.
//   - Consent and classification. CXone has no such concepts: a Studio script must
//     write the custom data fields above (or classification comes from the skill
//     table). Custom data has no timestamp, so without hipaa_consent_ts the consent
//     time is the end of the pre-queue phase, an approximation.
//   - Authorization. CXone has no "authorized" flag for an agent on a contact: the
//     Studio script's check (role group, schedule, training) must set
//     hipaa_agent_authorized, or Mapping.Skills must say which skills are assigned only
//     to authorized agents. Otherwise every assignment is authorized: false (fail
//     closed), and every agent who handles four ePHI contacts within 24 hours
//     raises an unauthorized-access alert.
//   - E-mail transport. CXone does not report the TLS version of an e-mail: the
//     script must set hipaa_email_tls, or defaultEmailTls must be configured;
//     otherwise an Email contact is rejected.
//   - Transfers and exact times. interaction.transferred is not emitted (the
//     contact-hierarchy API was not used); agent.assigned's time is derived from
//     queue durations, not from the state-history API.
//   - Real time. Nothing in the published API pushes events; completed contacts are
//     polled.
//
// # Not verified against a live tenant
//
// The request and answer shapes come from the published OpenAPI schema and SDK
// models; the tests run against a local server speaking them. Unverified: the
// maximum top and date range of contacts/completed and its rate limits; which date
// startDate and endDate filter on and whether endDate is exclusive (a contact in two
// windows is emitted twice and deduplicated); the orderBy syntax; that totalRecords
// counts the whole query; lastPollTime as the updatedSince of the next pass; that the
// fields parameter is honoured (if it is not, the full v34.0 record arrives and is
// accepted; a field outside the published schema is an error unless
// AllowUnknownFields); the capitalization of "inContactAPI"; how a Studio
// script sets custom data.
package cxone
