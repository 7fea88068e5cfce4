package domain

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The minimum-necessary recognizers of EVENTS.md ("Precise points"). They match
// substrings and are shape-based and conservative: no checksum or range check, because a
// false alarm costs a retry and a leak lasts six years.
//
// RawIdentifier is a hand-written single pass over the string, equivalent to these
// regular expressions (the tests check it against them on random strings):
//
//	SSN  [0-9]{3}-[0-9]{2}-[0-9]{4}   or   (?i)ssn[^A-Za-z0-9]{0,3}[0-9]{9}
//	MRN  (?i)mrn[^A-Za-z0-9]{0,3}[0-9]{6}
//	NPI  (?i)npi[^A-Za-z0-9]{0,3}[0-9]{10}
//	DOB  [0-9]{2}/[0-9]{2}/[0-9]{4}
var (
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
	var ssn, mrn, npi, dob bool
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isDigit(c):
			if !ssn && hasShape(s[i:], "ddd-dd-dddd") {
				ssn = true
			}
			if !dob && hasShape(s[i:], "dd/dd/dddd") {
				dob = true
			}
		case c == 's' || c == 'S' || c == 0xC5 || c == 'm' || c == 'M' || c == 'n' || c == 'N':
			switch wordAt(s[i:]) {
			case "ssn":
				ssn = ssn || digitsAfterWord(s[i:], 9)
			case "mrn":
				mrn = mrn || digitsAfterWord(s[i:], 6)
			case "npi":
				npi = npi || digitsAfterWord(s[i:], 10)
			}
		}
		if ssn {
			return RuleSSN
		}
	}
	switch {
	case mrn:
		return RuleMRN
	case npi:
		return RuleNPI
	case dob:
		return RuleDOB
	}
	return ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isASCIIAlnum(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
}

// hasShape reports whether s starts with the shape: 'd' a digit, any other byte itself.
func hasShape(s, shape string) bool {
	if len(s) < len(shape) {
		return false
	}
	for j := 0; j < len(shape); j++ {
		if shape[j] == 'd' {
			if !isDigit(s[j]) {
				return false
			}
		} else if s[j] != shape[j] {
			return false
		}
	}
	return true
}

// foldRune maps a rune to the lower-case ASCII letter it matches case-insensitively in
// Go's regular expressions (including U+017F LATIN SMALL LETTER LONG S for s and U+212A
// KELVIN SIGN for k), or 0.
func foldRune(r rune) byte {
	switch {
	case r >= 'a' && r <= 'z':
		return byte(r)
	case r >= 'A' && r <= 'Z':
		return byte(r) + 'a' - 'A'
	case r == 0x17F:
		return 's'
	case r == 0x212A:
		return 'k'
	}
	return 0
}

// wordAt returns "ssn", "mrn" or "npi" when s starts with that word in any case.
func wordAt(s string) string {
	var w [3]byte
	for k := 0; k < 3; k++ {
		r, size := utf8.DecodeRuneInString(s)
		if size == 0 {
			return ""
		}
		w[k] = foldRune(r)
		s = s[size:]
	}
	switch string(w[:]) {
	case "ssn", "mrn", "npi":
		return string(w[:])
	}
	return ""
}

// digitsAfterWord reports whether the three-letter word at the start of s is followed by
// up to three separator runes (anything but an ASCII letter or digit) and at least need
// digits.
func digitsAfterWord(s string, need int) bool {
	for k := 0; k < 3; k++ { // skip the word
		_, size := utf8.DecodeRuneInString(s)
		s = s[size:]
	}
	for k := 0; k < 3 && len(s) > 0; k++ {
		r, size := utf8.DecodeRuneInString(s)
		if isASCIIAlnum(r) {
			break
		}
		s = s[size:]
	}
	n := 0
	for n < len(s) && isDigit(s[n]) {
		n++
	}
	return n >= need
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
