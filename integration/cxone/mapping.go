package cxone

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/custody/custody/domain"
)

// Channel value of Mapping.Channels that leaves contacts of a media type out.
const SkipChannel = "skip"

// Mapping says how CXone contacts and their custom data become contract events. CXone
// knows nothing of consent, classification or authorization: these are custom data
// fields a Studio script sets (names of the customer's choosing, defaults below), or
// tables by skill. Load a mapping file with LoadMapping; DefaultMapping gives the
// defaults.
type Mapping struct {
	// CustomData names the custom data fields read. Fields not named here are never
	// read (they may hold anything, member data included).
	CustomData CustomDataFields `json:"customData"`
	// DefaultConsentMethod is the consent method when CustomData.ConsentMethod is
	// absent. Default "ivr_verbal".
	DefaultConsentMethod string `json:"defaultConsentMethod,omitempty"`
	// DefaultInteractionType is the interactionType of a classification that names
	// none (neither custom data nor the skill's rule). Default "other".
	DefaultInteractionType string `json:"defaultInteractionType,omitempty"`
	// DefaultClassification classifies a contact that neither custom data nor its
	// skill classify. Default "": no interaction.classified (an interaction never
	// classified is not ePHI, EVENTS.md).
	DefaultClassification string `json:"defaultClassification,omitempty"`
	// DefaultAuthorized is agent.assigned's authorized flag when neither custom data
	// nor the skill's rule says. Default false (fail closed).
	DefaultAuthorized bool `json:"defaultAuthorized,omitempty"`
	// DefaultEmailTLS is the tls of an Email contact without CustomData.EmailTLS:
	// TLSv1.2, TLSv1.3 or none. Default "": such a contact is rejected, because CXone
	// does not report the transport of an e-mail.
	DefaultEmailTLS string `json:"defaultEmailTls,omitempty"`
	// Channels maps mediaTypeName to the contract's channel (voice, email, chat,
	// message) or "skip". Merged over the defaults: Call voice, Email email, Chat chat,
	// SMS message. A media type not listed is an error.
	Channels map[string]string `json:"channels,omitempty"`
	// Skills holds rules by skillId (as a string): classification and authorization of
	// the contacts routed through the skill.
	Skills map[string]SkillRule `json:"skills,omitempty"`
	// Agents maps a CXone agentId (as a string) to the agent id custody uses (the one
	// the LMS reports training for). An agent not listed becomes AgentPrefix+agentId.
	Agents map[string]string `json:"agents,omitempty"`
	// AgentPrefix prefixes unmapped agent ids. Default "cx-agent-".
	AgentPrefix string `json:"agentPrefix,omitempty"`
}

// CustomDataFields names the custom data fields of a contact the adapter reads. Every
// value is a string (CXone custom data has no other type and no timestamp).
type CustomDataFields struct {
	// Prefix marks the fields of this mapping: a custom data field starting with it
	// that is not one of the names below is an error (a misspelled field in a Studio
	// script would otherwise lose consent silently). Default "hipaa_"; "-" turns the
	// check off.
	Prefix string `json:"prefix,omitempty"`
	// Consent: "true" gives consent.captured, "false" consent.declined. Default
	// "hipaa_consent_captured".
	Consent string `json:"consent,omitempty"`
	// ConsentTime: when the decision was taken, RFC 3339 with offset. Default
	// "hipaa_consent_ts". Absent: contactStartDate + preQueueSeconds.
	ConsentTime string `json:"consentTime,omitempty"`
	// ConsentMethod: ivr_verbal, ivr_menu, written or email. Default
	// "hipaa_consent_method".
	ConsentMethod string `json:"consentMethod,omitempty"`
	// Classification: public, internal, protected_health_information or restricted.
	// Default "hipaa_phi_class".
	Classification string `json:"classification,omitempty"`
	// InteractionType: claims_inquiry, prescription_refill, provider_verification,
	// billing_dispute, clinical_correspondence or other. Default
	// "hipaa_interaction_type".
	InteractionType string `json:"interactionType,omitempty"`
	// Part2: "true" for a 42 CFR Part 2 record. Default "hipaa_part2".
	Part2 string `json:"part2,omitempty"`
	// Authorized: "true" or "false", the Studio script's check of the agent against role
	// group, schedule and training. Default "hipaa_agent_authorized".
	Authorized string `json:"authorized,omitempty"`
	// EmailTLS: TLSv1.2, TLSv1.3 or none, for Email contacts. Default
	// "hipaa_email_tls".
	EmailTLS string `json:"emailTls,omitempty"`
}

// SkillRule classifies and authorizes the contacts of one skill. Custom data, when
// present, wins over it.
type SkillRule struct {
	// InteractionType: see CustomDataFields.InteractionType. Optional.
	InteractionType string `json:"interactionType,omitempty"`
	// DataClassification: see CustomDataFields.Classification. Optional; without it
	// the skill classifies nothing.
	DataClassification string `json:"dataClassification,omitempty"`
	// Part2 marks 42 CFR Part 2 records. Optional.
	Part2 bool `json:"part2,omitempty"`
	// Authorized, when set, is the authorized flag of the skill's agents: the skill is
	// assigned only to agents who passed the customer's check. Optional.
	Authorized *bool `json:"authorized,omitempty"`
}

// DefaultMapping returns the documented defaults (see the package documentation).
func DefaultMapping() *Mapping {
	m := &Mapping{}
	m.setDefaults()
	return m
}

var defaultChannels = map[string]string{"Call": "voice", "Email": "email", "Chat": "chat", "SMS": "message"}

func (m *Mapping) setDefaults() {
	f := &m.CustomData
	for _, d := range []struct {
		p *string
		v string
	}{
		{&f.Prefix, "hipaa_"}, {&f.Consent, "hipaa_consent_captured"}, {&f.ConsentTime, "hipaa_consent_ts"},
		{&f.ConsentMethod, "hipaa_consent_method"}, {&f.Classification, "hipaa_phi_class"},
		{&f.InteractionType, "hipaa_interaction_type"}, {&f.Part2, "hipaa_part2"},
		{&f.Authorized, "hipaa_agent_authorized"}, {&f.EmailTLS, "hipaa_email_tls"},
		{&m.DefaultConsentMethod, "ivr_verbal"}, {&m.DefaultInteractionType, "other"}, {&m.AgentPrefix, "cx-agent-"},
	} {
		if *d.p == "" {
			*d.p = d.v
		}
	}
	ch := make(map[string]string, len(defaultChannels)+len(m.Channels))
	for k, v := range defaultChannels {
		ch[k] = v
	}
	for k, v := range m.Channels {
		ch[k] = v
	}
	m.Channels = ch
}

// names lists the configured custom data names.
func (f *CustomDataFields) names() []string {
	return []string{f.Consent, f.ConsentTime, f.ConsentMethod, f.Classification, f.InteractionType, f.Part2, f.Authorized, f.EmailTLS}
}

// known reports whether name is one of the configured custom data fields.
func (f *CustomDataFields) known(name string) bool { return slices.Contains(f.names(), name) }

// prefixed reports whether name carries the mapping's prefix (and the check is on).
func (f *CustomDataFields) prefixed(name string) bool {
	return f.Prefix != "-" && f.Prefix != "" && strings.HasPrefix(name, f.Prefix)
}

// Validate reports every problem of the mapping at once.
func (m *Mapping) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	seen := map[string]bool{}
	for _, n := range m.CustomData.names() {
		switch {
		case n == "":
			bad("customData: every field name must be non-empty")
		case seen[n]:
			bad("customData: %q is named for two fields", n)
		}
		seen[n] = true
	}
	if !slices.Contains(domain.ConsentMethods, m.DefaultConsentMethod) {
		bad("defaultConsentMethod: must be one of %s", strings.Join(domain.ConsentMethods, ", "))
	}
	if !slices.Contains(domain.InteractionKind, m.DefaultInteractionType) {
		bad("defaultInteractionType: must be one of %s", strings.Join(domain.InteractionKind, ", "))
	}
	if m.DefaultClassification != "" && !slices.Contains(domain.Classifications, m.DefaultClassification) {
		bad("defaultClassification: must be empty or one of %s", strings.Join(domain.Classifications, ", "))
	}
	if m.DefaultEmailTLS != "" && !slices.Contains(domain.EmailTLS, m.DefaultEmailTLS) {
		bad("defaultEmailTls: must be empty or one of %s", strings.Join(domain.EmailTLS, ", "))
	}
	for _, k := range sortedKeys(m.Channels) {
		if v := m.Channels[k]; v != SkipChannel && !slices.Contains(domain.Channels, v) {
			bad("channels[%q]: must be one of %s or %s", k, strings.Join(domain.Channels, ", "), SkipChannel)
		}
	}
	for _, k := range sortedKeys(m.Skills) {
		r := m.Skills[k]
		if !isDigits(k) {
			bad("skills[%q]: the key must be a skillId (digits)", k)
		}
		if r.InteractionType != "" && !slices.Contains(domain.InteractionKind, r.InteractionType) {
			bad("skills[%q].interactionType: must be one of %s", k, strings.Join(domain.InteractionKind, ", "))
		}
		if r.DataClassification != "" && !slices.Contains(domain.Classifications, r.DataClassification) {
			bad("skills[%q].dataClassification: must be one of %s", k, strings.Join(domain.Classifications, ", "))
		}
		if r.DataClassification == "" && (r.InteractionType != "" || r.Part2) {
			bad("skills[%q]: interactionType and part2 need dataClassification", k)
		}
	}
	for _, k := range sortedKeys(m.Agents) {
		if !isDigits(k) {
			bad("agents[%q]: the key must be an agentId (digits)", k)
		}
		if !domain.IsIdentifier(m.Agents[k]) {
			bad("agents[%q]: the agent id must be 1-128 characters of A-Z a-z 0-9 _ - :", k)
		}
	}
	if !domain.IsIdentifier(m.AgentPrefix + "1") {
		bad("agentPrefix: must be characters of A-Z a-z 0-9 _ - :, at most 127")
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return nil
}

// LoadMapping reads and checks a mapping file (JSON; see ParseMapping).
func LoadMapping(path string) (*Mapping, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	m, err := ParseMapping(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ParseMapping decodes and checks mapping JSON. Keys match exactly (case-sensitive);
// unknown or repeated keys are errors; absent keys take their defaults; channels are
// merged over the default channels.
func ParseMapping(data []byte) (*Mapping, error) {
	var m Mapping
	if err := jsonv2.Unmarshal(data, &m, jsonv2.RejectUnknownMembers(true)); err != nil {
		return nil, fmt.Errorf("%w: mapping: %w", ErrConfig, err)
	}
	m.setDefaults()
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%w: mapping: %w", ErrConfig, err)
	}
	return &m, nil
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func isDigits(s string) bool {
	if s == "" || len(s) > 19 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
