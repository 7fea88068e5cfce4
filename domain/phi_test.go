package domain_test

import (
	"testing"
	"time"

	"github.com/custody/custody/domain"
)

func TestRawIdentifier(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		// Social Security number shape ddd-dd-dddd, anywhere.
		{"123-45-6789", domain.RuleSSN},
		{"caller 123-45-6789 verified", domain.RuleSSN},
		{"x1123-45-67890x", domain.RuleSSN},
		{"000-00-0000", domain.RuleSSN}, // no range check
		// SSN word: any case, up to three separators, nine or more digits.
		{"SSN123456789", domain.RuleSSN},
		{"ssn 123456789", domain.RuleSSN},
		{"Ssn: 123456789", domain.RuleSSN},
		{"sSN#-:123456789", domain.RuleSSN},
		{"SSN_123456789", domain.RuleSSN},
		{"SSN  \t123456789", domain.RuleSSN},
		{"SSN 1234567890123", domain.RuleSSN},
		{"patientssn=123456789;", domain.RuleSSN},
		// MRN: six or more digits.
		{"MRN123456", domain.RuleMRN},
		{"mrn: 0012345678", domain.RuleMRN},
		{"Mrn#123456", domain.RuleMRN},
		{"MRN - 123456", domain.RuleMRN},
		{"MRN12345678901", domain.RuleMRN},
		{"chart mRn/987654 pulled", domain.RuleMRN},
		// NPI: ten or more digits.
		{"NPI1234567890", domain.RuleNPI},
		{"npi: 1234567893", domain.RuleNPI},
		{"NpI_-_1234567890", domain.RuleNPI},
		{"NPI 123456789012", domain.RuleNPI},
		// Date of birth shape dd/dd/dddd, anywhere, no range check.
		{"01/31/1980", domain.RuleDOB},
		{"dob:12/25/2001.", domain.RuleDOB},
		{"99/99/9999", domain.RuleDOB},
		{"111/02/20201", domain.RuleDOB},

		// Clean strings.
		{"", ""},
		{"hipaa_annual", ""},
		{"callback 555-1234", ""},
		{"12-345-6789", ""},
		{"123-456-789", ""},
		{"123 45 6789", ""},
		{"123456789", ""},         // nine digits without the word
		{"SSN 12345678", ""},      // eight digits
		{"SSN    123456789", ""},  // four separators
		{"SSN:-:-123456789", ""},  // four separators
		{"SSN ****123456789", ""}, // five separators
		{"SSNx123456789", ""},     // a letter is not a separator
		{"S S N 123456789", ""},   // the word is split
		{"SSN 123-45-678", ""},    // digits not in a row, and not the SSN shape
		{"MRN 12345", ""},         // five digits
		{"MRN    123456", ""},     // four separators
		{"MRN 123 456", ""},       // digits not in a row
		{"MR N123456", ""},        // the word is split
		{"NPI 123456789", ""},     // nine digits
		{"NPI1234-567890", ""},    // digits not in a row
		{"NPIa1234567890", ""},    // a letter is not a separator
		{"1/31/1980", ""},         // one-digit month
		{"01/31/80", ""},          // two-digit year
		{"01-31-1980", ""},        // dashes
		{"2026-03-08", ""},        // ISO date
		{"2026/03/08", ""},        // year first
		{"claim 2026/03; ssn on file", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := domain.RawIdentifier(tc.in); got != tc.want {
				t.Errorf("RawIdentifier(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestIsMaskedEmail(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"j***@example.org", true},
		{"***@example.org", true},
		{"J***@mail.example.co.uk", true},
		{"1***@a-b.example", true},
		{"é***@example.org", true}, // one visible character, not one byte
		{"_***@example.org", true},
		{"k***@localhost", true},
		{"", false},
		{"john@example.org", false},
		{"jo***@example.org", false},
		{"j**@example.org", false},
		{"j****@example.org", false},
		{"****@example.org", false},
		{"j***", false},
		{"j***@", false},
		{"j***example.org", false},
		{"j***@@example.org", false},
		{"@***@example.org", false},
		{" ***@example.org", false},
		{"j***@example.org ", false},
		{"j***@exa mple.org", false},
		{"j***@-example.org", false},
		{"j***@example-.org", false},
		{"j***@example..org", false},
		{"\x01***@example.org", false},   // a control character is not visible
		{"\u00a0***@example.org", false}, // nor a no-break space
		{"\u200b***@example.org", false}, // nor a zero-width space
		{"j***@john@example.org", false},
		{"j***@example.org\n", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := domain.IsMaskedEmail(tc.in); got != tc.want {
				t.Errorf("IsMaskedEmail(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestMaskEmail(t *testing.T) {
	tests := []struct {
		in, want string
		masked   bool // the result passes IsMaskedEmail
	}{
		{"john.doe@example.org", "j***@example.org", true},
		{"J@x.example", "J***@x.example", true},
		{"élise@example.org", "é***@example.org", true},
		{"@example.org", "***@example.org", true},
		{"*star@example.org", "***@example.org", true},
		{" space@example.org", "***@example.org", true},
		{"a@b@example.org", "a***@example.org", true},
		{"no-at-sign", "***@invalid", true},
		{"", "***@invalid", true},
		{"j***@example.org", "j***@example.org", true},
		{"\x7fjohn@example.org", "***@example.org", true},
		{"\u00a0john@example.org", "***@example.org", true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got := domain.MaskEmail(tc.in)
			if got != tc.want {
				t.Errorf("MaskEmail(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if domain.IsMaskedEmail(got) != tc.masked {
				t.Errorf("IsMaskedEmail(MaskEmail(%q) = %q) = %v", tc.in, got, !tc.masked)
			}
		})
	}
}

func TestParseRetention(t *testing.T) {
	valid := []struct {
		in   string
		want domain.Retention
		str  string
	}{
		{"P6Y", domain.Retention{Years: 6}, "P6Y"},
		{"P90D", domain.Retention{Days: 90}, "P90D"},
		{"P1Y6M", domain.Retention{Years: 1, Months: 6}, "P1Y6M"},
		{"P6M", domain.Retention{Months: 6}, "P6M"},
		{"P1Y2M3D", domain.Retention{Years: 1, Months: 2, Days: 3}, "P1Y2M3D"},
		{"P1M1D", domain.Retention{Months: 1, Days: 1}, "P1M1D"},
		{"P0Y1D", domain.Retention{Days: 1}, "P1D"},
		{"P1Y0M0D", domain.Retention{Years: 1}, "P1Y"},
		{"P006Y", domain.Retention{Years: 6}, "P6Y"},
		{"P36500D", domain.Retention{Days: 36500}, "P36500D"},
	}
	for _, tc := range valid {
		t.Run(tc.in, func(t *testing.T) {
			r, ok := domain.ParseRetention(tc.in)
			if !ok || r != tc.want {
				t.Fatalf("ParseRetention(%q) = %v, %v; want %v", tc.in, r, ok, tc.want)
			}
			if r.String() != tc.str {
				t.Errorf("String() = %q, want %q", r.String(), tc.str)
			}
			if b, err := r.MarshalText(); err != nil || string(b) != tc.str {
				t.Errorf("MarshalText() = %q, %v", b, err)
			}
			if r2, ok := domain.ParseRetention(r.String()); !ok || r2 != r {
				t.Errorf("ParseRetention(String()) = %v, %v", r2, ok)
			}
		})
	}
	for _, in := range []string{
		"", "P", "P0D", "P0Y", "P0Y0M0D", "p6y", "P6y", "p6Y", "P6M1Y", "P1D1M", "P1D1Y", "PT1H", "P1DT1H",
		"P1W", "P2W3D", "6Y", "Y", "P1.5Y", "P1,5Y", "P-1Y", "P+1Y", "P1Y1Y", "P1YM", "PY", " P6Y", "P6Y ",
		"P 6Y", "P6Y\n", "P6", "P١Y",
	} {
		t.Run("reject "+in, func(t *testing.T) {
			if r, ok := domain.ParseRetention(in); ok {
				t.Errorf("ParseRetention(%q) = %v, accepted", in, r)
			}
		})
	}
}

func TestRetentionDue(t *testing.T) {
	utc := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, time.UTC) }
	est := time.FixedZone("EST", -5*3600)
	tests := []struct {
		name      string
		stored    time.Time
		retention string
		want      time.Time
	}{
		{"P6Y", time.Date(2026, 3, 8, 6, 59, 59, 123000000, time.UTC), "P6Y", time.Date(2032, 3, 8, 6, 59, 59, 123000000, time.UTC)},
		{"29 Feb + P1Y", utc(2024, 2, 29, 10, 0), "P1Y", utc(2025, 3, 1, 10, 0)},
		{"29 Feb + P4Y", utc(2024, 2, 29, 10, 0), "P4Y", utc(2028, 2, 29, 10, 0)},
		{"29 Feb + P12M", utc(2024, 2, 29, 10, 0), "P12M", utc(2025, 3, 1, 10, 0)},
		{"29 Feb + P365D", utc(2024, 2, 29, 10, 0), "P365D", utc(2025, 2, 28, 10, 0)},
		{"31 Jan + P1M", utc(2024, 1, 31, 0, 0), "P1M", utc(2024, 3, 2, 0, 0)},
		{"P90D", utc(2026, 1, 1, 0, 0), "P90D", utc(2026, 4, 1, 0, 0)},
		{"one AddDate, not three", utc(2023, 1, 31, 0, 0), "P1M1D", utc(2023, 3, 4, 0, 0)},
		// Converted to UTC first: 31 Jan 23:00 EST is 1 Feb 04:00 UTC, plus one month.
		{"non-UTC time", time.Date(2026, 1, 31, 23, 0, 0, 0, est), "P1M", utc(2026, 3, 1, 4, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := domain.ParseRetention(tc.retention)
			if !ok {
				t.Fatalf("ParseRetention(%q) failed", tc.retention)
			}
			got := r.Due(tc.stored)
			if !got.Equal(tc.want) || got.Location() != time.UTC {
				t.Errorf("Due(%v) = %v, want %v", tc.stored, got, tc.want)
			}
			if want := tc.stored.UTC().AddDate(r.Years, r.Months, r.Days); !got.Equal(want) {
				t.Errorf("Due(%v) = %v, AddDate gives %v", tc.stored, got, want)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	valid := []struct {
		in   string
		want time.Time
	}{
		{"2026-03-08T06:59:59.123Z", time.Date(2026, 3, 8, 6, 59, 59, 123000000, time.UTC)},
		{"2026-03-08T06:59:59Z", time.Date(2026, 3, 8, 6, 59, 59, 0, time.UTC)},
		{"2026-03-08t06:59:59Z", time.Date(2026, 3, 8, 6, 59, 59, 0, time.UTC)},
		{"2026-03-08T12:29:59.123456789+05:30", time.Date(2026, 3, 8, 6, 59, 59, 123456789, time.UTC)},
		{"2026-03-08T01:59:59-05:00", time.Date(2026, 3, 8, 6, 59, 59, 0, time.UTC)},
		{"2026-03-09T06:58:59+23:59", time.Date(2026, 3, 8, 6, 59, 59, 0, time.UTC)},
		{"2026-03-07T07:00:59-23:59", time.Date(2026, 3, 8, 6, 59, 59, 0, time.UTC)},
		{"2026-03-08T06:59:59+00:00", time.Date(2026, 3, 8, 6, 59, 59, 0, time.UTC)},
		{"2000-01-01T00:00:00Z", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"1999-12-31T23:00:00-01:00", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"2024-02-29T00:00:00Z", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)},
		{"9999-12-31T23:59:59.999999999Z", time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
	}
	for _, tc := range valid {
		t.Run(tc.in, func(t *testing.T) {
			got, rule := domain.ParseTime(tc.in)
			if rule != "" {
				t.Fatalf("ParseTime(%q): %s", tc.in, rule)
			}
			if !got.Equal(tc.want) || got.Location() != time.UTC {
				t.Errorf("ParseTime(%q) = %v, want %v in UTC", tc.in, got, tc.want)
			}
			if back, rule := domain.ParseTime(domain.FormatTime(got)); rule != "" || !back.Equal(got) {
				t.Errorf("ParseTime(FormatTime) = %v, %q", back, rule)
			}
		})
	}
	for _, in := range []string{
		"", "2026-03-08", "2026-03-08T06:59:59", "2026-03-08T06:59:59.123", "2026-03-08 06:59:59Z",
		"2026-03-08T06:59:59+0100", "2026-03-08T06:59:59+01", "2026-03-08T06:59:59 Z", "2026-03-08T06:59:59.1234567890Z",
		"2026-03-08T06:59:59,1234567890Z", "2026-03-08T06:59:59.Z", "2016-12-31T23:59:60Z", "2026-03-08T24:00:00Z",
		"2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-03-08T06:59:59+24:00", "2026-03-08T06:59:59-24:00",
		"2026-03-08T06:59:59+23:60", "2026-03-08T06:59:59+99:00", "1999-12-31T23:59:59Z", "2000-01-01T00:59:59+01:00",
		"0000-01-01T00:00:00Z", "Sun, 08 Mar 2026 06:59:59 GMT", "1772953199", "2026-03-08T06:59:59ZZ",
	} {
		t.Run("reject "+in, func(t *testing.T) {
			if got, rule := domain.ParseTime(in); rule == "" {
				t.Errorf("ParseTime(%q) = %v, accepted", in, got)
			} else if !got.IsZero() {
				t.Errorf("ParseTime(%q) returns %v with rule %q", in, got, rule)
			}
		})
	}
}

func TestIdentifiers(t *testing.T) {
	long := make([]byte, 128)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		in   string
		want bool
	}{
		{"agent-007", true},
		{"AZaz09_-:", true},
		{string(long), true},
		{string(long) + "a", false},
		{"", false},
		{"a b", false},
		{"a.b", false},
		{"a/b", false},
		{"é", false},
		{"a\x00", false},
	}
	for _, tc := range tests {
		if got := domain.IsIdentifier(tc.in); got != tc.want {
			t.Errorf("IsIdentifier(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	ids := []struct {
		in, want string
		ok       bool
	}{
		{"0193F1A2-7C4E-7B3A-9D2E-5F6A7B8C9D0E", "0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d0e", true},
		{"6ba7b810-9dad-11d1-80b4-00c04fd430c8", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", true},
		{"00000000-0000-0000-0000-000000000000", "", false},
		{"ffffffff-ffff-ffff-ffff-ffffffffffff", "", false},
		{"6ba7b810-9dad-01d1-80b4-00c04fd430c8", "", false},
		{"6ba7b810-9dad-11d1-c0b4-00c04fd430c8", "", false},
	}
	for _, tc := range ids {
		if got, ok := domain.NewID(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("NewID(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
