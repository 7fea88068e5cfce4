package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/custody/custody/integration/api"
	"github.com/custody/custody/projections"
)

// apiRunner serves the HTTP API's reports from the session's live views.
type apiRunner struct{ s *session }

var apiParams = map[string]bool{"as-of": true, "as-of-seq": true, "tz": true, "agent": true, "interaction": true,
	"from": true, "to": true, "flagged": true, "offset": true, "limit": true}

// Paging of access-audit rows over HTTP.
const (
	defaultPage = 1000
	maxPage     = 10000
)

func (a apiRunner) RunReport(ctx context.Context, r api.Request) ([]byte, error) {
	known := false
	for _, n := range projections.ReportNames {
		known = known || n == r.Report
	}
	if !known {
		return nil, fmt.Errorf("%w: report %q: must be one of %s", api.ErrNotFound, r.Report, strings.Join(projections.ReportNames, ", "))
	}
	raw := map[string]string{}
	for k, vs := range r.Query {
		if !apiParams[k] {
			return nil, fmt.Errorf("%w: unknown parameter %q", api.ErrBadRequest, k)
		}
		if len(vs) != 1 {
			return nil, fmt.Errorf("%w: parameter %q: give it once", api.ErrBadRequest, k)
		}
		raw[k] = vs[0]
	}
	bad := func(err error) error {
		return fmt.Errorf("%w: %s", api.ErrBadRequest, strings.ReplaceAll(err.Error(), "--", ""))
	}
	var seq uint64
	if v := raw["as-of-seq"]; v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			return nil, bad(fmt.Errorf("as-of-seq %q: must be a positive integer", v))
		}
		seq = n
	}
	tz := raw["tz"]
	if tz == "" {
		tz = "UTC"
	}
	p, err := parseParams(r.Report, raw["as-of"], seq, tz, raw["agent"], raw["interaction"], raw["from"], raw["to"], raw["flagged"])
	if err != nil {
		return nil, bad(err)
	}
	if r.Report == projections.AccessAuditReport {
		p.Limit = defaultPage
		if v := raw["limit"]; v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxPage {
				return nil, bad(fmt.Errorf("limit %q: must be an integer from 1 to %d", v, maxPage))
			}
			p.Limit = n
		}
		if v := raw["offset"]; v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, bad(fmt.Errorf("offset %q: must be a non-negative integer", v))
			}
			p.Offset = n
		}
	} else if raw["limit"] != "" || raw["offset"] != "" {
		return nil, bad(errors.New("offset and limit page the access-audit report only"))
	}
	raw["format"] = r.Format
	// Read your writes: give the live views a moment to apply what the log held when
	// the request came; past that, the report says how far it got (logPosition).
	_ = a.s.waitUntil(ctx, projections.ReportViews(r.Report), 5*time.Second)
	return a.s.runReport(ctx, reportRequest{Name: r.Report, Format: r.Format, Params: p, TZ: tz, Actor: r.Actor, Role: r.Role, Via: "http", RawArgs: raw,
		OnProof: func(pr *projections.Proof) {
			if r.Headers == nil || pr == nil {
				return
			}
			r.Headers.Set("X-Custody-Log-Origin", pr.Origin)
			r.Headers.Set("X-Custody-Tree-Size", strconv.FormatUint(pr.TreeSize, 10))
			r.Headers.Set("X-Custody-Root-Hash", pr.RootHash)
			r.Headers.Set("X-Custody-Body-SHA256", pr.BodySHA256)
		}})
}
