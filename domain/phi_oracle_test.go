package domain_test

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/custody/custody/domain"
)

// The recognizers as the contract words them, as regular expressions: the oracle the
// hand-written scanner must agree with.
var (
	oracleSSN     = regexp.MustCompile(`[0-9]{3}-[0-9]{2}-[0-9]{4}`)
	oracleSSNWord = regexp.MustCompile(`(?i)ssn[^A-Za-z0-9]{0,3}[0-9]{9}`)
	oracleMRN     = regexp.MustCompile(`(?i)mrn[^A-Za-z0-9]{0,3}[0-9]{6}`)
	oracleNPI     = regexp.MustCompile(`(?i)npi[^A-Za-z0-9]{0,3}[0-9]{10}`)
	oracleDOB     = regexp.MustCompile(`[0-9]{2}/[0-9]{2}/[0-9]{4}`)
)

func oracle(s string) string {
	switch {
	case oracleSSN.MatchString(s), oracleSSNWord.MatchString(s):
		return domain.RuleSSN
	case oracleMRN.MatchString(s):
		return domain.RuleMRN
	case oracleNPI.MatchString(s):
		return domain.RuleNPI
	case oracleDOB.MatchString(s):
		return domain.RuleDOB
	}
	return ""
}

// TestRawIdentifierMatchesOracle compares the scanner with the regular expressions on
// strings built from the pieces that matter: digits, separators, the three words in
// mixed case (and the long s that folds to s), letters and multi-byte runes.
func TestRawIdentifierMatchesOracle(t *testing.T) {
	pieces := []string{"0", "1", "9", "12", "123", "1234", "123456", "123456789", "1234567890",
		"-", "/", " ", ":", "#", "_", "\t", "é", "\u00a0", "\xff",
		"ssn", "SSN", "sSn", "ſsn", "mrn", "MRN", "Mrn", "npi", "NPI", "nPi",
		"a", "Z", "x", "agent", "gc-", "@", "."}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		var b strings.Builder
		for n := r.IntN(10); n >= 0; n-- {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		s := b.String()
		if got, want := domain.RawIdentifier(s), oracle(s); got != want {
			t.Fatalf("RawIdentifier(%q) = %q, oracle says %q", s, got, want)
		}
	}
}

func FuzzRawIdentifier(f *testing.F) {
	for _, s := range []string{"SSN: 123456789", "mrn#1234567", "NPI 1234567890", "01/02/1980", "123-45-6789", "ſsn123456789"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := domain.RawIdentifier(s), oracle(s); got != want {
			t.Fatalf("RawIdentifier(%q) = %q, oracle says %q", s, got, want)
		}
	})
}
