package genesys

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/custody/custody/domain"
)

// Mapping says how Genesys records become contract events: which participant attributes
// carry classification and consent, which queue and role decide `authorized`, which
// media types are which channel. The zero value of every field means its default (see
// DefaultMapping and the package documentation); a map or list given in a mapping file
// replaces the default as a whole.
type Mapping struct {
	// Attributes names the participant attributes (Architect "Set Participant Data")
	// the adapter reads. Optional; defaults below.
	Attributes Attributes `json:"attributes,omitzero"`
	// ConsentValues maps a value of Attributes.Consent to "captured" or "declined".
	// Optional; default {"true","yes","captured"} → captured, {"false","no","declined"} →
	// declined. Values are compared case-insensitively. Any other value is rejected.
	ConsentValues map[string]string `json:"consentValues,omitempty"`
	// DefaultConsentMethod is the consent method when Attributes.ConsentMethod is absent.
	// Optional; default "ivr_verbal".
	DefaultConsentMethod string `json:"defaultConsentMethod,omitempty"`
	// DefaultInteractionType is the interactionType when a classification attribute is
	// present but Attributes.InteractionType is not. Optional; default "other".
	DefaultInteractionType string `json:"defaultInteractionType,omitempty"`
	// QueueClassification classifies a conversation by queue id when it has no
	// classification attribute. Optional; default none (such a conversation is not
	// classified, and the contract treats it as not ePHI).
	QueueClassification map[string]Classification `json:"queueClassification,omitempty"`
	// Channels maps a Genesys mediaType (lower case) to a contract channel. Optional;
	// default voice→voice, callback→voice, email→email, chat→chat, message→message.
	Channels map[string]string `json:"channels,omitempty"`
	// IgnoredMedia lists media types whose conversations produce no events. Optional;
	// default cobrowse, screenshare, video, internalmessage. A media type in neither list
	// is rejected.
	IgnoredMedia []string `json:"ignoredMedia,omitempty"`
	// EmailTLS gives the TLS of e-mail by routing address (lower case), "*" for any other
	// address: TLSv1.2, TLSv1.3 or none. Genesys reports no TLS version for e-mail, so an
	// e-mail conversation whose routing address is not covered is rejected. Optional;
	// default none set.
	EmailTLS map[string]string `json:"emailTls,omitempty"`
	// Authorization decides agent.assigned's authorized flag. Optional; default: nobody
	// is authorized (every touch of an ePHI interaction is then unauthorized, which the
	// alerts make visible at once).
	Authorization Authorization `json:"authorization,omitzero"`
	// RecordingKinds maps a recording's media (recordingmetadata.media) to a contract
	// kind. Optional; default audio→audio, screen→screen, email→email, chat→transcript,
	// message→transcript.
	RecordingKinds map[string]string `json:"recordingKinds,omitempty"`
	// DefaultRecordingKind is the kind of a recording whose media type is unknown: a
	// retention page read from a file carries none (the backfill looks each recording's
	// media type up). Optional; default none, and such an entry is rejected.
	DefaultRecordingKind string `json:"defaultRecordingKind,omitempty"`
	// DefaultRetention is the retention of a recording that has no deleteDate (no delete
	// policy applies). Optional; default "P6Y".
	DefaultRetention string `json:"defaultRetention,omitempty"`
	// RecordingEntityTypes are the audit entity types of recordings. Optional; default
	// Recording, ScreenRecording.
	RecordingEntityTypes []string `json:"recordingEntityTypes,omitempty"`
	// ReadActions are the audit actions that are a recording access (Genesys logs both
	// viewing and downloading as Read). Optional; default Read, View, Download.
	ReadActions []string `json:"readActions,omitempty"`
	// DeleteActions are the audit actions that purge a recording. Optional; default
	// Delete, HardDelete, Purge.
	DeleteActions []string `json:"deleteActions,omitempty"`
	// ManualPurgeReason is the purge reason of a deletion by a user or client (level
	// USER); a deletion at level SYSTEM is retention_expired. Optional; default
	// "error_correction".
	ManualPurgeReason string `json:"manualPurgeReason,omitempty"`
}

// Attributes names the participant attributes. A name of "-" disables the attribute.
type Attributes struct {
	// Classification holds the dataClassification (public, internal,
	// protected_health_information, restricted). Default "hipaa_phi_class".
	Classification string `json:"classification,omitempty"`
	// InteractionType holds the interactionType (claims_inquiry, ...). Default
	// "hipaa_interaction_type".
	InteractionType string `json:"interactionType,omitempty"`
	// Part2 holds "true" for a 42 CFR Part 2 record. Default "hipaa_part2".
	Part2 string `json:"part2,omitempty"`
	// Consent holds the consent decision (see ConsentValues). Default
	// "hipaa_consent_captured".
	Consent string `json:"consent,omitempty"`
	// ConsentMethod holds the consent method (ivr_verbal, ivr_menu, written, email).
	// Default "hipaa_consent_method".
	ConsentMethod string `json:"consentMethod,omitempty"`
	// ConsentTime holds when consent was given, RFC 3339 with offset. Default
	// "hipaa_consent_ts".
	ConsentTime string `json:"consentTime,omitempty"`
}

// Classification is what QueueClassification gives a queue.
type Classification struct {
	InteractionType    string `json:"interactionType"`
	DataClassification string `json:"dataClassification"`
	Part2              bool   `json:"part2,omitempty"`
}

// Authorization is the queue/role table: a user is authorized on a conversation's queue
// when one of the user's roles is among the roles of that queue (or of "*", which
// applies to every queue and to assignments without a queue). Genesys reports no such
// flag; the customer exports the table from its role and queue configuration.
type Authorization struct {
	// QueueRoles maps a queue id, or "*", to the roles allowed to handle it.
	QueueRoles map[string][]string `json:"queueRoles,omitempty"`
	// UserRoles maps a user id to the user's roles.
	UserRoles map[string][]string `json:"userRoles,omitempty"`
}

// Authorized reports whether user may handle a conversation of queue ("" for none).
func (a Authorization) Authorized(user, queue string) bool {
	roles := a.UserRoles[user]
	if len(roles) == 0 {
		return false
	}
	allowed := append(slices.Clone(a.QueueRoles["*"]), a.QueueRoles[queue]...)
	if queue == "" {
		allowed = a.QueueRoles["*"]
	}
	for _, r := range roles {
		if slices.Contains(allowed, r) {
			return true
		}
	}
	return false
}

// DefaultMapping returns the defaults documented on each field.
func DefaultMapping() Mapping {
	return Mapping{
		Attributes: Attributes{
			Classification:  "hipaa_phi_class",
			InteractionType: "hipaa_interaction_type",
			Part2:           "hipaa_part2",
			Consent:         "hipaa_consent_captured",
			ConsentMethod:   "hipaa_consent_method",
			ConsentTime:     "hipaa_consent_ts",
		},
		ConsentValues: map[string]string{
			"true": "captured", "yes": "captured", "captured": "captured",
			"false": "declined", "no": "declined", "declined": "declined",
		},
		DefaultConsentMethod:   "ivr_verbal",
		DefaultInteractionType: "other",
		Channels: map[string]string{
			"voice": "voice", "callback": "voice", "email": "email", "chat": "chat", "message": "message",
		},
		IgnoredMedia: []string{"cobrowse", "screenshare", "video", "internalmessage"},
		RecordingKinds: map[string]string{
			"audio": "audio", "screen": "screen", "email": "email", "chat": "transcript", "message": "transcript",
		},
		DefaultRetention:     "P6Y",
		RecordingEntityTypes: []string{"Recording", "ScreenRecording"},
		ReadActions:          []string{"Read", "View", "Download"},
		DeleteActions:        []string{"Delete", "HardDelete", "Purge"},
		ManualPurgeReason:    "error_correction",
	}
}

// withDefaults fills every zero field from DefaultMapping.
func (m Mapping) withDefaults() Mapping {
	d := DefaultMapping()
	a, da := &m.Attributes, d.Attributes
	for _, f := range []struct {
		v *string
		d string
	}{
		{&a.Classification, da.Classification}, {&a.InteractionType, da.InteractionType},
		{&a.Part2, da.Part2}, {&a.Consent, da.Consent}, {&a.ConsentMethod, da.ConsentMethod},
		{&a.ConsentTime, da.ConsentTime},
		{&m.DefaultConsentMethod, d.DefaultConsentMethod}, {&m.DefaultInteractionType, d.DefaultInteractionType},
		{&m.DefaultRetention, d.DefaultRetention}, {&m.ManualPurgeReason, d.ManualPurgeReason},
	} {
		if *f.v == "" {
			*f.v = f.d
		}
	}
	if m.ConsentValues == nil {
		m.ConsentValues = d.ConsentValues
	}
	if m.Channels == nil {
		m.Channels = d.Channels
	}
	if m.IgnoredMedia == nil {
		m.IgnoredMedia = d.IgnoredMedia
	}
	if m.RecordingKinds == nil {
		m.RecordingKinds = d.RecordingKinds
	}
	if m.RecordingEntityTypes == nil {
		m.RecordingEntityTypes = d.RecordingEntityTypes
	}
	if m.ReadActions == nil {
		m.ReadActions = d.ReadActions
	}
	if m.DeleteActions == nil {
		m.DeleteActions = d.DeleteActions
	}
	// Lower-case the keys compared case-insensitively.
	m.ConsentValues = lowerKeys(m.ConsentValues)
	m.Channels = lowerKeys(m.Channels)
	m.RecordingKinds = lowerKeys(m.RecordingKinds)
	m.EmailTLS = lowerKeys(m.EmailTLS)
	return m
}

func lowerKeys[V any](in map[string]V) map[string]V {
	if in == nil {
		return nil
	}
	out := make(map[string]V, len(in))
	for k, v := range in {
		out[strings.ToLower(k)] = v
	}
	return out
}

// Validate reports every value the contract would not accept, all at once.
func (m Mapping) Validate() error {
	m = m.withDefaults()
	var errs []error
	bad := func(field, rule string) { errs = append(errs, fmt.Errorf("%s: %s", field, rule)) }
	oneOf := func(field, v string, allowed []string) {
		if !slices.Contains(allowed, v) {
			bad(field, "must be one of "+strings.Join(allowed, ", "))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m.ConsentValues)) {
		oneOf("consentValues."+k, m.ConsentValues[k], []string{"captured", "declined"})
	}
	oneOf("defaultConsentMethod", m.DefaultConsentMethod, domain.ConsentMethods)
	oneOf("defaultInteractionType", m.DefaultInteractionType, domain.InteractionKind)
	for _, q := range slices.Sorted(maps.Keys(m.QueueClassification)) {
		c := m.QueueClassification[q]
		if !domain.IsIdentifier(q) {
			bad("queueClassification."+q, "key must be a queue id (1-128 characters of A-Z a-z 0-9 _ - :)")
		}
		oneOf("queueClassification."+q+".interactionType", c.InteractionType, domain.InteractionKind)
		oneOf("queueClassification."+q+".dataClassification", c.DataClassification, domain.Classifications)
	}
	for _, k := range slices.Sorted(maps.Keys(m.Channels)) {
		oneOf("channels."+k, m.Channels[k], domain.Channels)
		if slices.Contains(m.IgnoredMedia, k) {
			bad("channels."+k, "is also in ignoredMedia")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m.EmailTLS)) {
		oneOf("emailTls."+k, m.EmailTLS[k], domain.EmailTLS)
	}
	for _, k := range slices.Sorted(maps.Keys(m.RecordingKinds)) {
		oneOf("recordingKinds."+k, m.RecordingKinds[k], domain.RecordingKinds)
	}
	if m.DefaultRecordingKind != "" {
		oneOf("defaultRecordingKind", m.DefaultRecordingKind, domain.RecordingKinds)
	}
	if _, ok := domain.ParseRetention(m.DefaultRetention); !ok {
		bad("defaultRetention", "must be an ISO 8601 duration of years, months and/or days (e.g. P6Y, P90D)")
	}
	oneOf("manualPurgeReason", m.ManualPurgeReason, domain.PurgeReasons)
	for _, q := range slices.Sorted(maps.Keys(m.Authorization.QueueRoles)) {
		if q != "*" && !domain.IsIdentifier(q) {
			bad("authorization.queueRoles."+q, "key must be a queue id or *")
		}
	}
	for _, u := range slices.Sorted(maps.Keys(m.Authorization.UserRoles)) {
		if !domain.IsIdentifier(u) {
			bad("authorization.userRoles."+u, "key must be a user id")
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: mapping: %w", ErrConfig, errors.Join(errs...))
}

// LoadMapping reads a mapping file (JSON, the field names of Mapping's tags). Unknown
// keys are errors; absent keys keep their defaults.
func LoadMapping(path string) (Mapping, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Mapping{}, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	m, err := ParseMapping(b)
	if err != nil {
		return Mapping{}, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ParseMapping decodes and validates mapping JSON (see LoadMapping).
func ParseMapping(b []byte) (Mapping, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var m Mapping
	if err := dec.Decode(&m); err != nil {
		return Mapping{}, fmt.Errorf("%w: mapping: %w", ErrConfig, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Mapping{}, fmt.Errorf("%w: mapping: trailing data after the object", ErrConfig)
	}
	if err := m.Validate(); err != nil {
		return Mapping{}, err
	}
	return m, nil
}
