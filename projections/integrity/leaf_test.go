package integrity_test

import (
	"encoding/hex"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/custody/custody/projections/integrity"
)

func TestLeafHash(t *testing.T) {
	e := event{seq: 42, subject: "custody.event.phi.accessed", data: []byte(`{"id":"x"}`)}
	got := integrity.LeafHash(e.seq, e.subject, e.data)
	if want := tlog.RecordHash(integrity.AppendLeaf(nil, e.seq, e.subject, e.data)); got != want {
		t.Fatalf("LeafHash %v, tlog.RecordHash of the encoding %v", got, want)
	}
	if want := leafOracle(e); got != want {
		t.Fatalf("LeafHash %v, documented encoding %x", got, want)
	}
	// The format is frozen: a change here breaks every signed checkpoint.
	const golden = "7ad88cb82636aec15c353370aea29f6429f0a3233c65c53c1fd5556703c8d745"
	if hex.EncodeToString(got[:]) != golden {
		t.Errorf("leaf hash %x, golden %s", got[:], golden)
	}
}

func TestLeafEncodingIsInjective(t *testing.T) {
	base := event{seq: 7, subject: "ab", data: []byte("cd")}
	tests := []struct {
		name string
		e    event
	}{
		{"subject takes a byte of data", event{7, "abc", []byte("d")}},
		{"data takes a byte of subject", event{7, "a", []byte("bcd")}},
		{"other sequence", event{8, "ab", []byte("cd")}},
		{"sequence far away", event{7 + 1<<32, "ab", []byte("cd")}},
		{"empty data", event{7, "abcd", nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if integrity.LeafHash(base.seq, base.subject, base.data) == integrity.LeafHash(tt.e.seq, tt.e.subject, tt.e.data) {
				t.Fatal("two different events have the same leaf hash")
			}
		})
	}
}
