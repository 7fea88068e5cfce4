package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/api"
	"github.com/custody/custody/integration/genesys"
	"github.com/custody/custody/integration/siem"
	"github.com/custody/custody/projections"
	"github.com/custody/custody/streams"
)

// webhookSkew is how far a posted signature's time may lie from the server's clock.
const webhookSkew = 5 * time.Minute

// readSecret reads a key file, trimmed; it never appears in errors or logs.
func readSecret(flag, path string, min int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	key := []byte(strings.TrimSpace(string(b)))
	if len(key) < min {
		return nil, fmt.Errorf("%s: the key in %s must be at least %d characters", flag, path, min)
	}
	return key, nil
}

// webhookVerifier checks X-Compliance-Signature with the key of --webhook-key.
func webhookVerifier(key []byte) func(header string, body []byte) error {
	return func(header string, body []byte) error {
		return siem.Verify(key, header, body, time.Now(), webhookSkew)
	}
}

// ingester stores events posted to POST /v1/events: each one validated by the
// contract's decoder, known ids (in the log at any time) answered as duplicates, the
// rest published with their ids as Nats-Msg-Id.
type ingester struct {
	s  *session
	tl *projections.Timeline
}

func (in ingester) Ingest(ctx context.Context, raws []json.RawMessage) []api.IngestResult {
	bs := make([][]byte, len(raws))
	for i, r := range raws {
		bs[i] = r
	}
	return in.ingestRaw(ctx, bs)
}

func (in ingester) ingestRaw(ctx context.Context, raws [][]byte) []api.IngestResult {
	res := make([]api.IngestResult, len(raws))
	var out []streams.Outgoing
	var idx []int
	dec := domain.Decoder{}
	seen := map[string]bool{}
	for i, raw := range raws {
		res[i] = api.IngestResult{Index: i}
		e, err := dec.Decode(raw)
		if err != nil {
			res[i].Status, res[i].Reason = api.StatusRejected, err.Error()
			res[i].ID = e.ID
			continue
		}
		res[i].ID = e.ID
		if seen[e.ID] { // the same id twice in one batch
			res[i].Status = api.StatusDuplicate
			continue
		}
		seen[e.ID] = true
		o, err := streams.NewOutgoing(e)
		if err != nil {
			res[i].Status, res[i].Reason = api.StatusRejected, err.Error()
			continue
		}
		out = append(out, o)
		idx = append(idx, i)
	}
	ids := make([]string, len(out))
	for k, o := range out {
		ids[k] = o.ID
	}
	known, err := in.tl.Known(ctx, ids)
	if err != nil {
		for _, i := range idx {
			res[i].Status, res[i].Reason = api.StatusFailed, "duplicate check: "+err.Error()
		}
		return res
	}
	var send []streams.Outgoing
	var sendIdx []int
	for k, o := range out {
		if seq, ok := known[o.ID]; ok {
			res[idx[k]].Status, res[idx[k]].Seq = api.StatusDuplicate, seq
			continue
		}
		send = append(send, o)
		sendIdx = append(sendIdx, idx[k])
	}
	for k, r := range in.s.pub.PublishAll(ctx, send) {
		i := sendIdx[k]
		switch r.Status {
		case streams.Stored:
			res[i].Status, res[i].Seq = api.StatusStored, r.Seq
		case streams.Duplicate:
			res[i].Status, res[i].Seq = api.StatusDuplicate, r.Seq
		case streams.Rejected:
			if errors.Is(r.Err, streams.ErrOutcomeUnknown) { // may yet be stored: post again
				res[i].Status, res[i].Reason = api.StatusFailed, errString(r.Err)
				break
			}
			res[i].Status, res[i].Reason = api.StatusRejected, errString(r.Err)
		default:
			res[i].Status, res[i].Reason = api.StatusFailed, errString(r.Err)
		}
	}
	return res
}

func errString(err error) string {
	if err == nil {
		return "not acknowledged by the log"
	}
	return err.Error()
}

// siemRouter builds the SIEM/GRC router from --siem-config, registering its metrics.
func (s *session) siemRouter(path string, reg prometheus.Registerer, logger *slog.Logger) (*siem.Router, func(), error) {
	fc, err := siem.LoadConfig(path, os.LookupEnv)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := fc.RouterConfig(s.js, os.LookupEnv)
	if err != nil {
		return nil, nil, err
	}
	cfg.Logger, cfg.Registerer = logger, reg
	r, err := siem.New(cfg)
	if err != nil {
		siem.CloseRoutes(cfg.Routes)
		return nil, nil, err
	}
	return r, func() {
		if err := siem.CloseRoutes(cfg.Routes); err != nil && !errors.Is(err, context.Canceled) {
			logger.Warn("siem close", "err", err)
		}
	}, nil
}

// platforms ingests platform payloads posted to POST /v1/ingest/{platform}: a Genesys
// Cloud notification or EventBridge event, mapped by the Genesys adapter.
type platforms struct {
	in      ingester
	genesys *genesys.Mapper
}

func (p platforms) IngestPlatform(ctx context.Context, platform string, body []byte) ([]api.IngestResult, error) {
	switch platform {
	case "genesys":
		evs, err := p.genesys.Notification(body)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", api.ErrBadRequest, err)
		}
		return p.in.storeMapped(ctx, evs), nil
	}
	return nil, fmt.Errorf("platform %q: %w (genesys; CXone posts CloudEvents to /v1/events)", platform, api.ErrNotFound)
}

// storeMapped stores events an adapter mapped, through the same gate as posted ones.
func (in ingester) storeMapped(ctx context.Context, evs []domain.Event) []api.IngestResult {
	raws := make([][]byte, 0, len(evs))
	for _, e := range evs {
		b, _ := e.MarshalJSON() // a marshal failure is an empty body: rejected with a reason
		raws = append(raws, b)
	}
	return in.ingestRaw(ctx, raws)
}
