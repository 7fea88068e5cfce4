package siem

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/custody/custody/domain"
)

// CEF is one record of ArcSight's Common Event Format:
//
//	CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|Extension
//
// String escapes it and ParseCEF reads it back: ParseCEF(c.String()) equals c for every
// record with valid extension keys, whatever bytes its fields hold.
type CEF struct {
	Version       int
	DeviceVendor  string
	DeviceProduct string
	DeviceVersion string
	SignatureID   string
	Name          string
	Severity      string
	Extensions    []CEFField
}

// CEFField is one key=value pair of a CEF extension. Keys are 1-63 characters of
// A-Z a-z 0-9 _; order is kept.
type CEFField struct {
	Key   string
	Value string
}

// ErrCEF is returned by ParseCEF for text that is not a CEF record, and by String's
// callers for an invalid key (see ValidKey).
var ErrCEF = errors.New("cef")

// String renders the record. Header fields escape '\' as \\ and '|' as \|; extension
// values escape '\' as \\, '=' as \=, a line feed as \n and a carriage return as \r.
// Header fields also escape line breaks as \n and \r, which the CEF specification leaves
// open, so that one record is always one line.
func (c CEF) String() string {
	var b strings.Builder
	b.WriteString("CEF:")
	b.WriteString(strconv.Itoa(c.Version))
	for _, h := range []string{c.DeviceVendor, c.DeviceProduct, c.DeviceVersion, c.SignatureID, c.Name, c.Severity} {
		b.WriteByte('|')
		escapeCEFHeader(&b, h)
	}
	b.WriteByte('|')
	for i, f := range c.Extensions {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(f.Key)
		b.WriteByte('=')
		escapeCEFValue(&b, f.Value)
	}
	return b.String()
}

// Validate reports extension keys that ParseCEF could not read back.
func (c CEF) Validate() error {
	var errs []error
	for i, f := range c.Extensions {
		if !validCEFKey(f.Key) {
			errs = append(errs, fmt.Errorf("%w: extension %d: key %q: must be 1-63 characters of A-Z a-z 0-9 _", ErrCEF, i, f.Key))
		}
	}
	return errors.Join(errs...)
}

func validCEFKey(k string) bool {
	if k == "" || len(k) > 63 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func escapeCEFHeader(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '|':
			b.WriteString(`\|`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteByte(c)
		}
	}
}

func escapeCEFValue(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b.WriteString(`\\`)
		case '=':
			b.WriteString(`\=`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		default:
			b.WriteByte(c)
		}
	}
}

// unescapeCEF undoes both escapings: \\ \| \= \n \r. Any other backslash pair is kept
// as it is, as CEF receivers do.
func unescapeCEF(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch n := s[i]; n {
		case '\\', '|', '=':
			b.WriteByte(n)
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			b.WriteByte('\\')
			b.WriteByte(n)
		}
	}
	return b.String()
}

// ParseCEF reads a record written by CEF.String (or any CEF producer following the
// escaping rules).
func ParseCEF(s string) (CEF, error) {
	var c CEF
	rest, ok := strings.CutPrefix(s, "CEF:")
	if !ok {
		return c, fmt.Errorf("%w: does not start with CEF:", ErrCEF)
	}
	var fields []string
	start := 0
	for i := 0; i < len(rest) && len(fields) < 7; i++ {
		switch rest[i] {
		case '\\':
			i++ // skip the escaped character
		case '|':
			fields = append(fields, rest[start:i])
			start = i + 1
		}
	}
	if len(fields) < 7 {
		return c, fmt.Errorf("%w: %d header fields, want 7", ErrCEF, len(fields))
	}
	v, err := strconv.Atoi(fields[0])
	if err != nil {
		return c, fmt.Errorf("%w: version %q is not a number", ErrCEF, fields[0])
	}
	c.Version = v
	h := make([]string, 6)
	for i := range h {
		h[i] = unescapeCEF(fields[i+1])
	}
	c.DeviceVendor, c.DeviceProduct, c.DeviceVersion, c.SignatureID, c.Name, c.Severity = h[0], h[1], h[2], h[3], h[4], h[5]
	ext, err := parseCEFExtension(rest[start:])
	if err != nil {
		return c, err
	}
	c.Extensions = ext
	return c, nil
}

// parseCEFExtension splits "k1=v1 k2=v2": a value runs up to the space before the next
// key, which is the word ending at the next unescaped '='.
func parseCEFExtension(s string) ([]CEFField, error) {
	var out []CEFField
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return nil, fmt.Errorf("%w: extension without '='", ErrCEF)
		}
		key := s[:eq]
		if !validCEFKey(key) {
			return nil, fmt.Errorf("%w: invalid extension key", ErrCEF)
		}
		s = s[eq+1:]
		end, next := len(s), len(s)
		for i := 0; i < len(s); i++ {
			if s[i] == '\\' {
				i++
				continue
			}
			if s[i] == '=' {
				sp := strings.LastIndexByte(s[:i], ' ')
				if sp < 0 {
					return nil, fmt.Errorf("%w: unescaped '=' in a value", ErrCEF)
				}
				end, next = sp, sp+1
				break
			}
		}
		out = append(out, CEFField{Key: key, Value: unescapeCEF(s[:end])})
		s = s[next:]
	}
	return out, nil
}

// cefSeverity maps OCSF severity ids onto CEF's 0-10 scale.
var cefSeverity = map[int]string{sevInformational: "1", sevLow: "3", sevMedium: "5", sevHigh: "8", sevCritical: "10"}

// CEFRecord maps an event onto a CEF record. The header is
// custody|custody|productVersion|<rule, or the event type>|<title>|<severity 0-10>;
// the extension uses the standard keys rt, externalId, cat, start, suser, act, outcome,
// src and custom strings cs1-cs6 (interactionIds, recordingId, consent,
// recordingStatus, source, reportExecutionId) and cn1 (count), each with its label. A
// checkpoint.signed adds cn2 (treeSize), flexString1 (rootHash), flexString2 (origin),
// each with its label, and msg, the signed note, whose line breaks are escaped as \n.
func CEFRecord(e domain.Event, productVersion string) CEF {
	f := factsOf(e)
	title, sev := titleAndSeverity(e, f)
	sig := string(e.Type)
	if f.Rule != "" {
		sig = f.Rule
	}
	c := CEF{DeviceVendor: "custody", DeviceProduct: "custody", DeviceVersion: productVersion,
		SignatureID: sig, Name: title, Severity: cefSeverity[sev]}
	add := func(k, v string) {
		if v != "" {
			c.Extensions = append(c.Extensions, CEFField{k, v})
		}
	}
	labelled := func(k, label, v string) {
		if v != "" {
			c.Extensions = append(c.Extensions, CEFField{k + "Label", label}, CEFField{k, v})
		}
	}
	add("rt", strconv.FormatInt(millis(e.Time), 10))
	add("externalId", e.ID)
	add("cat", string(e.Type))
	if !f.TriggeredAt.IsZero() {
		add("start", strconv.FormatInt(millis(f.TriggeredAt), 10))
	}
	add("suser", f.AgentID)
	add("act", f.Action)
	add("outcome", f.Authorization)
	add("src", f.RemoteIP)
	labelled("cs1", "interactionIds", strings.Join(f.InteractionIDs, ","))
	labelled("cs2", "recordingId", f.RecordingID)
	labelled("cs3", "consent", f.Consent)
	labelled("cs4", "recordingStatus", f.RecordingStatus)
	labelled("cs5", "source", e.Source)
	labelled("cs6", "reportExecutionId", f.ReportExecution)
	if f.Count > 0 {
		labelled("cn1", "count", strconv.Itoa(f.Count))
	}
	if cp := f.Checkpoint; cp != nil {
		labelled("cn2", "treeSize", strconv.FormatInt(cp.TreeSize, 10))
		labelled("flexString1", "rootHash", cp.RootHash)
		labelled("flexString2", "origin", cp.Origin)
		add("msg", cp.Note)
	}
	return c
}
