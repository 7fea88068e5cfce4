package domain_test

import (
	"testing"

	"github.com/custody/custody/domain"
)

// BenchmarkParse decodes one valid event of every type a contact center sends, in
// turn: the strict decoder is on the path of every ingest, live view and rebuild.
//
//	go test -run '^$' -bench Parse -benchmem ./domain
func BenchmarkParse(b *testing.B) {
	var events [][]byte
	for _, t := range domain.Types {
		if !t.Internal() {
			events = append(events, valid(t))
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := domain.Parse(events[i%len(events)]); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParseAllocations guards what BenchmarkParse measures: decoding an event allocates
// once for its values, once for its data and a few times for the envelope, not once per
// string (it was 29 times per event).
func TestParseAllocations(t *testing.T) {
	b := valid(domain.PHIAccessedType)
	n := testing.AllocsPerRun(200, func() {
		if _, err := domain.Parse(b); err != nil {
			t.Fatal(err)
		}
	})
	limit := 8.0
	if raceEnabled {
		limit = 16 // the decoder's pooled state is often made anew
	}
	if n > limit {
		t.Fatalf("Parse allocates %.1f times per event, want at most %.0f", n, limit)
	}
}
