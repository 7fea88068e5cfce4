package domain_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/custody/custody/domain"
)

// FuzzDecode checks, for any input, that Decode either rejects it with ErrInvalid and at
// least one named problem, or returns an event whose canonical form decodes back (with
// Parse and with Decode) to an equal event and re-encodes to the identical bytes. The
// seed corpus is in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, typ := range domain.Types {
		f.Add(valid(typ))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := dec.Decode(in)
		if err != nil {
			if !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("Decode(%q): error %v does not match ErrInvalid", in, err)
			}
			probs := domain.Problems(err)
			if len(probs) == 0 {
				t.Fatalf("Decode(%q): no problems in %v", in, err)
			}
			for _, p := range probs {
				if p.Rule == "" {
					t.Fatalf("Decode(%q): problem of %q without a rule", in, p.Field)
				}
			}
			if !reflect.DeepEqual(e, domain.Event{}) {
				t.Fatalf("Decode(%q): rejected but returned %#v", in, e)
			}
			return
		}
		if !e.Type.Accepted() || e.Data == nil || e.Data.EventType() != e.Type {
			t.Fatalf("Decode(%q): type %q with data %T", in, e.Type, e.Data)
		}
		b1, err := e.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of %#v: %v", e, err)
		}
		e2, err := domain.Parse(b1)
		if err != nil {
			t.Fatalf("Parse(%s) of the canonical form of %q: %v", b1, in, err)
		}
		if !reflect.DeepEqual(e, e2) {
			t.Fatalf("canonical form %s of %q decodes to another event:\n first %#v\nsecond %#v", b1, in, e, e2)
		}
		b2, err := e2.MarshalJSON()
		if err != nil {
			t.Fatalf("second MarshalJSON: %v", err)
		}
		if !bytes.Equal(b1, b2) {
			t.Fatalf("canonical form of %q is not stable:\n%s\n%s", in, b1, b2)
		}
		if e3, err := dec.Decode(b1); err != nil || !reflect.DeepEqual(e, e3) {
			t.Fatalf("Decode of the canonical form %s: %v", b1, err)
		}
	})
}

// TestFuzzCorpus checks that the seed files named valid-* decode and those named
// invalid-* are rejected, so that the corpus keeps covering both sides.
func TestFuzzCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecode", "*"))
	if err != nil {
		t.Fatal(err)
	}
	counts := map[bool]int{}
	types := map[domain.Type]bool{}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
			if len(lines) != 2 || lines[0] != "go test fuzz v1" ||
				!strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
				t.Fatalf("not a one-value go test fuzz v1 file: %q", raw)
			}
			in, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
			if err != nil {
				t.Fatal(err)
			}
			e, err := dec.Decode([]byte(in))
			switch {
			case strings.HasPrefix(name, "valid-"):
				if err != nil {
					t.Fatalf("valid seed rejected: %v", err)
				}
				types[e.Type] = true
				counts[true]++
			case strings.HasPrefix(name, "invalid-"):
				if !errors.Is(err, domain.ErrInvalid) {
					t.Fatalf("invalid seed: %v", err)
				}
				counts[false]++
			default:
				t.Skip("seed found by the fuzzer")
			}
		})
	}
	for _, typ := range domain.Types {
		if !types[typ] {
			t.Errorf("no valid seed of type %s", typ)
		}
	}
	if counts[false] < 12 {
		t.Errorf("%d invalid seeds, want at least 12", counts[false])
	}
}
