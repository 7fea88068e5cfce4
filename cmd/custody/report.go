package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os/user"
	"reflect"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/projections"
	"github.com/custody/custody/streams"
)

// reportRequest is one run of a report, from the CLI or the HTTP API.
type reportRequest struct {
	Name    string
	Format  string // json, csv, table
	Params  projections.Params
	TZ      string
	Actor   string
	Role    string
	Via     string // cli or http
	RawArgs map[string]string
	// OnProof, if set, receives the report's integrity block (a CSV body cannot carry
	// it: the CLI prints it on stderr, the API in response headers).
	OnProof func(*projections.Proof)
}

// runReport computes a report, records its execution in the log and returns the output
// only after the log has acknowledged the report.executed event (fail closed).
func (s *session) runReport(ctx context.Context, req reportRequest) ([]byte, error) {
	if req.Params.RedactionBuffer == 0 {
		req.Params.RedactionBuffer = s.redaction
	}
	res, err := s.store.Report(ctx, req.Name, req.Params)
	if err != nil {
		return nil, err
	}
	execID := uuid.Must(uuid.NewV7()).String()
	reflect.ValueOf(res).Elem().FieldByName("Header").FieldByName("ExecutionID").SetString(execID)
	if err := s.proveReport(ctx, req, res); err != nil {
		return nil, fmt.Errorf("report %s: integrity: %w", req.Name, err)
	}
	if req.OnProof != nil {
		req.OnProof(reflect.ValueOf(res).Elem().FieldByName("Header").Interface().(projections.Header).Integrity)
	}
	var out []byte
	switch req.Format {
	case "json", "":
		out, err = json.MarshalIndent(res, "", "  ")
		out = append(out, '\n')
	case "csv":
		out, err = renderTable(res, false)
	case "table":
		out, err = renderTable(res, true)
	default:
		err = fmt.Errorf("format %q: must be json, csv or table", req.Format)
	}
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(out)
	h := reflect.ValueOf(res).Elem().FieldByName("Header").Interface().(projections.Header)
	ev := domain.Event{
		ID: execID, Source: "custody/" + req.Via, Type: domain.ReportExecutedType, Time: time.Now().UTC(),
		Subject: strings.ReplaceAll(req.Name, "-", "_"), DataContentType: domain.ContentType,
		Data: &domain.ReportExecuted{Report: req.Name, Actor: req.Actor, Role: req.Role, Via: req.Via, Parameters: req.RawArgs,
			AsOf: req.Params.AsOf.UTC(), LogPosition: h.LogPosition, OutputSHA256: hex.EncodeToString(sum[:])},
	}
	body, err := ev.MarshalJSON()
	if err != nil {
		return nil, err
	}
	r := s.reportPub.Publish(ctx, streams.Outgoing{ID: execID, Subject: streams.ReportSubjectPrefix + "executed", Data: body})
	if r.Status != streams.Stored {
		return nil, fmt.Errorf("report not released: its report.executed event was not acknowledged by the log: %v", r.Err)
	}
	return out, nil
}

// renderTable prints a report's main list as CSV or an aligned table; the retention
// report prints its recordings, then its purges.
func renderTable(res any, aligned bool) ([]byte, error) {
	var buf bytes.Buffer
	v := reflect.ValueOf(res).Elem()
	h := v.FieldByName("Header").Interface().(projections.Header)
	var sections []reflect.Value
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).Kind() == reflect.Slice {
			sections = append(sections, v.Field(i))
		}
	}
	if aligned {
		fmt.Fprintf(&buf, "# %s as of %s, log position %d, execution %s\n", h.Report, h.AsOf, h.LogPosition, h.ExecutionID)
		if in := h.Integrity; in != nil {
			fmt.Fprintf(&buf, "# integrity: log %s, tree size %d, root %s, body sha256 %s\n", in.Origin, in.TreeSize, in.RootHash, in.BodySHA256)
		}
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if f.Kind() == reflect.Int || f.Kind() == reflect.String {
				fmt.Fprintf(&buf, "# %s: %v\n", jsonName(v.Type().Field(i)), f.Interface())
			}
		}
	}
	if !aligned && len(sections) > 1 {
		return writeSections(&buf, v, sections)
	}
	for si, sec := range sections {
		if si > 0 {
			buf.WriteByte('\n')
		}
		if err := writeRows(&buf, sec, aligned); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// writeSections writes several lists as one CSV table: a "section" column naming the
// list, then the union of the lists' columns, each row filling its own.
func writeSections(buf *bytes.Buffer, v reflect.Value, sections []reflect.Value) ([]byte, error) {
	header := []string{"section"}
	index := map[string]int{}
	var names []string
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).Kind() == reflect.Slice {
			names = append(names, jsonName(v.Type().Field(i)))
		}
	}
	for _, sec := range sections {
		et := sec.Type().Elem()
		for i := 0; i < et.NumField(); i++ {
			n := jsonName(et.Field(i))
			if _, ok := index[n]; !ok {
				index[n] = len(header)
				header = append(header, n)
			}
		}
	}
	cw := csv.NewWriter(buf)
	cw.Write(header)
	for si, sec := range sections {
		et := sec.Type().Elem()
		for r := 0; r < sec.Len(); r++ {
			rec := make([]string, len(header))
			rec[0] = names[si]
			for i := 0; i < et.NumField(); i++ {
				rec[index[jsonName(et.Field(i))]] = cell(sec.Index(r).Field(i))
			}
			cw.Write(rec)
		}
	}
	cw.Flush()
	return buf.Bytes(), cw.Error()
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

func writeRows(w io.Writer, rows reflect.Value, aligned bool) error {
	et := rows.Type().Elem()
	var header []string
	for i := 0; i < et.NumField(); i++ {
		header = append(header, jsonName(et.Field(i)))
	}
	records := [][]string{header}
	for r := 0; r < rows.Len(); r++ {
		row := rows.Index(r)
		var rec []string
		for i := 0; i < et.NumField(); i++ {
			rec = append(rec, cell(row.Field(i)))
		}
		records = append(records, rec)
	}
	if aligned {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, rec := range records {
			fmt.Fprintln(tw, strings.Join(rec, "\t"))
		}
		return tw.Flush()
	}
	cw := csv.NewWriter(w)
	if err := cw.WriteAll(records); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

func cell(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return ""
		}
		return cell(v.Elem())
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = cell(v.Index(i))
		}
		return strings.Join(parts, " ")
	case reflect.Map:
		b, _ := json.Marshal(v.Interface())
		return string(b)
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	}
	return fmt.Sprint(v.Interface())
}

func reportCmd(g *globals) *cobra.Command {
	var (
		asOf, from, to, tz, format string
		asOfSeq                    uint64
		agent, interaction         string
		flagged                    string
	)
	cmd := &cobra.Command{
		Use:   "report NAME",
		Short: "Print a compliance report as of an instant and log position",
		Long: `Prints one of the reports of REPORTS.md: ` + strings.Join(projections.ReportNames, ", ") + `.

The views are first brought up to the log's last sequence. --as-of T evaluates the rules at
instant T, considering only events whose time is at or before it (default: now);
--as-of-seq N considers only the log prefix up to sequence N ("what did we know then").
Every run is recorded in the log as a report.executed event (who, which report, which
parameters, which log position, the SHA-256 of the output), and the report is printed
only after the log has acknowledged that event.`,
		Args: func(cmd *cobra.Command, args []string) error {
			// --flagged alone means true, so "--flagged false" leaves "false" as a second
			// argument: say how to write it rather than that there are two arguments.
			if len(args) == 2 && cmd.Flags().Changed("flagged") {
				if _, err := strconv.ParseBool(args[1]); err == nil {
					return fmt.Errorf("--flagged %s: write --flagged=%s (--flagged alone means true)", args[1], args[1])
				}
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			req := reportRequest{Name: args[0], Format: format, TZ: tz, Via: "cli", Role: "operator", RawArgs: map[string]string{}}
			cmd.Flags().Visit(func(f *pflag.Flag) {
				if f.Name != "data" && f.Name != "nats" {
					req.RawArgs[f.Name] = f.Value.String()
				}
			})
			if u, err := user.Current(); err == nil {
				req.Actor = u.Username
			} else {
				req.Actor = "unknown"
			}
			p, err := parseParams(args[0], asOf, asOfSeq, tz, agent, interaction, from, to, flagged)
			if err != nil {
				return err
			}
			req.Params = p
			ctx := cmd.Context()
			sess, err := g.open(ctx, connectOpts{})
			if err != nil {
				return err
			}
			defer sess.close()
			if err := sess.catchUp(ctx); err != nil {
				return err
			}
			if format == "csv" {
				req.OnProof = func(p *projections.Proof) {
					fmt.Fprintf(g.stderr, "# integrity: log %s, tree size %d, root %s, body sha256 %s\n", p.Origin, p.TreeSize, p.RootHash, p.BodySHA256)
				}
			}
			out, err := sess.runReport(ctx, req)
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&asOf, "as-of", "", "evaluate as of this instant (RFC 3339; default now)")
	cmd.Flags().Uint64Var(&asOfSeq, "as-of-seq", 0, "consider only the log up to this sequence")
	cmd.Flags().StringVar(&format, "format", "json", "json, csv or table")
	cmd.Flags().StringVar(&tz, "tz", "UTC", "time zone for printed times (IANA name)")
	cmd.Flags().StringVar(&agent, "agent", "", "access-audit: only this user")
	cmd.Flags().StringVar(&interaction, "interaction", "", "access-audit: only this interaction")
	cmd.Flags().StringVar(&from, "from", "", "access-audit: touches at or after this instant (RFC 3339)")
	cmd.Flags().StringVar(&to, "to", "", "access-audit: touches at or before this instant (RFC 3339)")
	cmd.Flags().StringVar(&flagged, "flagged", "", "access-audit: only flagged touches (--flagged), or only unflagged ones (--flagged=false)")
	cmd.Flags().Lookup("flagged").NoOptDefVal = "true"
	return cmd
}

// parseParams checks report parameters, naming the flag and the rule on error.
func parseParams(name, asOf string, asOfSeq uint64, tz, agent, interaction, from, to, flagged string) (projections.Params, error) {
	p := projections.Params{AsOfSeq: asOfSeq, Agent: agent, Interaction: interaction}
	known := false
	for _, n := range projections.ReportNames {
		known = known || n == name
	}
	if !known {
		return p, fmt.Errorf("report %q: must be one of %s", name, strings.Join(projections.ReportNames, ", "))
	}
	var err error
	if p.AsOf, err = parseInstant("--as-of", asOf, time.Now()); err != nil {
		return p, err
	}
	if p.From, err = parseInstant("--from", from, time.Time{}); err != nil {
		return p, err
	}
	if p.To, err = parseInstant("--to", to, time.Time{}); err != nil {
		return p, err
	}
	if p.Location, err = time.LoadLocation(tz); err != nil || tz == "Local" || tz == "" {
		return p, fmt.Errorf("--tz %q: must be an IANA time zone name (e.g. UTC, America/Chicago)", tz)
	}
	if agent != "" && !domain.IsIdentifier(agent) {
		return p, fmt.Errorf("--agent %q: must be 1-128 characters of A-Z a-z 0-9 _ - :", agent)
	}
	if interaction != "" && !domain.IsIdentifier(interaction) {
		return p, fmt.Errorf("--interaction %q: must be 1-128 characters of A-Z a-z 0-9 _ - :", interaction)
	}
	if flagged != "" {
		b, err := strconv.ParseBool(flagged)
		if err != nil {
			return p, fmt.Errorf("--flagged %q: must be true or false", flagged)
		}
		p.Flagged = &b
	}
	if name != projections.AccessAuditReport && (agent != "" || interaction != "" || from != "" || to != "" || flagged != "") {
		return p, fmt.Errorf("--agent, --interaction, --from, --to and --flagged apply to the access-audit report only")
	}
	return p, nil
}

func parseInstant(flag, s string, def time.Time) (time.Time, error) {
	if s == "" {
		return def, nil
	}
	t, rule := domain.ParseTime(s)
	if rule != "" {
		return time.Time{}, fmt.Errorf("%s %q: %s", flag, s, rule)
	}
	return t, nil
}
