package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/custody/custody/projections"
	"github.com/custody/custody/projections/integrity"
	"github.com/custody/custody/streams"
)

// canonicalBody is a report's body as its bodySha256 covers it: the JSON object without
// its executionId and integrity members, with the keys of every object sorted, no
// insignificant whitespace, numbers as written and no HTML escaping
// (docs/INTEGRITY.md, "Self-proving reports").
func canonicalBody(report []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(report))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("report body: %w", err)
	}
	delete(v, "executionId")
	delete(v, "integrity")
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// reportParameters are the parameters a report was computed with, in the form
// verify-report parses again: every one that changes the output.
func (s *session) reportParameters(req reportRequest, pos uint64) map[string]string {
	p := req.Params
	m := map[string]string{
		"report":           req.Name,
		"as-of":            p.AsOf.UTC().Format(time.RFC3339Nano),
		"as-of-seq":        strconv.FormatUint(pos, 10),
		"tz":               "UTC",
		"lateness":         s.lateness.String(),
		"redaction-buffer": p.RedactionBuffer.String(),
	}
	if p.Location != nil {
		m["tz"] = p.Location.String()
	}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set("agent", p.Agent)
	set("interaction", p.Interaction)
	if !p.From.IsZero() {
		m["from"] = p.From.UTC().Format(time.RFC3339Nano)
	}
	if !p.To.IsZero() {
		m["to"] = p.To.UTC().Format(time.RFC3339Nano)
	}
	if p.Flagged != nil {
		m["flagged"] = strconv.FormatBool(*p.Flagged)
	}
	if p.Offset > 0 {
		m["offset"] = strconv.Itoa(p.Offset)
	}
	if p.Limit > 0 {
		m["limit"] = strconv.Itoa(p.Limit)
	}
	return m
}

// paramsFrom parses reportParameters back.
func paramsFrom(m map[string]string) (name string, p projections.Params, lateness time.Duration, err error) {
	name = m["report"]
	seq, err := strconv.ParseUint(m["as-of-seq"], 10, 64)
	if err != nil {
		return "", p, 0, fmt.Errorf("integrity.parameters.as-of-seq %q: must be a sequence number", m["as-of-seq"])
	}
	p, err = parseParams(name, m["as-of"], seq, m["tz"], m["agent"], m["interaction"], m["from"], m["to"], m["flagged"])
	if err != nil {
		return "", p, 0, fmt.Errorf("integrity.parameters: %w", err)
	}
	if p.RedactionBuffer, err = time.ParseDuration(m["redaction-buffer"]); err != nil {
		return "", p, 0, fmt.Errorf("integrity.parameters.redaction-buffer: %w", err)
	}
	if lateness, err = time.ParseDuration(m["lateness"]); err != nil {
		return "", p, 0, fmt.Errorf("integrity.parameters.lateness: %w", err)
	}
	for k, dst := range map[string]*int{"offset": &p.Offset, "limit": &p.Limit} {
		if v, ok := m[k]; ok {
			if *dst, err = strconv.Atoi(v); err != nil {
				return "", p, 0, fmt.Errorf("integrity.parameters.%s: %w", k, err)
			}
		}
	}
	return name, p, lateness, nil
}

// proveReport sets a computed report's integrity block: the tree of the log prefix at
// its log position (waiting for the integrity projector to get there), the signed
// checkpoint of that size when this process can sign one, its parameters and the hash of
// its canonical body.
func (s *session) proveReport(ctx context.Context, req reportRequest, res any) error {
	hv := reflect.ValueOf(res).Elem().FieldByName("Header")
	h := hv.Interface().(projections.Header)
	pos := h.LogPosition
	if pos > 0 {
		if err := s.waitForTree(ctx, s.g, pos); err != nil {
			return err
		}
	}
	proof := &projections.Proof{Origin: s.g.logOrigin(), TreeSize: pos, Parameters: s.reportParameters(req, pos)}
	if pos == 0 {
		root, _ := tlog.TreeHash(0, nil)
		proof.RootHash = base64.StdEncoding.EncodeToString(root[:])
	} else {
		tree, err := integrity.OpenReadOnly(s.g.treePath())
		if err != nil {
			return err
		}
		defer tree.Close()
		root, err := tree.RootAt(int64(pos))
		if err != nil {
			return err
		}
		proof.RootHash = base64.StdEncoding.EncodeToString(root[:])
		if cp, err := s.g.checkpointAt(tree, int64(pos)); err == nil {
			proof.Checkpoint = string(cp)
		}
	}
	body, err := json.Marshal(res)
	if err != nil {
		return err
	}
	canon, err := canonicalBody(body)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(canon)
	proof.BodySHA256 = hex.EncodeToString(sum[:])
	h.Integrity = proof
	hv.Set(reflect.ValueOf(h))
	return nil
}

func verifyReportCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "verify-report FILE",
		Short: "Recompute a JSON report from the log prefix it names and confirm its proof",
		Long: `Reads a report printed in JSON (CLI or HTTP) and checks, against the log:
  1. its body: the SHA-256 of its canonical body is the bodySha256 it carries;
  2. its log: the Merkle root of the log's first treeSize events, recomputed from the
     stored bytes, is its rootHash, and its signed checkpoint (when present) verifies
     with --verify-key and names the same size and root;
  3. its content: the report recomputed from that log prefix alone, into a fresh
     store with the parameters it records, has the same canonical body.
The alerts report is checked by 1 and 2 only (its raisedAt times come from the clock of
the process that raised them, not from the log). Exit status 0 only when all pass.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			sess, err := g.connect(ctx, connectOpts{readOnly: true})
			if err != nil {
				return err
			}
			defer sess.close()
			lines, ok, err := sess.verifyReport(ctx, raw)
			if err != nil {
				return err
			}
			for _, l := range lines {
				fmt.Fprintln(g.stdout, l)
			}
			if !ok {
				fmt.Fprintln(g.stdout, "NOT OK")
				return exitError{1}
			}
			fmt.Fprintln(g.stdout, "OK")
			return nil
		},
	}
}

// verifyReport runs the three checks of verify-report and describes each.
func (s *session) verifyReport(ctx context.Context, raw []byte) ([]string, bool, error) {
	var doc struct {
		Report    string             `json:"report"`
		Integrity *projections.Proof `json:"integrity"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, false, fmt.Errorf("report: not a JSON report: %w", err)
	}
	pr := doc.Integrity
	if pr == nil {
		return nil, false, errors.New("report: no integrity block (only the JSON format carries one)")
	}
	var lines []string
	ok := true
	check := func(pass bool, what string) {
		verdict := "ok"
		if !pass {
			verdict, ok = "FAILED", false
		}
		lines = append(lines, fmt.Sprintf("%-8s %s", verdict, what))
	}

	// 1. The body.
	canon, err := canonicalBody(raw)
	if err != nil {
		return nil, false, err
	}
	sum := sha256.Sum256(canon)
	check(hex.EncodeToString(sum[:]) == pr.BodySHA256, fmt.Sprintf("body: SHA-256 %x, the report says %s", sum, pr.BodySHA256))

	// 2. The log prefix.
	root, n, err := s.prefixRoot(ctx, pr.TreeSize)
	if err != nil {
		return nil, false, err
	}
	got := base64.StdEncoding.EncodeToString(root[:])
	check(n == pr.TreeSize && got == pr.RootHash, fmt.Sprintf("log: the root of events 1 to %d is %s (the log has %d of them), the report says %s", pr.TreeSize, got, n, pr.RootHash))
	if pr.Checkpoint != "" {
		keys, err := s.g.verifiers()
		if err != nil {
			return nil, false, err
		}
		c, err := integrity.OpenCheckpoint([]byte(pr.Checkpoint), keys)
		switch {
		case err != nil:
			check(false, fmt.Sprintf("checkpoint: %v", err))
		default:
			check(uint64(c.Size) == pr.TreeSize && base64.StdEncoding.EncodeToString(c.Root[:]) == pr.RootHash,
				fmt.Sprintf("checkpoint: signed by %v for %d events, root %s", c.SignedBy, c.Size, c.Root))
		}
	} else {
		lines = append(lines, "note     the report carries no signed checkpoint (the process that ran it had no signing key)")
	}

	// 3. The content, recomputed from the log prefix alone.
	name, p, lateness, err := paramsFrom(pr.Parameters)
	if err != nil {
		return nil, false, err
	}
	if name != doc.Report {
		check(false, fmt.Sprintf("parameters: report %q, the header says %q", name, doc.Report))
		return lines, ok, nil
	}
	if name == projections.AlertsReport {
		lines = append(lines, "note     the alerts report is not recomputed: its raisedAt times are not in the log")
		return lines, ok, nil
	}
	body, err := s.recompute(ctx, name, p, lateness)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, err
		}
		// A log that cannot be replayed (a gap, a message that is no longer an event)
		// is a failed check, not an error of the command.
		check(false, "content: cannot recompute from the log: "+err.Error())
		return lines, ok, nil
	}
	rc, err := canonicalBody(body)
	if err != nil {
		return nil, false, err
	}
	rsum := sha256.Sum256(rc)
	check(hex.EncodeToString(rsum[:]) == pr.BodySHA256, fmt.Sprintf("content: recomputed from events 1 to %d, SHA-256 %x", pr.TreeSize, rsum))
	return lines, ok, nil
}

// prefixRoot recomputes the Merkle root of the log's first size events from their
// stored bytes. It returns how many of them the log has.
func (s *session) prefixRoot(ctx context.Context, size uint64) (tlog.Hash, uint64, error) {
	dir, err := os.MkdirTemp("", "custody-verify-")
	if err != nil {
		return tlog.Hash{}, 0, err
	}
	defer os.RemoveAll(dir)
	tree, err := integrity.Open(filepath.Join(dir, "tree.hashes"))
	if err != nil {
		return tlog.Hash{}, 0, err
	}
	defer tree.Close()
	if size > 0 {
		log, err := streams.OpenLog(ctx, s.js)
		if err != nil {
			return tlog.Hash{}, 0, err
		}
		errEnough := errors.New("enough")
		err = log.ReplayRaw(ctx, streams.ReplayFrom{}, func(seq uint64, subject string, _ time.Time, data []byte) error {
			if seq > size {
				return errEnough
			}
			if err := tree.Append(seq, subject, data); err != nil {
				return err // a gap: the root cannot be the signed one
			}
			if seq == size {
				return errEnough
			}
			return nil
		})
		if err != nil && !errors.Is(err, errEnough) && !errors.Is(err, integrity.ErrSequence) {
			return tlog.Hash{}, 0, err
		}
	}
	root, err := tree.Root()
	return root, uint64(tree.Size()), err
}

// recompute builds the report's view from the log prefix into a fresh store and runs
// the report there, returning its JSON.
func (s *session) recompute(ctx context.Context, name string, p projections.Params, lateness time.Duration) ([]byte, error) {
	dir, err := os.MkdirTemp("", "custody-verify-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	st, err := projections.OpenSQLite(ctx, filepath.Join(dir, "custody.db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	var projs []streams.Projector
	for _, v := range projections.ReportViews(name) {
		view, err := projections.NewView(st, projections.ViewConfig{Name: v, Silent: true, Bulk: true, Lateness: lateness, RedactionBuffer: p.RedactionBuffer})
		if err != nil {
			return nil, err
		}
		projs = append(projs, view)
	}
	if p.AsOfSeq > 0 {
		c := streams.NewConsumer(s.js, streams.NewFanout("verify-report", projs...), streams.ConsumerConfig{Ephemeral: true, Batch: 2000, Until: p.AsOfSeq})
		if err := c.CatchUp(ctx); err != nil {
			return nil, fmt.Errorf("recompute: %w", err)
		}
	}
	res, err := st.Report(ctx, name, p)
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}
