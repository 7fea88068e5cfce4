// Package siem delivers custody's alerts, and optionally every compliance event, report
// execution and signed checkpoint of the log, to SIEM and GRC systems: a generic HTTPS
// webhook, Splunk's HTTP Event Collector, OCSF JSON over HTTPS, and CEF over syslog/TLS.
//
// It is an adapter at the edge (docs/ARCHITECTURE.md, step 16 and after): it reads the
// log through durable JetStream consumers on a Watermill router, imports domain only,
// and never writes to custody's own streams. The only stream it creates is its
// dead-letter stream.
//
// # Wiring
//
// A caller needs a jetstream.JetStream on custody's log, a prometheus.Registerer and a
// *slog.Logger:
//
//	fc, err := siem.LoadConfig(path, nil) // nil: os.LookupEnv
//	cfg, err := fc.RouterConfig(js, nil)  // reads TLS files and secrets, builds the sinks
//	defer siem.CloseRoutes(cfg.Routes)
//	cfg.Logger, cfg.Registerer = logger, registry
//	r, err := siem.New(cfg)
//	err = r.Run(ctx) // until ctx is cancelled; deliveries in flight finish first
//
// Sinks can also be built directly (NewWebhook, NewHEC, NewOCSF, NewCEFSyslog) and
// passed in Config.Routes; anything with Name and Deliver is a Sink.
//
// For every route the router adds one Watermill handler per stream it reads, each with
// its own durable pull consumer: "siem-<sink>" on CUSTODY_ALERTS (filter
// custody.alert.>), and with Route.Events "siem-<sink>-events" on CUSTODY_EVENTS
// (custody.event.>), with Route.Reports "siem-<sink>-reports" on CUSTODY_REPORTS
// (custody.report.>), with Route.Checkpoints "siem-<sink>-checkpoints" on
// CUSTODY_INTEGRITY (custody.integrity.checkpoint). A sink's consumers are independent
// of other sinks': a receiver that is down delays only its own deliveries. Alert and
// checkpoint consumers start at the beginning of the stream (an alert raised before the
// sink was configured still needs a person; a copy of the checkpoints is worth having
// whole); events and reports consumers start at the end unless Route.Backfill is set.
// Every stream a route reads must exist: custody creates its four streams when it starts
// (before the integrity projector has signed anything), and Run fails, naming the
// stream (jetstream.ErrStreamNotFound), on a log where one is missing.
//
// # Checkpoints
//
// Signed checkpoints of the log's Merkle tree (docs/INTEGRITY.md) reach the receivers
// as checkpoint.signed events (domain.CheckpointSigned): origin, treeSize, rootHash and
// the signed note, exactly as the checkpoint file holds it, so that the SIEM keeps an
// independent copy that an auditor verifies with the log's public key alone. A message
// on custody.integrity.checkpoint that is a bare signed note (the checkpoint file's
// bytes, as the integrity projector stores them) is delivered as its checkpoint.signed
// event (domain.CheckpointEvent): id domain.CheckpointEventID(origin, size, root),
// source custody/integrity, subject the tree size, time when the stream stored it. The
// id depends on the checkpoint only, so a checkpoint published again, or delivered again,
// is a duplicate for the receiver. The router does not check signatures (it holds no
// keys); a message that is neither a valid event nor a valid note is dead-lettered.
//
// # Configuration file
//
// JSON, unknown keys refused (testdata/siem.example.json is a complete example):
//
//	{
//	  "maxRetries": 3,            // optional; 0 = no retry
//	  "retryInterval": "1s",      // optional
//	  "redeliveryDelay": "1m",    // optional
//	  "deadLetterPrefix": "custody.deadletter.siem.",   // optional
//	  "deadLetterStream": "CUSTODY_SIEM_DEADLETTER",    // optional
//	  "sinks": [
//	    {"name": "grc", "kind": "webhook",
//	     "url": "https://grc.example.org/v1/custody/events",
//	     "tls": {"caFile": "${SIEM_TLS_DIR}/grc-ca.pem", "certFile": "...", "keyFile": "...",
//	             "pins": ["<base64 SHA-256 of the receiver's SubjectPublicKeyInfo>"]},
//	     "signingKey": {"file": "/run/secrets/grc-hmac-key"},
//	     "events": true, "checkpoints": true},
//	    {"name": "splunk", "kind": "hec", "url": "https://splunk.example.org:8088/services/collector/event",
//	     "tls": {...}, "token": {"env": "SPLUNK_HEC_TOKEN"},
//	     "hec": {"host": "...", "source": "...", "sourcetype": "...", "index": "compliance"}},
//	    {"name": "lake", "kind": "ocsf", "url": "https://ocsf.example.org/ingest", "tls": {...}},
//	    {"name": "arcsight", "kind": "cef-syslog", "address": "siem.example.org:6514",
//	     "tls": {...}, "facility": 13, "hostname": "custody-1", "appName": "custody"}
//	  ]
//	}
//
// Per sink, with what is required:
//
//	key         kinds            required
//	name        all              yes: 1-32 of a-z 0-9 _ -; names metrics, consumers, dead letters
//	kind        all              yes: webhook | hec | ocsf | cef-syslog
//	url         webhook hec ocsf yes: https only
//	address     cef-syslog       yes: host:port (6514 is syslog over TLS)
//	tls         all              yes: certFile and keyFile; caFile, serverName, pins, minVersion optional
//	signingKey  webhook hec ocsf webhook yes, others optional (the signature header is sent when set)
//	token       hec              yes
//	hec         hec              no: host, source, sourcetype, index
//	timeout     all              no: one attempt, default "10s"
//	events      all              no: also every compliance event
//	reports     all              no: also every report.executed
//	checkpoints all              no: also every signed checkpoint (checkpoint.signed)
//	backfill    all              no: events/reports consumers start at the stream's beginning
//
// Every string except secrets may use ${NAME} to read an environment variable; an unset
// variable is an error. Secrets (signingKey, token) are never values in the file: they
// are {"file": "/run/secrets/x"} (a trailing newline is removed) or {"env": "NAME"}.
// They are read once when the sink is built, held in a type that prints as
// "[redacted]", and never appear in logs or errors: an error names the file or the
// variable only. The client private key is likewise only a file path.
//
// # Transport
//
// Every sink uses TLS 1.2 or later (tls.minVersion "1.3" to require 1.3) with a client
// certificate (mutual TLS): the configured certificate is always presented. The receiver
// is verified against caFile (default: the system roots) and its name (serverName,
// default the URL's or address's host). With pins, the receiver's leaf certificate must
// in addition have a SubjectPublicKeyInfo whose SHA-256, base64-encoded (SPKIPin), is one
// of them; list two during a key rotation. A refused or failed handshake is a retryable
// failure. HTTP redirects are never followed.
//
// HTTP requests are POSTs of application/json with:
//
//	Idempotency-Key: <event id>      the same on every attempt and redelivery
//	X-Compliance-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, t + "." + body)>
//	Authorization: Splunk <token>    hec only
//
// The body of an event is the same bytes on every attempt; the signature is made afresh
// at each attempt. A receiver verifies it with Verify over the raw body as received,
// before parsing, within ±5 minutes (DefaultSkew) of its clock, and drops an event id it
// has already stored: deliveries are at least once, so the same event can arrive again
// (a lost response, a redelivery after a restart). Sign and Verify are exported for the
// ingest side, which uses the same scheme.
//
// # Formats
//
// Webhook (WebhookPayload): one JSON object per event, every key always present, null
// when it does not apply:
//
//	eventId, type, source, subject, timestamp (event time, RFC 3339 UTC),
//	rule               alerts: the rule
//	interactionId      the interaction when there is exactly one
//	interactionIds     all interactions of the event or alert ([] for agent, report and checkpoint events)
//	agentId            the agent of an assignment, access, training event or alert
//	consent            captured | declined (consent events); violation | declined (consent alerts)
//	authorization      authorized | unauthorized (agent.assigned); unauthorized (threshold
//	                   alert); training_not_current (authorization_discrepancy alert)
//	recordingId        the recording concerned
//	recordingStatus    stored | redaction_pending | redaction_complete | redaction_failed |
//	                   purged (events); overdue | purged_early | purged_under_hold |
//	                   redaction_overdue | redaction_failed | recorded_after_decline (alerts)
//	reportExecutionId  the event id of a report.executed
//	treeSize           checkpoints: the number of events the checkpoint covers
//	rootHash           checkpoints: the tree's root, standard base64
//	origin             checkpoints: the log's name
//	note               checkpoints: the complete signed note, to verify with the public key
//	data               the event's data object as stored
//
// Splunk HEC (HECPayload): an event for /services/collector/event:
// {"time": <epoch seconds with milliseconds>, "host", "source" (default the CloudEvent
// source), "sourcetype" (default custody:alert, custody:event, custody:report or
// custody:checkpoint),
// "index" (optional), "event": <the CloudEvent as stored>}.
//
// OCSF 1.3.0 (OCSFPayload): an alert.raised is a Detection Finding (class_uid 2004,
// category 2, activity 1 Create, type_uid 200401, status New) with finding_info.uid the
// alert id, title, types [rule], created_time (raised), first_seen_time (triggered),
// analytic {type Rule, uid and name the rule}, evidences[].actor.user.uid the agent,
// resources the interactions and recording, severity by rule. A phi.accessed is API
// Activity (class_uid 6003, category 6) Read (activity 2, type_uid 600302; forwarded is
// 99 Other), actor.user.uid the user, api.operation the action, src_endpoint.ip the
// remote address; an agent.assigned is API Activity 99 Other with
// actor.authorizations[].decision Authorized or Unauthorized; a report.executed is API
// Activity Read with api.operation "report.<name>"; a checkpoint.signed is API Activity
// Create (activity 1, type_uid 600301), actor.user {uid "custody", type System},
// api.operation "checkpoint.sign", resources [the origin, type log], metadata.log_name
// CUSTODY_INTEGRITY, unmapped {treeSize, rootHash, origin, note}: custody's own
// operation on its log, like a report run, rather than a finding, which would ask for a
// person (Event Log Activity numbers its activities differently across schema
// versions). Times are epoch milliseconds;
// metadata carries version, product {name, vendor_name, version} and uid (the event id).
// Other event types are not sent by the OCSF sink (ErrNotForwarded; counted as skipped).
//
// CEF over syslog (CEFRecord, SyslogMessage): one RFC 5424 message per event,
//
//	<PRI>1 <event time, UTC, µs> <hostname> <appName> - <event type> - CEF:0|custody|custody|<version>|<rule or type>|<title>|<0-10>|<extension>
//
// framed by octet counting ("<length> <message>", RFC 5425) on a TLS connection that is
// kept open and made again after any failure. PRI is facility*8 + a severity derived
// from the rule (alerts: 2-4; events: 6). The extension has rt, externalId (event id),
// cat, start (triggered), suser, act, outcome, src, cs1-cs6 with labels
// (interactionIds, recordingId, consent, recordingStatus, source, reportExecutionId) and
// cn1 (count). A checkpoint.signed has signature id checkpoint.signed, severity 1, and
// adds cn2 (treeSize), flexString1 (rootHash), flexString2 (origin) with labels, and msg,
// the signed note, whose line breaks are escaped. Header fields escape \ and |;
// extension values escape \, = and line breaks (\n, \r); ParseCEF reads records back,
// the note included, byte for byte. Syslog has no acknowledgement: a message counts
// as delivered when written to a connection the receiver had not closed; a new
// connection is watched for SettleTime before its first write so that a receiver
// refusing the client certificate (reported after the handshake in TLS 1.3) is noticed.
//
// Alert severities (OCSF severity_id / CEF severity): purged_under_hold Critical/10;
// unauthorized_access_threshold, recorded_after_decline, purged_early,
// redaction_failed, insecure_email_transport High/8; the other rules Medium/5;
// compliance events and checkpoints Informational/1.
//
// # Delivery, retries and dead letters
//
// Each consumer hands the router one event at a time and fetches the next only after
// the previous one is settled. For each event:
//
//  1. The sink makes an attempt. 2xx is delivered; 429, 5xx, a network, TLS or timeout
//     failure is retryable; any other status (4xx, also 1xx and 3xx) is permanent.
//  2. A retryable failure is retried MaxRetries times (default 3) RetryInterval apart
//     (default 1 s, constant: Watermill's Retry middleware with multiplier 1): four
//     attempts in all, with the same body and Idempotency-Key.
//  3. If every attempt fails, the event is not acknowledged: it is Nacked with a delay
//     (RedeliveryDelay, default 1 min), stays in the stream and is redelivered, forever
//     (MaxDeliver is unlimited); custody_siem_undelivered_total counts the runs and the
//     custody_siem_undelivered gauge the events waiting. Nothing is dropped.
//  4. A permanent failure is not retried: the event, as read, is published to
//     "<DeadLetterPrefix><sink>" (default custody.deadletter.siem.<sink>, stored in the
//     CUSTODY_SIEM_DEADLETTER stream, created on first run, file storage, no limits) with
//     the headers Custody-Deadletter-Reason (e.g. "http 400 Bad Request"),
//     Custody-Deadletter-Sink, Custody-Event-Id, Custody-Original-Stream,
//     Custody-Original-Subject and Custody-Original-Sequence, and Nats-Msg-Id
//     "<sink>:<event id>"; then it is acknowledged. If that publish fails, the event is
//     treated as undelivered (step 3). The reason never holds a response body.
//  5. An event the sink's format does not map (OCSF) is acknowledged and counted as
//     skipped.
//
// Note that a receiver answering 401 or 403 (a revoked token, a rotated client CA)
// dead-letters every event until it is fixed; the dead-letter stream keeps them for
// replay. Retry-After headers are not honoured: the interval is fixed.
//
// Events are delivered in stream order per consumer except after a failure: a
// redelivered event arrives after the ones that followed it. Receivers order by the
// event's time, not by arrival.
//
// # Metrics and logs
//
// Counters, labelled by sink only: custody_siem_delivered_total,
// custody_siem_retried_total (attempts repeated), custody_siem_undelivered_total
// (events whose attempts all failed, left in the stream), custody_siem_deadlettered_total,
// custody_siem_skipped_total; gauge custody_siem_undelivered (events waiting for
// redelivery since this process started). No label carries an event, agent,
// interaction or recording id.
//
// Logs (log/slog) carry sink names, event ids, attempt numbers, HTTP status codes and
// short reasons; never a payload, a response body, an agent, interaction or recording
// id, a URL query or a secret. Watermill's own logs are passed to the same logger (its
// Info as Debug) and carry the same event ids.
package siem
