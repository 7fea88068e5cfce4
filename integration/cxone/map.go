package cxone

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custody/custody/domain"
)

// Identifiers the mapping builds. Contact, skill and agent ids are CXone's own numeric
// ids, which are not ePHI; names, addresses and notes are never copied.
const (
	sourcePrefix  = "nice-cxone/bu-"
	subjectPrefix = "cx-"
	queuePrefix   = "cx-skill-"
	dispPrefix    = "cxone-disposition-"
)

// Source is the CloudEvents source of a business unit's events, e.g.
// "nice-cxone/bu-4600000".
func Source(businessUnitID int64) string { return sourcePrefix + strconv.FormatInt(businessUnitID, 10) }

// Subject is the interaction id of a master contact, e.g. "cx-123456789012". Every
// contact of a transfer chain has the subject of its masterContactId.
func Subject(masterContactID int64) string {
	return subjectPrefix + strconv.FormatInt(masterContactID, 10)
}

// mapper turns validated contacts into events.
type mapper struct {
	m *Mapping
}

// skipped reports whether the contact's media type is mapped to "skip"; an unknown
// media type is not skipped (events reports it).
func (mp mapper) skipped(c *contact) bool { return mp.m.Channels[c.media] == SkipChannel }

// events maps one contact and its custom data. Problems are added to p with the
// contact's path; the events of a contact with problems are not returned.
func (mp mapper) events(bu int64, c *contact, cd map[string]string, p *problems) []domain.Event {
	before := len(p.list)
	m, f := mp.m, &mp.m.CustomData
	cdField := func(name string) string { return c.field + ".customData." + name }
	cdEnum := func(name string, allowed []string) (string, bool) {
		v, ok := cd[name]
		if !ok {
			return "", false
		}
		if !slices.Contains(allowed, v) {
			p.fail(cdField(name), "must be one of "+strings.Join(allowed, ", "))
			return "", false
		}
		return v, true
	}
	cdBool := func(name string) (bool, bool) {
		v, ok := cdEnum(name, []string{"true", "false"})
		return v == "true", ok
	}

	channel, known := m.Channels[c.media]
	if !known {
		p.fail(c.field+".mediaTypeName", fmt.Sprintf("must be a media type of the mapping's channels (%s); add it to channels, or map it to %q", strings.Join(sortedKeys(m.Channels), ", "), SkipChannel))
	}
	start := c.start
	end := start.Add(c.total)
	routed := minTime(start.Add(c.preQueue), end)
	answered := minTime(routed.Add(c.inQueue), end)
	parent := c.id == c.master
	queue := ""
	if c.skill > 0 {
		queue = queuePrefix + strconv.FormatInt(c.skill, 10)
	}
	skill, hasSkill := m.Skills[strconv.FormatInt(c.skill, 10)]
	if c.skill == 0 {
		hasSkill = false
	}

	b := builder{bu: bu, c: c, p: p}

	// interaction.started and interaction.ended: the master contact only.
	if parent && known {
		d := &domain.InteractionStarted{Channel: channel, Direction: "inbound", QueueID: queue}
		if c.outbound {
			d.Direction = "outbound"
		}
		if channel == "email" {
			d.Email = mp.email(c, cd, p)
		}
		if channel != "email" || d.Email != nil {
			b.add(start, d, "started")
		}
	}

	// interaction.classified: custom data, else the skill's rule, else the default.
	class, ok := cdEnum(f.Classification, domain.Classifications)
	typ, _ := cdEnum(f.InteractionType, domain.InteractionKind)
	part2, _ := cdBool(f.Part2)
	switch {
	case ok:
		if typ == "" && hasSkill {
			typ = skill.InteractionType
		}
	case hasSkill && skill.DataClassification != "":
		class = skill.DataClassification
		if typ == "" {
			typ = skill.InteractionType
		}
		if _, set := cd[f.Part2]; !set {
			part2 = skill.Part2
		}
	default:
		class = m.DefaultClassification
	}
	if class != "" {
		if typ == "" {
			typ = m.DefaultInteractionType
		}
		b.add(routed, &domain.InteractionClassified{InteractionType: typ, DataClassification: class, Part2: part2},
			"classified", class, typ, strconv.FormatBool(part2))
	}

	// consent.captured / consent.declined.
	if consent, ok := cdBool(f.Consent); ok {
		method, ok := cdEnum(f.ConsentMethod, domain.ConsentMethods)
		if !ok {
			method = m.DefaultConsentMethod
		}
		at := routed
		if s, ok := cd[f.ConsentTime]; ok {
			t, rule := domain.ParseTime(s)
			if rule != "" {
				p.fail(cdField(f.ConsentTime), rule)
			}
			at = t
		}
		if consent {
			b.add(at, &domain.ConsentCaptured{Method: method}, "consent", "captured", method)
		} else {
			b.add(at, &domain.ConsentDeclined{Method: method}, "consent", "declined", method)
		}
	} else if _, set := cd[f.ConsentTime]; set {
		p.fail(cdField(f.ConsentTime), fmt.Sprintf("is set without %s", f.Consent))
	}

	// agent.assigned: a contact handled by an agent.
	if c.agent > 0 && !c.abandoned {
		authorized, ok := cdBool(f.Authorized)
		if !ok {
			authorized = m.DefaultAuthorized
			if hasSkill && skill.Authorized != nil {
				authorized = *skill.Authorized
			}
		}
		agent := strconv.FormatInt(c.agent, 10)
		id, mapped := m.Agents[agent]
		if !mapped {
			id = m.AgentPrefix + agent
		}
		b.add(answered, &domain.AgentAssigned{AgentID: id, Authorized: authorized, QueueID: queue},
			"assigned", agent, strconv.FormatBool(authorized))
	}

	if parent && known {
		d := &domain.InteractionEnded{}
		switch {
		case c.abandoned:
			d.Disposition = "abandoned"
		case c.disposition > 0:
			d.Disposition = dispPrefix + strconv.FormatInt(c.disposition, 10)
		}
		b.add(end, d, "ended")
	}
	if len(p.list) > before {
		return nil
	}
	return b.out
}

// email builds interaction.started's e-mail part. The routing address is the payer's
// (toAddress of an inbound e-mail, fromAddress of an outbound one); the member's
// address is masked.
func (mp mapper) email(c *contact, cd map[string]string, p *problems) *domain.Email {
	f := &mp.m.CustomData
	routing, member, rf, mf := c.to, c.from, "toAddress", "fromAddress"
	if c.outbound {
		routing, member, rf, mf = c.from, c.to, "fromAddress", "toAddress"
	}
	ok := true
	if routing == "" {
		p.fail(c.field+"."+rf, "required for an Email contact (the routing address)")
		ok = false
	}
	if !strings.Contains(member, "@") {
		p.fail(c.field+"."+mf, "must be an e-mail address for an Email contact (it is masked before it is stored)")
		ok = false
	}
	tls, set := cd[f.EmailTLS]
	switch {
	case set && !slices.Contains(domain.EmailTLS, tls):
		p.fail(c.field+".customData."+f.EmailTLS, "must be one of "+strings.Join(domain.EmailTLS, ", "))
		ok = false
	case !set && mp.m.DefaultEmailTLS == "":
		p.fail(c.field+".customData."+f.EmailTLS, "required for an Email contact: CXone does not report the transport of an e-mail; set it in the Studio script or set the mapping's defaultEmailTls")
		ok = false
	case !set:
		tls = mp.m.DefaultEmailTLS
	}
	if !ok {
		return nil
	}
	return &domain.Email{To: routing, FromMasked: domain.MaskEmail(member), TLS: tls}
}

// builder collects the events of one contact, each checked against the contract.
type builder struct {
	bu  int64
	c   *contact
	p   *problems
	out []domain.Event
}

// add builds an event whose id is a version 8 UUID from the SHA-256 of the platform,
// business unit, contact id, kind and the facts that distinguish it, so the same
// contact always gives the same ids, from the API or from a file. The event is encoded
// and parsed back with domain.Parse, so nothing leaves the adapter that the contract
// would reject.
func (b *builder) add(at time.Time, d domain.Data, kind string, parts ...string) {
	idParts := append([]string{"cxone", strconv.FormatInt(b.bu, 10), strconv.FormatInt(b.c.id, 10), kind, domain.FormatTime(at)}, parts...)
	e := domain.Event{
		ID:              domain.DeterministicID(idParts...),
		Source:          Source(b.bu),
		Type:            d.EventType(),
		Time:            at.UTC(),
		Subject:         Subject(b.c.master),
		DataContentType: domain.ContentType,
		Data:            d,
	}
	raw, err := e.MarshalJSON()
	if err == nil {
		e, err = domain.Parse(raw)
	}
	if err != nil {
		probs := domain.Problems(err)
		if len(probs) == 0 {
			b.p.fail(b.c.field, fmt.Sprintf("the %s event cannot be built: %v", d.EventType(), err))
		}
		for _, fe := range probs {
			b.p.fail(b.c.field, fmt.Sprintf("the %s event would break the contract: %s", d.EventType(), fe.Error()))
		}
		return
	}
	b.out = append(b.out, e)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// dedupe drops events whose id came earlier in the slice.
func dedupe(evs []domain.Event) []domain.Event {
	seen := make(map[string]bool, len(evs))
	out := evs[:0]
	for _, e := range evs {
		if !seen[e.ID] {
			seen[e.ID] = true
			out = append(out, e)
		}
	}
	return out
}
