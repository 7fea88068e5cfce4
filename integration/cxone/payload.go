package cxone

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/custody/custody/domain"
)

// The shapes of API v34.0 this file decodes, strictly: a field the adapter reads must
// have its documented JSON type; a required one must be present (JSON null is the same
// as absent); a field API v34.0 does not define is an error unless
// Config.AllowUnknownFields; a field name of an older version is always an error, since
// it means the payload is not v34.0. Messages name the field and the rule, never a
// value.

// contactFields are the fields of a completed contact in API v34.0.
var contactFields = setOf(
	"contactId", "masterContactId", "contactStartDate", "lastUpdateTime", "mediaTypeId", "mediaTypeName",
	"mediaSubTypeId", "mediaSubTypeName", "isOutbound", "fromAddress", "toAddress", "pointOfContactId",
	"pointOfContactName", "skillId", "skillName", "agentId", "firstName", "lastName", "teamId", "teamName",
	"campaignId", "campaignName", "preQueueSeconds", "inQueueSeconds", "agentSeconds", "postQueueSeconds",
	"acwSeconds", "holdSeconds", "holdCount", "conferenceSeconds", "releaseSeconds", "abandoned",
	"abandonSeconds", "isShortAbandon", "totalDurationSeconds", "isRefused", "refuseReason", "refuseTime",
	"isTakeover", "isLogged", "endReason", "primaryDispositionId", "secondaryDispositionId", "dispositionNotes",
	"transferIndicatorId", "transferIndicatorName", "serviceLevelFlag", "routingTime", "routingAttribute",
	"highProficiency", "lowProficiency", "divisionNo", "isAnalyticsProcessed", "analyticsProcessedDate",
	"dateContactWarehoused", "dateACWWarehoused", "tags",
)

// requestedFields is the fields parameter of every completed-contacts request: only
// what the mapping reads (minimum necessary: no agent names, no disposition notes).
// fromAddress and toAddress are read for Email contacts only and dropped otherwise.
var requestedFields = strings.Join([]string{
	"contactId", "masterContactId", "contactStartDate", "mediaTypeName", "isOutbound", "fromAddress",
	"toAddress", "skillId", "agentId", "preQueueSeconds", "inQueueSeconds", "totalDurationSeconds",
	"abandoned", "primaryDispositionId",
}, ",")

// oldContactFields are field names of versions before v34.0, with their v34.0 names.
var oldContactFields = map[string]string{
	"contactStart": "contactStartDate", "fromAddr": "fromAddress", "toAddr": "toAddress",
	"mediaType": "mediaTypeId and mediaTypeName", "ACWSeconds": "acwSeconds", "confSeconds": "conferenceSeconds",
	"isWarehoused": "dateContactWarehoused", "state": "no such field", "stateId": "no such field",
	"contactID": "contactId", "masterContactID": "masterContactId",
}

var (
	contactsPageFields   = setOf("_links", "businessUnitId", "lastPollTime", "totalRecords", "completedContacts")
	linksFields          = setOf("self", "next", "previous")
	customDataFields     = setOf("contactCustomData")
	customDataItemFields = setOf("name", "value")
	bulkCustomDataFields = setOf("_links", "businessUnitId", "lastPollTime", "totalRecords", "ContactCustomData")
	bulkItemFields       = setOf("contactId", "name", "value")
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// maxSeconds bounds the duration fields (30 days).
const maxSeconds = 30 * 24 * 3600

// contact is what the mapping reads of one completed contact.
type contact struct {
	id, master    int64
	start         time.Time
	media         string
	outbound      bool
	from, to      string // Email contacts only
	skill, agent  int64
	preQueue      time.Duration
	inQueue       time.Duration
	total         time.Duration
	abandoned     bool
	disposition   int64
	field         string // path for messages: "completedContacts[3]"
	customDataErr bool   // its custom data was rejected
}

// contactsPage is one completed-contacts response.
type contactsPage struct {
	bu       int64
	lastPoll time.Time
	total    int64 // totalRecords, -1 when absent
	links    bool  // _links was present
	next     bool  // _links.next was a non-empty string
	contacts []*contact
}

// obj is one JSON object of a payload, with its path for messages.
type obj struct {
	m    map[string]json.RawMessage
	path string
	p    *problems
}

// parseObject decodes exactly one JSON object.
func parseObject(b []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	var m map[string]json.RawMessage
	if err := dec.Decode(&m); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("must be one JSON object: syntax error at byte %d", se.Offset)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("must be one JSON object: it is cut short")
		}
		return nil, errors.New("must be one JSON object")
	}
	if m == nil {
		return nil, errors.New("must be one JSON object, not null")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("must be one JSON object, with nothing after it")
	}
	return m, nil
}

func (o obj) name(k string) string {
	if o.path == "" {
		return k
	}
	return o.path + "." + k
}

func (o obj) raw(k string, required bool) (json.RawMessage, bool) {
	v, ok := o.m[k]
	if !ok || string(v) == "null" {
		if required {
			o.p.fail(o.name(k), "required")
		}
		return nil, false
	}
	return v, true
}

func (o obj) str(k string, required bool) (string, bool) {
	v, ok := o.raw(k, required)
	if !ok {
		return "", false
	}
	var s string
	if v[0] != '"' || json.Unmarshal(v, &s) != nil {
		o.p.fail(o.name(k), "must be a JSON string")
		return "", false
	}
	if s == "" {
		if required {
			o.p.fail(o.name(k), "must not be empty")
		}
		return "", false
	}
	return s, true
}

func (o obj) integer(k string, required bool, min int64) (int64, bool) {
	v, ok := o.raw(k, required)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		o.p.fail(o.name(k), "must be a JSON integer")
		return 0, false
	}
	if n < min {
		o.p.fail(o.name(k), fmt.Sprintf("must be at least %d", min))
		return 0, false
	}
	return n, true
}

func (o obj) boolean(k string, required bool) (bool, bool) {
	v, ok := o.raw(k, required)
	if !ok {
		return false, false
	}
	switch string(v) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	o.p.fail(o.name(k), "must be a JSON boolean")
	return false, false
}

func (o obj) seconds(k string, required bool) (time.Duration, bool) {
	v, ok := o.raw(k, required)
	if !ok {
		return 0, false
	}
	var f float64
	if c := v[0]; (c != '-' && (c < '0' || c > '9')) || json.Unmarshal(v, &f) != nil {
		o.p.fail(o.name(k), "must be a JSON number of seconds")
		return 0, false
	}
	if math.IsNaN(f) || f < 0 || f > maxSeconds {
		o.p.fail(o.name(k), fmt.Sprintf("must be a number of seconds from 0 to %d", maxSeconds))
		return 0, false
	}
	return time.Duration(math.Round(f*1000)) * time.Millisecond, true
}

func (o obj) time(k string, required bool) (time.Time, bool) {
	s, ok := o.str(k, required)
	if !ok {
		return time.Time{}, false
	}
	t, rule := domain.ParseTime(s)
	if rule != "" {
		o.p.fail(o.name(k), rule)
		return time.Time{}, false
	}
	return t, true
}

func (o obj) object(k string, required bool) (obj, bool) {
	v, ok := o.raw(k, required)
	if !ok {
		return obj{}, false
	}
	var m map[string]json.RawMessage
	if v[0] != '{' || json.Unmarshal(v, &m) != nil {
		o.p.fail(o.name(k), "must be a JSON object")
		return obj{}, false
	}
	return obj{m: m, path: o.name(k), p: o.p}, true
}

func (o obj) array(k string, required bool) ([]json.RawMessage, bool) {
	v, ok := o.raw(k, required)
	if !ok {
		return nil, false
	}
	var a []json.RawMessage
	if v[0] != '[' || json.Unmarshal(v, &a) != nil {
		o.p.fail(o.name(k), "must be a JSON array")
		return nil, false
	}
	return a, true
}

// item returns element i of an array as an object.
func (o obj) item(k string, i int, v json.RawMessage) (obj, bool) {
	path := fmt.Sprintf("%s[%d]", o.name(k), i)
	var m map[string]json.RawMessage
	if len(v) == 0 || v[0] != '{' || json.Unmarshal(v, &m) != nil {
		o.p.fail(path, "must be a JSON object")
		return obj{}, false
	}
	return obj{m: m, path: path, p: o.p}, true
}

// unexpected reports the fields outside allowed, in name order. A field of an older API
// version is always reported; others only when !allowUnknown.
func (o obj) unexpected(allowed map[string]bool, old map[string]string, allowUnknown bool, what string) {
	for _, k := range sortedKeys(o.m) {
		if allowed[k] {
			continue
		}
		if v, ok := old[k]; ok {
			o.p.fail(o.name(k), fmt.Sprintf("is a field of API versions before %s (%s there: %s); the adapter is pinned to %s, so check the version in the request or export URL", APIVersion, APIVersion, v, APIVersion))
			continue
		}
		if !allowUnknown {
			o.p.fail(o.name(k), fmt.Sprintf("unexpected: not a field of %s in API %s", what, APIVersion))
		}
	}
}

// parseContactsPage decodes a completed-contacts response.
func parseContactsPage(top map[string]json.RawMessage, allowUnknown bool, p *problems) *contactsPage {
	o := obj{m: top, p: p}
	o.unexpected(contactsPageFields, nil, allowUnknown, "a completed-contacts response")
	pg := &contactsPage{total: -1}
	pg.bu, _ = o.integer("businessUnitId", true, 1)
	pg.lastPoll, _ = o.time("lastPollTime", false)
	if n, ok := o.integer("totalRecords", false, 0); ok {
		pg.total = n
	}
	if l, ok := o.object("_links", false); ok {
		l.unexpected(linksFields, nil, allowUnknown, "_links")
		pg.links = true
		_, pg.next = l.str("next", false)
		l.str("self", false)
		l.str("previous", false)
	}
	items, _ := o.array("completedContacts", true)
	for i, v := range items {
		c, ok := o.item("completedContacts", i, v)
		if !ok {
			continue
		}
		pg.contacts = append(pg.contacts, parseContact(c, allowUnknown))
	}
	return pg
}

func parseContact(o obj, allowUnknown bool) *contact {
	o.unexpected(contactFields, oldContactFields, allowUnknown, "a completed contact")
	c := &contact{field: o.path}
	c.id, _ = o.integer("contactId", true, 1)
	c.master, _ = o.integer("masterContactId", true, 1)
	c.start, _ = o.time("contactStartDate", true)
	c.media, _ = o.str("mediaTypeName", true)
	c.outbound, _ = o.boolean("isOutbound", true)
	c.from, _ = o.str("fromAddress", false)
	c.to, _ = o.str("toAddress", false)
	c.skill, _ = o.integer("skillId", false, 0)
	c.agent, _ = o.integer("agentId", false, 0)
	c.preQueue, _ = o.seconds("preQueueSeconds", false)
	c.inQueue, _ = o.seconds("inQueueSeconds", false)
	c.total, _ = o.seconds("totalDurationSeconds", true)
	c.abandoned, _ = o.boolean("abandoned", false)
	c.disposition, _ = o.integer("primaryDispositionId", false, 0)
	return c
}

// customDatum is one custom data field the mapping reads.
type customDatum struct {
	contactID   int64 // bulk form only
	name, value string
	field       string
	line        int // file line, ReadFile only
}

// parseCustomDataItems decodes the items of contactCustomData (withID false) or
// ContactCustomData (withID true) and keeps the fields the mapping reads. A field with
// the mapping's prefix that the mapping does not know is an error; other fields are
// dropped unread.
func parseCustomDataItems(o obj, key string, withID bool, allowUnknown bool, f *CustomDataFields) []customDatum {
	items, _ := o.array(key, true)
	var out []customDatum
	for i, v := range items {
		it, ok := o.item(key, i, v)
		if !ok {
			continue
		}
		allowed := customDataItemFields
		if withID {
			allowed = bulkItemFields
		}
		it.unexpected(allowed, nil, allowUnknown, "a custom data field")
		var d customDatum
		if withID {
			d.contactID, _ = it.integer("contactId", true, 1)
		}
		name, ok := it.str("name", true)
		if !ok {
			continue
		}
		if !f.known(name) {
			if f.prefixed(name) {
				shown := "a name"
				if domain.RawIdentifier(name) == "" && len(name) <= 64 {
					shown = strconv.Quote(name)
				}
				it.p.fail(it.name("name"), fmt.Sprintf("%s has the prefix %q but is not a custom data field of the mapping (%s); check the Studio script's spelling or the mapping",
					shown, f.Prefix, strings.Join(f.names(), ", ")))
			}
			continue
		}
		// Values are read only for the mapping's fields; an empty string is absent.
		raw, present := it.raw("value", false)
		if present {
			var s string
			if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
				it.p.fail(it.name("value"), "must be a JSON string")
				continue
			}
			d.value = s
		}
		d.name, d.field = name, it.path
		out = append(out, d)
	}
	return out
}

// customDataMap turns the fields of one contact into a map; a field given twice with
// different values is an error.
func customDataMap(ds []customDatum, p *problems) map[string]string {
	m := map[string]string{}
	for _, d := range ds {
		if d.value == "" {
			continue
		}
		if v, ok := m[d.name]; ok && v != d.value {
			p.fail(d.field+".value", fmt.Sprintf("%s is given twice for the contact, with different values", d.name))
			continue
		}
		m[d.name] = d.value
	}
	return m
}
