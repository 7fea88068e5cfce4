package integrity_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/custody/custody/projections/integrity"
)

// BenchmarkTreeAppend appends events of about 250 bytes, syncing every 1,000 or 10,000
// leaves as the projector does per batch, or never (hashing and buffered writes alone).
func BenchmarkTreeAppend(b *testing.B) {
	for _, every := range []uint64{1000, 10_000, 0} {
		name := fmt.Sprintf("sync=%d", every)
		if every == 0 {
			name = "sync=never"
		}
		b.Run(name, func(b *testing.B) {
			tr, err := integrity.Open(filepath.Join(b.TempDir(), "tree.hashes"))
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			e := makeEvent(1)
			b.SetBytes(int64(len(e.data)))
			b.ReportAllocs()
			seq := uint64(0)
			for b.Loop() {
				seq++
				if err := tr.Append(seq, e.subject, e.data); err != nil {
					b.Fatal(err)
				}
				if every != 0 && seq%every == 0 {
					if err := tr.Sync(); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
		})
	}
}

func BenchmarkVerifierAdd(b *testing.B) {
	k := newKeys(b, "custody-bench")
	v, err := integrity.NewVerifier(integrity.VerifierConfig{Keys: k.verifiers})
	if err != nil {
		b.Fatal(err)
	}
	e := makeEvent(1)
	b.ReportAllocs()
	seq := uint64(0)
	for b.Loop() {
		seq++
		v.Add(seq, e.subject, e.data)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "leaves/s")
}

func BenchmarkInclusionProof(b *testing.B) {
	evs := makeEvents(100_000)
	tr := newTree(b, evs)
	k := newKeys(b, "custody-bench")
	cp := sign(b, tr, int64(len(evs)), k)
	b.ReportAllocs()
	seq := uint64(0)
	for b.Loop() {
		seq = seq*7919%uint64(len(evs)) + 1
		if _, err := tr.ProveInclusion(seq, cp); err != nil {
			b.Fatal(err)
		}
	}
}
