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
