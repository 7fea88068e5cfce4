package domain

import (
	"regexp"
	"strings"
	"unicode"
)

// The minimum-necessary recognizers of EVENTS.md ("Precise points"). They match
// substrings and are shape-based and conservative: no checksum or range check, because a
// false alarm costs a retry and a leak lasts six years.
var (
	reSSN     = regexp.MustCompile(`[0-9]{3}-[0-9]{2}-[0-9]{4}`)
	reSSNWord = regexp.MustCompile(`(?i)ssn[^A-Za-z0-9]{0,3}[0-9]{9}`)
	reMRN     = regexp.MustCompile(`(?i)mrn[^A-Za-z0-9]{0,3}[0-9]{6}`)
	reNPI     = regexp.MustCompile(`(?i)npi[^A-Za-z0-9]{0,3}[0-9]{10}`)
	reDOB     = regexp.MustCompile(`[0-9]{2}/[0-9]{2}/[0-9]{4}`)
	// A masked address: zero or one visible character (not a space, separator or
	// control/format character), "***@", a domain.
	reMasked = regexp.MustCompile(`^[^\s@*\p{Z}\p{C}]?\*\*\*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$`)
)

// Rules named in rejections, so that operators can grep for them.
const (
	RuleSSN    = "contains a raw identifier shaped like a Social Security number (minimum necessary: mask or pseudonymize it before sending)"
	RuleMRN    = "contains a raw identifier shaped like a medical record number (MRN followed by 6 or more digits; minimum necessary)"
	RuleNPI    = "contains a raw identifier shaped like a National Provider Identifier (NPI followed by 10 or more digits; minimum necessary)"
	RuleDOB    = "contains a date shaped like a date of birth (dd/dd/dddd; minimum necessary)"
	RuleMasked = "must be a masked e-mail address: at most the first character of the local part, then ***@domain (e.g. j***@example.org)"
)

// RawIdentifier reports the rule a string breaks when it carries a raw identifier, or ""
// when it is clean. "Followed by N or more digits" means at least N digits in a row,
// so the regular expressions need only match N.
func RawIdentifier(s string) string {
	if !hasDigitRun(s) {
		return ""
	}
	switch {
	case reSSN.MatchString(s), reSSNWord.MatchString(s):
		return RuleSSN
	case reMRN.MatchString(s):
		return RuleMRN
	case reNPI.MatchString(s):
		return RuleNPI
	case reDOB.MatchString(s):
		return RuleDOB
	}
	return ""
}

// hasDigitRun is a fast pre-check: every recognizer needs at least four digits in a row.
func hasDigitRun(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			run++
			if run >= 4 {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// IsMaskedEmail reports whether s is a masked address as the contract requires.
func IsMaskedEmail(s string) bool { return reMasked.MatchString(s) }

// MaskEmail masks an address for adapters: the first character of the local part,
// "***@", the domain. An input without "@" gives "***@invalid".
func MaskEmail(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return "***@invalid"
	}
	local, domain := addr[:at], addr[at+1:]
	first := ""
	for _, r := range local {
		if r != '*' && r != '@' && unicode.IsGraphic(r) && !unicode.IsSpace(r) {
			first = string(r)
		}
		break
	}
	return first + "***@" + domain
}
