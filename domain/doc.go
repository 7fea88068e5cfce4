// Package domain is custody's event contract: the CloudEvents envelope, the fourteen event
// types a contact-center platform, an LMS or a user may write, the three types custody
// emits itself (alert.raised, report.executed, checkpoint.signed), and the rules that
// keep ePHI out of the log.
//
// # Decoding
//
// Decoder.Decode turns one JSON object into an Event, or into a *ValidationError that
// lists every problem of that event at once, each a *FieldError naming the field by its
// JSON path ("data.email.tls") and the rule it breaks. Both match ErrInvalid with
// errors.Is. The decoder is strict, exactly as shared/contract/EVENTS.md says:
//
//   - keys are case-sensitive; a key given twice, invalid UTF-8 or a value of the wrong
//     JSON type is rejected; JSON null is the same as an absent member;
//   - unknown members inside data are rejected; top-level members beyond the CloudEvents
//     attributes are extensions, allowed when named by 1-20 characters of a-z0-9 and
//     holding a string, number or boolean; data_base64 is never accepted;
//   - every string must be non-empty; identifiers are 1-128 characters of A-Z a-z 0-9 _ - :;
//   - id is a canonical UUID (version 1-8, RFC variant) and is stored in lower case, so
//     the same UUID written in another hex case is the same event;
//   - time is RFC 3339 with an explicit offset, at most nine fraction digits, from the
//     year 2000 and no more than 24 h ahead of the receiving clock (Decoder.Now), and is
//     normalized to UTC.
//
// Parse decodes events read back from the log: the same rules, without the receiving
// clock, and custody's own types accepted.
//
// # Custody's own types
//
// Type.Internal names them; Decode rejects them (ErrInternalType), Parse accepts them:
//
//   - alert.raised (AlertRaised): a finding that needs a person; its id is derived from
//     the finding (Finding.AlertID).
//   - report.executed (ReportExecuted): who ran which report, as of which log position.
//   - checkpoint.signed (CheckpointSigned): a signed checkpoint of the log's Merkle tree
//     (docs/INTEGRITY.md) for the SIEM/GRC sinks: origin, treeSize, rootHash and the
//     signed note as the checkpoint file holds it. Parse requires every member, treeSize
//     of at least 0, rootHash 44 characters of standard base64 of 32 bytes, an origin
//     without spaces or '+', a note of at most 16 KiB in the signed-note format whose
//     first three lines are exactly origin, treeSize (canonical decimal) and rootHash,
//     so the event cannot say something else than the signed text. Its id is
//     CheckpointEventID(origin, size, root), so publishing a checkpoint again is a
//     duplicate; CheckpointEvent builds the whole event from a note. The root and the
//     signatures are base64, not text, and are not scanned for raw identifiers; the
//     origin and key names are.
//
// # Minimum necessary
//
// Every string of data, subject, source, dataschema and extensions is scanned by
// RawIdentifier, which recognizes by shape, conservatively, a Social Security number,
// a medical record number, a National Provider Identifier and a date of birth. Fields
// that must hold a masked e-mail address (fromMasked, recipientMasked) are checked by
// IsMaskedEmail. An event that fails is rejected before it can reach the immutable log:
// a false alarm costs a retry, a leak would last six years.
//
// # Encoding
//
// Event.MarshalJSON writes the canonical form stored in the log: attributes in a fixed
// order, times in UTC, extensions sorted. Decoding the canonical form gives back the
// same Event, and encoding that gives the same bytes.
package domain
