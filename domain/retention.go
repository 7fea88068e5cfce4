package domain

import (
	"strconv"
	"time"
)

// Retention is an ISO 8601 duration of whole years, months and days (P6Y, P90D, P1Y6M).
type Retention struct {
	Years, Months, Days int
}

// String prints the duration in the contract's form, e.g. "P1Y6M".
func (r Retention) String() string {
	b := []byte{'P'}
	if r.Years != 0 {
		b = strconv.AppendInt(b, int64(r.Years), 10)
		b = append(b, 'Y')
	}
	if r.Months != 0 {
		b = strconv.AppendInt(b, int64(r.Months), 10)
		b = append(b, 'M')
	}
	if r.Days != 0 || (r.Years == 0 && r.Months == 0) {
		b = strconv.AppendInt(b, int64(r.Days), 10)
		b = append(b, 'D')
	}
	return string(b)
}

// MarshalText encodes the duration as its String.
func (r Retention) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// maxRetentionPart bounds each component so that due dates stay far from overflow.
const maxRetentionPart = 999999

// ParseRetention parses P[nY][nM][nD]: upper case, that order, not all zero.
func ParseRetention(s string) (Retention, bool) {
	if len(s) < 3 || s[0] != 'P' {
		return Retention{}, false
	}
	var r Retention
	rest := s[1:]
	order := "YMD"
	seen := false
	for len(rest) > 0 {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) || i > 6 {
			return Retention{}, false
		}
		n, _ := strconv.Atoi(rest[:i])
		unit := rest[i]
		pos := -1
		for j := 0; j < len(order); j++ {
			if order[j] == unit {
				pos = j
			}
		}
		if pos < 0 {
			return Retention{}, false
		}
		switch unit {
		case 'Y':
			r.Years = n
		case 'M':
			r.Months = n
		case 'D':
			r.Days = n
		}
		order = order[pos+1:]
		rest = rest[i+1:]
		seen = true
	}
	if !seen || (r.Years == 0 && r.Months == 0 && r.Days == 0) {
		return Retention{}, false
	}
	return r, true
}

// Due is the instant a recording stored at t must be destroyed by: t in UTC plus one
// AddDate(years, months, days), as EVENTS.md fixes it.
func (r Retention) Due(t time.Time) time.Time { return t.UTC().AddDate(r.Years, r.Months, r.Days) }
