package domain_test

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custody/custody/domain"
)

// checkpoint builds the data object of a checkpoint.signed from raw JSON member values.
func checkpoint(origin, size, root, note string) string {
	var ms []string
	for _, m := range [][2]string{{"origin", origin}, {"treeSize", size}, {"rootHash", root}, {"note", note}} {
		if m[1] != "" {
			ms = append(ms, q(m[0])+":"+m[1])
		}
	}
	return "{" + strings.Join(ms, ",") + "}"
}

// goodCheckpoint is checkpoint with the valid members of testNote, each replaced when
// set in with.
func goodCheckpoint(with map[string]string) []byte {
	m := map[string]string{"origin": q("custody/CUSTODY_EVENTS"), "treeSize": "25960", "rootHash": q(testRoot), "note": q(testNote)}
	for k, v := range with {
		m[k] = v
	}
	return ev(domain.CheckpointSignedType, checkpoint(m["origin"], m["treeSize"], m["rootHash"], m["note"]))
}

// noteWith is testNote with its first three lines replaced.
func noteWith(origin, size, root string) string {
	_, sigs, _ := strings.Cut(testNote, "\n\n")
	return origin + "\n" + size + "\n" + root + "\n\n" + sigs
}

func TestCheckpointSignedRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		want domain.CheckpointSigned
	}{
		{"signed note", validData[domain.CheckpointSignedType],
			domain.CheckpointSigned{Origin: "custody/CUSTODY_EVENTS", TreeSize: 25960, RootHash: testRoot, Note: testNote}},
		{"empty tree, two signatures, members reordered", checkpointTwoSigs(),
			domain.CheckpointSigned{Origin: "custody.example.org/CUSTODY_EVENTS", TreeSize: 0, RootHash: emptyRoot, Note: twoSigNote()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ev(domain.CheckpointSignedType, tc.data, set("time", `"2026-03-08T12:29:59.123+05:30"`), set("datacontenttype", `"application/json"`))
			e, err := domain.Parse(in)
			if err != nil {
				t.Fatalf("Parse(%s): %v", in, err)
			}
			want := domain.Event{ID: testID, Source: "genesys-cloud/org-3f1c", Type: domain.CheckpointSignedType, Time: testInstant,
				Subject: testSubject, DataContentType: domain.ContentType, Data: &tc.want}
			if !reflect.DeepEqual(e, want) {
				t.Fatalf("Parse\n got %#v\nwant %#v", e, want)
			}
			checkRoundTripParse(t, e)
			if _, err := dec.Decode(in); !errors.Is(err, domain.ErrInternalType) || !errors.Is(err, domain.ErrInvalid) {
				t.Errorf("Decode of a checkpoint.signed: %v, want ErrInternalType and ErrInvalid", err)
			}
		})
	}
}

const emptyRoot = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="

func twoSigNote() string {
	return "custody.example.org/CUSTODY_EVENTS\n0\n" + emptyRoot + "\n\n" +
		"— custody-checkpoint X6Id/mT9iDKFZcL7+q400VVlFo82qR/MmlcA5QEQO2+qR4l1IlQZpPq3zY0Xzjf8eBvJ/lJwCtGYdC00hg4+WznJPQk=\n" +
		"— custody-2027 AAAAAAE=\n"
}

func checkpointTwoSigs() string {
	return `{"note":` + q(twoSigNote()) + `,"rootHash":"` + emptyRoot + `","treeSize":0,"origin":"custody.example.org/CUSTODY_EVENTS"}`
}

// TestCheckpointSignedCanonicalForm pins the bytes of the hand-written encoder.
func TestCheckpointSignedCanonicalForm(t *testing.T) {
	e, err := domain.Parse(ev(domain.CheckpointSignedType, checkpointTwoSigs(), set("subject", `"0"`), set("source", q(domain.CheckpointSource))))
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"specversion":"1.0","id":"0193f1a2-7c4e-7b3a-9d2e-5f6a7b8c9d0e","source":"custody/integrity",` +
		`"type":"checkpoint.signed","time":"2026-03-08T06:59:59.123Z","subject":"0",` +
		`"data":{"origin":"custody.example.org/CUSTODY_EVENTS","treeSize":0,"rootHash":"` + emptyRoot + `",` +
		`"note":"custody.example.org/CUSTODY_EVENTS\n0\n` + emptyRoot + `\n\n` +
		`— custody-checkpoint X6Id/mT9iDKFZcL7+q400VVlFo82qR/MmlcA5QEQO2+qR4l1IlQZpPq3zY0Xzjf8eBvJ/lJwCtGYdC00hg4+WznJPQk=\n` +
		`— custody-2027 AAAAAAE=\n"}}`
	if string(got) != want {
		t.Errorf("canonical form\n got %s\nwant %s", got, want)
	}
}

// Rules of checkpoint.signed, as reported.
const (
	ruleOrigin      = "must be the log's origin: non-empty, without spaces, control characters or '+'"
	ruleSize        = "must be an integer of at least 0"
	ruleRoot        = "must be standard base64 with padding (44 characters) of a 32-byte hash"
	ruleNoteLong    = "must be at most 16384 bytes"
	ruleNoteFormat  = "must be a signed checkpoint in UTF-8: three lines (origin, tree size, root hash), an empty line and one or more signature lines \"— <key name> <base64 of key hash and signature>\", each line ending in a newline; key names non-empty without spaces or '+'"
	ruleNoteOrigin  = "must have the log's origin on its first line: non-empty, without spaces, control characters or '+'"
	ruleNoteSize    = "must have the tree size on its second line: a decimal integer of at least 0 without sign or leading zeros"
	ruleNoteRoot    = "must have the root hash on its third line: standard base64 with padding (44 characters) of a 32-byte hash"
	ruleNoteDiffers = "must begin with data.origin, data.treeSize and data.rootHash, one a line: the event must say what the signed text says"
)

func checkpointBadCases() []badCase {
	sig := "— custody-checkpoint X6Id/qDecofLVfMD/J5M72GLTCJ1JkrTJhy/UjY85zaIBwr8zZ0sjwPoOZlPsvrnnl/WBBSfpKqOct4o4d0Ok8KD5gg=\n"
	text := "custody/CUSTODY_EVENTS\n25960\n" + testRoot + "\n"
	note := func(s string) []byte { return goodCheckpoint(map[string]string{"note": q(s)}) }
	otherRoot := "ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLo="
	return []badCase{
		{name: "origin missing", in: goodCheckpoint(map[string]string{"origin": ""}), field: "data.origin", rule: "is required"},
		{name: "origin null", in: goodCheckpoint(map[string]string{"origin": "null"}), field: "data.origin", rule: "is required"},
		{name: "origin empty", in: goodCheckpoint(map[string]string{"origin": `""`}), field: "data.origin", rule: "must not be empty"},
		{name: "origin number", in: goodCheckpoint(map[string]string{"origin": `7`}), field: "data.origin", rule: "must be a string, not a number"},
		{name: "origin with space", in: goodCheckpoint(map[string]string{"origin": q("custody CUSTODY_EVENTS")}), field: "data.origin", rule: ruleOrigin},
		{name: "origin with plus", in: goodCheckpoint(map[string]string{"origin": q("custody+CUSTODY_EVENTS")}), field: "data.origin", rule: ruleOrigin},
		{name: "origin with tab", in: goodCheckpoint(map[string]string{"origin": q("custody\tlog")}), field: "data.origin", rule: ruleOrigin},
		{name: "origin with SSN", in: goodCheckpoint(map[string]string{"origin": q("custody/123-45-6789")}), field: "data.origin", rule: domain.RuleSSN},
		{name: "origin differs from note", in: goodCheckpoint(map[string]string{"origin": q("custody/OTHER")}), field: "data.note", rule: ruleNoteDiffers},

		{name: "treeSize missing", in: goodCheckpoint(map[string]string{"treeSize": ""}), field: "data.treeSize", rule: "is required"},
		{name: "treeSize string", in: goodCheckpoint(map[string]string{"treeSize": `"25960"`}), field: "data.treeSize", rule: "must be a JSON integer, not a string"},
		{name: "treeSize negative", in: goodCheckpoint(map[string]string{"treeSize": `-1`}), field: "data.treeSize", rule: ruleSize},
		{name: "treeSize fraction", in: goodCheckpoint(map[string]string{"treeSize": `25960.0`}), field: "data.treeSize", rule: "must be a JSON integer (no fraction or exponent) within 64 bits"},
		{name: "treeSize exponent", in: goodCheckpoint(map[string]string{"treeSize": `2.596e4`}), field: "data.treeSize", rule: "must be a JSON integer (no fraction or exponent) within 64 bits"},
		{name: "treeSize beyond 64 bits", in: goodCheckpoint(map[string]string{"treeSize": `9223372036854775808`}), field: "data.treeSize", rule: "must be a JSON integer (no fraction or exponent) within 64 bits"},
		{name: "treeSize differs from note", in: goodCheckpoint(map[string]string{"treeSize": `25961`}), field: "data.note", rule: ruleNoteDiffers},

		{name: "rootHash missing", in: goodCheckpoint(map[string]string{"rootHash": ""}), field: "data.rootHash", rule: "is required"},
		{name: "rootHash array", in: goodCheckpoint(map[string]string{"rootHash": `[]`}), field: "data.rootHash", rule: "must be a string, not an array"},
		{name: "rootHash hex", in: goodCheckpoint(map[string]string{"rootHash": q(strings.Repeat("ab", 32))}), field: "data.rootHash", rule: ruleRoot},
		{name: "rootHash unpadded", in: goodCheckpoint(map[string]string{"rootHash": q(strings.TrimSuffix(testRoot, "="))}), field: "data.rootHash", rule: ruleRoot},
		{name: "rootHash URL alphabet", in: goodCheckpoint(map[string]string{"rootHash": q(strings.ReplaceAll(testRoot, "/", "_"))}), field: "data.rootHash", rule: ruleRoot},
		{name: "rootHash non-canonical padding bits", in: goodCheckpoint(map[string]string{"rootHash": q("ypeBEsobvcr6wjGzmiPcTaeG7/gUfE5yuYB3ha/uSLt=")}), field: "data.rootHash", rule: ruleRoot},
		{name: "rootHash of 33 bytes", in: goodCheckpoint(map[string]string{"rootHash": q(testRoot[:43] + "AAAA")}), field: "data.rootHash", rule: ruleRoot},
		{name: "rootHash differs from note", in: goodCheckpoint(map[string]string{"rootHash": q(otherRoot)}), field: "data.note", rule: ruleNoteDiffers},

		{name: "note missing", in: goodCheckpoint(map[string]string{"note": ""}), field: "data.note", rule: "is required"},
		{name: "note empty", in: goodCheckpoint(map[string]string{"note": `""`}), field: "data.note", rule: "must not be empty"},
		{name: "note object", in: goodCheckpoint(map[string]string{"note": `{}`}), field: "data.note", rule: "must be a string, not an object"},
		{name: "note too long", in: note(text + "\n" + strings.Repeat(sig, domain.MaxCheckpointNote/len(sig)+1)), field: "data.note", rule: ruleNoteLong},
		{name: "note without signature", in: note(text), field: "data.note", rule: ruleNoteFormat},
		{name: "note without signature line", in: note(text + "\n"), field: "data.note", rule: ruleNoteFormat},
		{name: "note without final newline", in: note(strings.TrimSuffix(testNote, "\n")), field: "data.note", rule: ruleNoteFormat},
		{name: "note with extension line", in: note(text + "extra\n\n" + sig), field: "data.note", rule: ruleNoteFormat},
		{name: "note with two lines", in: note("custody/CUSTODY_EVENTS\n25960\n\n" + sig), field: "data.note", rule: ruleNoteFormat},
		{name: "note with CRLF", in: note(strings.ReplaceAll(testNote, "\n", "\r\n")), field: "data.note", rule: ruleNoteFormat},
		{name: "note signature without dash", in: note(text + "\n" + strings.TrimPrefix(sig, "— ")), field: "data.note", rule: ruleNoteFormat},
		{name: "note signature with hyphen", in: note(text + "\n- " + strings.TrimPrefix(sig, "— ")), field: "data.note", rule: ruleNoteFormat},
		{name: "note signature not base64", in: note(text + "\n— custody-checkpoint not!base64\n"), field: "data.note", rule: ruleNoteFormat},
		{name: "note signature only a key hash", in: note(text + "\n— custody-checkpoint X6Id/g==\n"), field: "data.note", rule: ruleNoteFormat},
		{name: "note signature key name with plus", in: note(text + "\n— custody+1 AAAAAAE=\n"), field: "data.note", rule: ruleNoteFormat},
		{name: "note empty line among signatures", in: note(testNote + "\n" + sig), field: "data.note", rule: ruleNoteFormat},
		{name: "note key name with MRN", in: note(testNote + "— MRN-0012345 AAAAAAE=\n"), field: "data.note", rule: domain.RuleMRN},
		{name: "note origin line with space", in: note(noteWith("custody log", "25960", testRoot)), field: "data.note", rule: ruleNoteOrigin},
		{name: "note size with leading zero", in: note(noteWith("custody/CUSTODY_EVENTS", "025960", testRoot)), field: "data.note", rule: ruleNoteSize},
		{name: "note size with sign", in: note(noteWith("custody/CUSTODY_EVENTS", "+25960", testRoot)), field: "data.note", rule: ruleNoteSize},
		{name: "note size negative", in: note(noteWith("custody/CUSTODY_EVENTS", "-1", testRoot)), field: "data.note", rule: ruleNoteSize},
		{name: "note size not a number", in: note(noteWith("custody/CUSTODY_EVENTS", "many", testRoot)), field: "data.note", rule: ruleNoteSize},
		{name: "note root unpadded", in: note(noteWith("custody/CUSTODY_EVENTS", "25960", strings.TrimSuffix(testRoot, "="))), field: "data.note", rule: ruleNoteRoot},
		{name: "note root differs", in: note(noteWith("custody/CUSTODY_EVENTS", "25960", otherRoot)), field: "data.note", rule: ruleNoteDiffers},

		{name: "unknown member", in: ev(domain.CheckpointSignedType, strings.TrimSuffix(validData[domain.CheckpointSignedType], "}")+`,"signature":"x"}`), field: "data.signature", rule: "unknown field"},
		{name: "data array", in: ev(domain.CheckpointSignedType, `[]`), field: "data", rule: "must be a JSON object, not an array"},
		{name: "subject not an identifier", in: valid(domain.CheckpointSignedType, set("subject", q("custody/CUSTODY_EVENTS"))), field: "subject"},
	}
}

// TestCheckpointSignedRejects runs the bad inputs through Parse (Decode rejects every
// checkpoint.signed by its type).
func TestCheckpointSignedRejects(t *testing.T) {
	names := map[string]bool{}
	for _, tc := range checkpointBadCases() {
		if names[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		names[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			e, err := domain.Parse(tc.in)
			checkRejected(t, "Parse", tc, e, err)
			if errors.Is(err, domain.ErrInternalType) {
				t.Errorf("Parse: %v matches ErrInternalType", err)
			}
			e, err = dec.Decode(tc.in)
			if !errors.Is(err, domain.ErrInternalType) || !reflect.DeepEqual(e, domain.Event{}) {
				t.Errorf("Decode: %v, want ErrInternalType", err)
			}
		})
	}
}

// Every member missing or wrong at once: every problem is reported.
func TestCheckpointSignedReportsAllProblems(t *testing.T) {
	in := ev(domain.CheckpointSignedType, checkpoint(q("a b"), "-3", q("x"), q("no note")))
	_, err := domain.Parse(in)
	got := map[string]string{}
	for _, p := range domain.Problems(err) {
		got[p.Field] = p.Rule
	}
	want := map[string]string{"data.origin": ruleOrigin, "data.treeSize": ruleSize, "data.rootHash": ruleRoot, "data.note": ruleNoteFormat}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems\n got %v\nwant %v", got, want)
	}
}

func TestCheckpointEventID(t *testing.T) {
	id := domain.CheckpointEventID("custody/CUSTODY_EVENTS", 25960, testRoot)
	if again := domain.CheckpointEventID("custody/CUSTODY_EVENTS", 25960, testRoot); again != id {
		t.Fatalf("not deterministic: %s, %s", id, again)
	}
	if c, ok := domain.NewID(id); !ok || c != id || id[14] != '8' {
		t.Fatalf("%s is not a canonical version 8 UUID", id)
	}
	seen := map[string]string{id: "base"}
	for name, other := range map[string]string{
		"origin": domain.CheckpointEventID("custody/OTHER", 25960, testRoot),
		"size":   domain.CheckpointEventID("custody/CUSTODY_EVENTS", 25961, testRoot),
		"root":   domain.CheckpointEventID("custody/CUSTODY_EVENTS", 25960, emptyRoot),
		// The parts are separated: moving a digit from the origin to the size changes the id.
		"boundary": domain.CheckpointEventID("custody/CUSTODY_EVENTS2", 5960, testRoot),
		"alert":    domain.DeterministicID("alert", "custody/CUSTODY_EVENTS", "25960", testRoot),
	} {
		if prev, dup := seen[other]; dup {
			t.Errorf("%s gives the same id as %s", name, prev)
		}
		seen[other] = name
	}
}

func TestCheckpointEvent(t *testing.T) {
	signedAt := time.Date(2026, 3, 8, 8, 0, 0, 5, time.FixedZone("CET", 3600))
	e, err := domain.CheckpointEvent(testNote, signedAt)
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Event{ID: domain.CheckpointEventID("custody/CUSTODY_EVENTS", 25960, testRoot), Source: domain.CheckpointSource,
		Type: domain.CheckpointSignedType, Time: signedAt.UTC(), Subject: "25960", DataContentType: domain.ContentType,
		Data: &domain.CheckpointSigned{Origin: "custody/CUSTODY_EVENTS", TreeSize: 25960, RootHash: testRoot, Note: testNote}}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("CheckpointEvent\n got %#v\nwant %#v", e, want)
	}
	checkRoundTripParse(t, e)

	empty, err := domain.CheckpointEvent(twoSigNote(), signedAt)
	if err != nil || empty.Subject != "0" || empty.Data.(*domain.CheckpointSigned).TreeSize != 0 {
		t.Fatalf("empty tree: %#v, %v", empty, err)
	}

	for name, tc := range map[string]struct {
		note string
		at   time.Time
		rule string
	}{
		"not a note":       {"custody/CUSTODY_EVENTS\n25960\n" + testRoot + "\n", signedAt, ruleNoteFormat},
		"size not decimal": {noteWith("custody/CUSTODY_EVENTS", "0x10", testRoot), signedAt, ruleNoteSize},
		"invalid UTF-8":    {noteWith("custody/\xff", "1", testRoot), signedAt, ruleNoteFormat},
		"too long":         {testNote + strings.Repeat("— k AAAAAAE=\n", domain.MaxCheckpointNote/13), signedAt, ruleNoteLong},
		"time before 2000": {testNote, time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), "must not be before the year 2000"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := domain.CheckpointEvent(tc.note, tc.at)
			if !errors.Is(err, domain.ErrInvalid) {
				t.Fatalf("error %v does not match ErrInvalid", err)
			}
			var rules []string
			for _, p := range domain.Problems(err) {
				rules = append(rules, p.Rule)
			}
			if !strings.Contains(strings.Join(rules, "\n"), tc.rule) {
				t.Errorf("rules %q lack %q", rules, tc.rule)
			}
		})
	}
}

func TestNewCheckpointSigned(t *testing.T) {
	for _, size := range []int64{0, 1, 25960, 1<<63 - 1} {
		n := noteWith("custody/CUSTODY_EVENTS", strconv.FormatInt(size, 10), testRoot)
		c, err := domain.NewCheckpointSigned(n)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if c.TreeSize != size || c.Origin != "custody/CUSTODY_EVENTS" || c.RootHash != testRoot || c.Note != n {
			t.Errorf("size %d: %#v", size, c)
		}
	}
	_, err := domain.NewCheckpointSigned(noteWith("custody/CUSTODY_EVENTS", "9223372036854775808", testRoot))
	if p := domain.Problems(err); len(p) != 1 || p[0].Field != "data.note" || p[0].Rule != ruleNoteSize {
		t.Errorf("size beyond 64 bits: %v", err)
	}
}

// FuzzParseCheckpoint checks, for any members, that Parse either rejects a
// checkpoint.signed with named problems, or accepts one whose members are the first
// three lines of its note, which NewCheckpointSigned reads back the same, and whose
// canonical form parses back to the same event and bytes.
func FuzzParseCheckpoint(f *testing.F) {
	f.Add("custody/CUSTODY_EVENTS", int64(25960), testRoot, testNote)
	f.Add("custody.example.org/CUSTODY_EVENTS", int64(0), emptyRoot, twoSigNote())
	f.Add("custody/CUSTODY_EVENTS", int64(25960), testRoot, noteWith("custody/CUSTODY_EVENTS", "025960", testRoot))
	f.Add("a b", int64(-1), "x", "")
	f.Fuzz(func(t *testing.T, origin string, size int64, root, note string) {
		in := ev(domain.CheckpointSignedType, checkpoint(q(origin), strconv.FormatInt(size, 10), q(root), q(note)))
		e, err := domain.Parse(in)
		if err != nil {
			probs := domain.Problems(err)
			if !errors.Is(err, domain.ErrInvalid) || len(probs) == 0 {
				t.Fatalf("Parse(%s): %v", in, err)
			}
			for _, p := range probs {
				if p.Field == "" || p.Rule == "" {
					t.Fatalf("Parse(%s): problem without field or rule: %#v", in, p)
				}
			}
			return
		}
		d := e.Data.(*domain.CheckpointSigned)
		lines := strings.SplitN(d.Note, "\n", 4)
		if len(lines) != 4 || lines[0] != d.Origin || lines[1] != strconv.FormatInt(d.TreeSize, 10) || lines[2] != d.RootHash {
			t.Fatalf("accepted %#v whose note disagrees", d)
		}
		if c, err := domain.NewCheckpointSigned(d.Note); err != nil || !reflect.DeepEqual(c, d) {
			t.Fatalf("NewCheckpointSigned(%q) = %#v, %v; want %#v", d.Note, c, err, d)
		}
		checkRoundTripParse(t, e)
	})
}
