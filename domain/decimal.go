package domain

import (
	"github.com/cockroachdb/apd/v3"
)

// Decimals is the one context every rate and percentage is computed in: 34 digits,
// half-even rounding (DESIGN.md decision 8: exact numbers, never floats).
var Decimals = apd.Context{Precision: 34, MaxExponent: apd.MaxExponent, MinExponent: apd.MinExponent, Traps: apd.DefaultTraps, Rounding: apd.RoundHalfEven}

// Rate returns num/den with four decimal places, half-even, as a string; "1.0000" when
// den is 0 (nothing required, nothing missed).
func Rate(num, den int64) string {
	if den == 0 {
		return "1.0000"
	}
	var q, r apd.Decimal
	if _, err := Decimals.Quo(&q, apd.New(num, 0), apd.New(den, 0)); err != nil {
		return "NaN"
	}
	if _, err := Decimals.Quantize(&r, &q, -4); err != nil {
		return "NaN"
	}
	return r.Text('f')
}
