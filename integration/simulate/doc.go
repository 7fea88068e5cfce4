// Package simulate generates deterministic, realistic contact-center traffic for a
// healthcare payer: the events a Genesys Cloud or NICE CXone tenant and a Workday LMS
// would send to custody over a week, with every compliance finding of the contract
// (shared/contract/EVENTS.md) planted in known proportions. It is custody's load
// generator, its demo data and the input of its end-to-end tests.
//
//	err := simulate.Write(f, simulate.Config{Seed: 1, Interactions: 100_000})
//
// Write prints JSON Lines, one event per line in the canonical form of
// domain.Event.MarshalJSON; Generate hands the same events to a callback (for example
// a publisher). Both deliver events in arrival order: the order a platform would send
// them, not the order of their event times.
//
// # Determinism
//
// Everything is drawn from one math/rand/v2 PCG stream seeded from Config.Seed, in a
// fixed order, and no map is ever iterated, so the same Config gives the same events
// in the same order, byte for byte, on every machine; another seed gives other traffic.
// Event ids are UUIDs shaped like version 7: the first 48 bits are the Unix
// milliseconds of the event's time (so ids sort roughly by time, as real v7 ids do), the
// remaining bits come from the seed and a counter through a bijection, so no id repeats
// within a run (except on purpose, see "Arrival order"). Interaction ids are "gc-" or
// "cx-" followed by such a UUID, recording ids "rec-" followed by one.
//
// # Time window
//
// Interactions start between Config.Start and Start+Days (default 2 March 2026, 08:00
// UTC, seven days) following a weekly contact-center profile: the volume of each hour
// of the day (read in UTC as the payer's local time) peaks at 09:00-11:00 and 14:00,
// falls to 2-5 % of the peak at night, and weekends carry 35 % of a weekday. Starts are
// sampled by stratification ((i+u)/N through the inverse of the profile), so they never
// decrease and the sample follows the curve closely even for small N. Follow-up facts
// (reviews, reclassifications, purges) happen minutes to days later; a fact that would
// happen after Start+Days has not happened yet and is not emitted. Every event time
// therefore lies in [Start, Start+Days], and times have millisecond precision.
//
// The generator has no clock. A Start in the past is fine for files, replays and
// tests; events sent to a live ingest are checked there against its clock, and an
// event more than 24 h ahead of it is rejected (EVENTS.md, time), so a window that ends
// in the future cannot be published live in full.
//
// # Staff
//
// Config.Agents front-line agents (agent-0001 ...), one supervisor per twelve agents,
// at least two (supervisor-0001 ...), and two auditors (auditor-0001, auditor-0002).
// Supervisors and auditors use the same agentId field as agents: any user's access is
// a touch (EVENTS.md). A few agents are given scenario roles at random (see
// "Unauthorized access" and "Training"); all of them also take ordinary calls.
//
// # Interactions
//
// Shares are of all interactions unless stated; they are the model's probabilities, so
// a run shows them within sampling noise.
//
//   - Platform: 70 % Genesys Cloud (source genesys-cloud/org-3f1c, ids gc-...), 30 % NICE
//     CXone (nice-cxone/tenant-42, ids cx-...; CXone omits datacontenttype).
//   - Channel: voice 62 %, email 18 %, chat 13 %, message 7 %. Inbound: voice 85 %,
//     email 70 %, chat 97 %, message 60 %; the rest outbound. 90 % of starts name the
//     queue (by interaction type: q-claims, q-pharmacy, ...) and the division
//     (div-commercial 50 %, div-medicare 30 %, div-medicaid 20 %).
//   - E-mail: the routing address of the queue in to (claims@bluepayer.example ...), the
//     member's address masked in fromMasked ("j***@example.org"), tls TLSv1.3 70 %,
//     TLSv1.2 26 %, none 4 % (insecure_email_transport). 30 % carry attachments, 6 % are
//     forwarded to a provider or pharmacy (recipientMasked masked), 25 % carry a written
//     or e-mail consent.
//   - 2 % of voice and chat interactions are abandoned in the queue: ended with
//     disposition "abandoned", never classified, no agent. 1 % of the rest are never
//     classified (not ePHI, EVENTS.md).
//   - Interaction type: claims_inquiry 34 %, prescription_refill 18 %,
//     provider_verification 14 %, billing_dispute 14 %, clinical_correspondence 10 %,
//     other 10 %. The classification depends on the type (provider verifications are
//     mostly internal, "other" mostly public); overall about 69 %
//     protected_health_information, 7 % restricted, 17 % internal, 7 % public, so about
//     three interactions in four are ePHI. 35 % of restricted prescription and clinical
//     interactions are 42 CFR Part 2 records (part2: true).
//   - Reclassification, 10 min to 36 h after the end: 15 % of internal interactions
//     become protected_health_information (so earlier touches become ePHI touches
//     retroactively), 2 % of protected_health_information ones become restricted.
//   - Failover re-tags: 1.5 % of classifications (and 0.3 % of recording.stored) are sent
//     a second time with the same time and data under a new id.
//
// # Consent (voice)
//
// The IVR captures consent 8-40 s after the start: 85 % captured (inbound ivr_verbal
// 55 %, ivr_menu 45 %; outbound written 60 %, ivr_verbal 40 %); 6 % declined, of which
// 35 % are recorded anyway (recorded_after_decline) and half are handled without
// opening the record; 5 % never captured (missing once ended, and
// accessed_before_consent when the agent opens the record); 4 % captured by the agent
// 40 s to 3 min after opening the record (accessed_before_consent). A declined call with
// no capture is also missing once ended, as the contract defines it.
//
// # Agents and accesses
//
// One agent is assigned 45 s-4 min after the start (chat 45 s-2 min, e-mail 2 min-2 h)
// and opens the record ("handled") a few seconds later; e-mail agents also view the
// body, attachments (40 % of those downloaded) and sometimes forward. remoteIp
// (private IPv4 or documentation IPv6) is on about 20 % of accesses. 7 % of non-e-mail
// interactions are transferred to another queue (30 % of those to another division)
// and taken by a second agent.
//
// Background unauthorized assignments (authorized: false) happen with probability
// p = min(2 %, 0.2 x Agents x Days / Interactions), about one per agent every five
// days whatever the volume (three times that for the second agent of a transfer, at
// most 6 %); 40 % of them are re-authorized 2-15 min later by a second agent.assigned
// with authorized: true. After the interaction, ePHI interactions with recordings are
// reviewed: by a supervisor in 10 % (recording_accessed or transcript_viewed, body and
// attachments of e-mails), preceded by a QA assignment except in a share tuned to about
// 0.3 unassigned reviews per supervisor and day (at most 15 %); by an auditor in 2 %
// (also attachment_downloaded and forwarded to compliance), unassigned in a share
// tuned to about 0.4 per auditor and day (at most 30 %); by the agent themselves in 4 %.
// Every action of the contract appears; recording_accessed and transcript_viewed name
// a recordingId of the interaction.
//
// # Unauthorized access
//
// Three roles exercise the sliding 24-hour counter with exact numbers. Their touches
// land on the most recent ePHI interaction that started before the touch and that the
// agent was neither assigned to nor has touched (a planned touch with no such
// interaction is dropped, which only happens with very sparse traffic):
//
//   - rogue agents (one per 25 agents, at least one): on every other day, starting with
//     the first, one of them touches 4 to 6 such interactions within 20 h, some as
//     agent.assigned with authorized: false, most as body_viewed or attachment_viewed.
//     The counter crosses the threshold; an unauthorized_access_threshold alert is due.
//   - an "exactly three" agent: on the other days, three unauthorized ePHI interactions
//     within 12 h, episodes at least a day and a half apart. The count peaks at 3: no
//     alert.
//   - a "boundary" agent: every third day (when a next day exists), touches at t, t+90
//     min, t+3 h and exactly t+24 h. The window (t'-24h, t'] never holds more than three:
//     no alert, and the case tests the half-open window.
//
// Each day, at 09:00-17:00 into the day, one general agent is also assigned an ePHI
// interaction with authorized: false and re-authorized 2-15 min later, so that
// re-authorization appears at any volume. The "exactly three" and "boundary" agents
// are never given a background unauthorized assignment. With default
// settings (2,000 interactions or more) the rogue agents are the only ones to cross.
//
// # Recordings, redaction, retention
//
// Recordings are stored 5-90 s after the end: voice audio (95 %, none after a decline
// unless recorded anyway), screen 30 %, transcript 50 %; e-mail the message (kind email)
// and its attachments; chat and message a transcript. Retention by kind: audio P7Y or
// P6Y, screen P1Y6M or P90D, email P6Y or P7Y, transcript P90D, P6Y or P30D, attachment
// P6Y or P1Y; 4 % instead get a short P1D, P2D or P3D (scratch and calibration copies)
// so that purges due within the window occur. 1.2 % are on legal hold.
//
// 45 % of ePHI recordings (not screen) get a redaction.requested 30 s-5 min after the
// store: 78 % complete within the 4 h buffer, 8 % complete late (4 h 10 min-20 h), 5 %
// fail, 9 % stay pending (overdue four hours later).
//
// Purges (record.purged, recordCount 1-3, by ops-retention-job for retention_expired,
// else ops-records-mgmt, ops-privacy-office or ops-legal-hold-desk): 75 % of short
// retentions are purged on time (1 min-6 h after due), the rest become overdue; 30 % of
// held recordings are purged anyway, 2 h-3 days after the store (purged_under_hold);
// 0.4 % of the other recordings are purged early with reason retention_expired
// (purged_early), 0.8 % for patient_request, legal_order or error_correction (not a
// violation). 10 % of purges are followed by a second run on the same recording.
//
// # Training
//
// The LMS feed (source lms/workday, subject the agent id) syncs a hipaa_annual
// completion for every member of staff at Start, expiring 30-330 days after the
// window. One agent per 25 (at least one) lets it lapse inside the window, with a
// training.expired at the expiry; the even ones renew 18-26 h later, the odd ones
// never. The first lapse agent's expiry is at 05:00-05:50 into day Days/3, and that
// agent is assigned (authorized: true) the first interaction starting in the three hours
// before it, held open past the expiry: training_expired_open_interactions. Until the
// renewal every further authorized: true assignment of a lapsed agent is an
// authorization_discrepancy. Each day one agent also completes another course
// (part2_handling or privacy_refresher), which the training rule ignores.
//
// # Arrival order
//
// Each event is delivered at its event time, except: 3 % are delayed 1 s-3 min
// (jitter), 0.8 % are delayed 10 min-6 h (late), and 0.6 % are delivered a second time,
// the exact same event with the same id and bytes, 30 s-8 h after their time
// (re-sends). An event delivered d after its time is at most d behind the latest event
// time delivered before it, so no event arrives 8 h or more behind: always within the
// contract's default allowed lateness of 24 h.
//
// # Memory
//
// Interactions are generated one at a time in start order; the events of each wait in
// a min-heap keyed by arrival time, and an event is emitted as soon as no interaction
// still to come can produce an earlier one (every later interaction starts at or after
// the current start). The heap holds the events of the interactions in flight and the
// follow-ups still to come (at most a few days ahead), so memory is proportional to
// the traffic rate times that horizon, not to Interactions: one million interactions
// over the default week (about 8.7 million events) run in about 100 MB.
//
// # Scaling
//
// The shares above are per interaction, so most findings grow with the volume. The
// rates of background unauthorized assignments and of unassigned supervisor and
// auditor reviews are instead tuned per person and day, and the scenario roles are
// planned per day, so the number of threshold alerts stays about the same from a
// thousand to a million interactions. At least a few hundred interactions are needed
// for every scenario to appear; 2,000 over the default week show each of them.
package simulate
