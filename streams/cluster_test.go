package streams_test

// Cluster mode: three nats-server instances in this process, routed on loopback, with
// custody's streams at three replicas; and the same topology as processes started by
// scripts/cluster.sh. The full-size run (100,000 events) is
//
//	go test -count=1 -run TestCluster ./streams/
//
// -short runs it at 10,000 events and skips the script.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/integration/simulate"
	"github.com/custody/custody/projections"
	"github.com/custody/custody/streams"
)

// testCluster is three in-process nats-servers routed on loopback. A node can be shut
// down and started again on the same ports and store directory.
type testCluster struct {
	t     testing.TB
	nodes []*clusterNode
	// acct is the account custody's streams live in ("$G" without accounts).
	acct string
}

type clusterNode struct {
	name        string
	clientPort  int
	clusterPort int
	storeDir    string
	// options returns a fresh copy of the node's options for every start.
	options func() *server.Options

	mu  sync.Mutex
	srv *server.Server
}

func (n *clusterNode) server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// freePorts reserves n distinct loopback ports and releases them for the servers.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// newTestCluster lays out three nodes n1..n3; build makes a node's options from its
// layout (routes to all three cluster ports, itself included: a server ignores a route
// to itself).
func newTestCluster(t testing.TB, acct string, build func(n *clusterNode, routes []string) *server.Options) *testCluster {
	t.Helper()
	ports := freePorts(t, 6)
	c := &testCluster{t: t, acct: acct}
	var routes []string
	for i := range 3 {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[3+i]))
	}
	for i := range 3 {
		n := &clusterNode{name: fmt.Sprintf("n%d", i+1), clientPort: ports[i], clusterPort: ports[3+i], storeDir: t.TempDir()}
		n.options = func() *server.Options { return build(n, routes) }
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(c.shutdown)
	return c
}

// ensureR3 creates custody's streams at three replicas, retrying for a minute while a
// fresh cluster (slow under the race detector) settles: the API's 5 s timeout is no
// refusal.
func ensureR3(ctx context.Context, js jetstream.JetStream) error {
	var err error
	for range 12 {
		if err = streams.EnsureStreams(ctx, js, streams.LogConfig{Replicas: 3}); err == nil || errors.Is(err, streams.ErrStreamSettings) {
			return err
		}
		time.Sleep(time.Second)
	}
	return err
}

// plainOptions are the options of a node without accounts or TLS: JetStream with every
// write synced before it is acknowledged.
func plainOptions(n *clusterNode, routes []string) *server.Options {
	return &server.Options{
		ServerName:        n.name,
		Host:              "127.0.0.1",
		Port:              n.clientPort,
		JetStream:         true,
		StoreDir:          n.storeDir,
		SyncAlways:        true,
		NoSigs:            true,
		NoLog:             os.Getenv("CUSTODY_TEST_NATS_LOG") == "",
		Cluster:           server.ClusterOpts{Name: "custody-test", Host: "127.0.0.1", Port: n.clusterPort},
		Routes:            server.RoutesFromStr(strings.Join(routes, ",")),
		MaxPayload:        4 << 20,
		JetStreamMaxStore: 8 << 30,
	}
}

func (c *testCluster) startAll() {
	c.t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(c.nodes))
	for i := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.start(i) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.t.Fatal(err)
	}
}

// start starts node i (again) on its ports and store directory.
func (c *testCluster) start(i int) error {
	n := c.nodes[i]
	opts := n.options()
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("%s: %w", n.name, err)
	}
	if !opts.NoLog {
		srv.ConfigureLogger()
	}
	srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("%s: not ready", n.name)
	}
	n.mu.Lock()
	n.srv = srv
	n.mu.Unlock()
	return nil
}

// stop shuts node i down and waits until it is gone.
func (c *testCluster) stop(i int) {
	n := c.nodes[i]
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

func (c *testCluster) shutdown() {
	for i := range c.nodes {
		c.stop(i)
	}
}

// url is every node's client URL, with credentials when user is set.
func (c *testCluster) url(scheme, user, pass string) string {
	var urls []string
	for _, n := range c.nodes {
		auth := ""
		if user != "" {
			auth = user + ":" + pass + "@"
		}
		urls = append(urls, fmt.Sprintf("%s://%s127.0.0.1:%d", scheme, auth, n.clientPort))
	}
	return strings.Join(urls, ",")
}

// connect opens a client that reconnects to any node, forever.
func (c *testCluster) connect(url string, opts ...nats.Option) *nats.Conn {
	c.t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond),
		nats.ReconnectJitter(50*time.Millisecond, 50*time.Millisecond), nats.Name("custody-cluster-test")}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitMeta waits until the running nodes have a JetStream meta leader and agree on it.
func (c *testCluster) waitMeta(timeout time.Duration) {
	c.t.Helper()
	waitFor(c.t, timeout, "no JetStream meta leader", func() bool {
		leaders := 0
		for _, n := range c.nodes {
			if s := n.server(); s != nil {
				if s.JetStreamIsLeader() {
					leaders++
				}
				if !s.JetStreamIsCurrent() {
					return false
				}
			}
		}
		return leaders == 1
	})
}

// streamLeader names the node leading the stream, or "".
func (c *testCluster) streamLeader(stream string) string {
	for _, n := range c.nodes {
		if s := n.server(); s != nil && s.JetStreamIsStreamLeader(c.acct, stream) {
			return n.name
		}
	}
	return ""
}

// localState is the stream's state in node i's own store.
func (c *testCluster) localState(i int, stream string) (server.StreamState, bool) {
	s := c.nodes[i].server()
	if s == nil {
		return server.StreamState{}, false
	}
	info, err := s.Jsz(&server.JSzOptions{Account: c.acct, Streams: true})
	if err != nil {
		return server.StreamState{}, false
	}
	for _, a := range info.AccountDetails {
		for _, sd := range a.Streams {
			if sd.Name == stream {
				return sd.State, true
			}
		}
	}
	return server.StreamState{}, false
}

// stepDown asks the stream's leader to hand over, to preferred when it is set.
func stepDown(nc *nats.Conn, stream, preferred string) error {
	var body []byte
	if preferred != "" {
		body = []byte(`{"placement":{"preferred":"` + preferred + `"}}`)
	}
	m, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, body, 3*time.Second)
	if err != nil {
		return err
	}
	var resp struct {
		Success bool `json:"success"`
		Error   *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return err
	}
	if resp.Error != nil {
		return errors.New(resp.Error.Description)
	}
	return nil
}

// storedMsg is one message as a node's own store holds it.
type storedMsg struct {
	Subject string    `json:"subject"`
	Seq     uint64    `json:"seq"`
	Header  []byte    `json:"hdrs"`
	Data    []byte    `json:"data"`
	Time    time.Time `json:"time"`
}

// readLeaderStore reads sequences 1..last with $JS.API.STREAM.MSG.GET, which only the
// stream leader answers, from its own store (direct gets may be answered by any
// replica). Requests are pipelined, a window at a time.
func readLeaderStore(nc *nats.Conn, stream string, last uint64) ([]storedMsg, error) {
	const window = 2048
	out := make([]storedMsg, last)
	inbox := nats.NewInbox()
	type reply struct {
		i   uint64
		msg *nats.Msg
	}
	ch := make(chan *nats.Msg, window)
	sub, err := nc.ChanSubscribe(inbox+".*", ch)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe()
	subject := "$JS.API.STREAM.MSG.GET." + stream
	for lo := uint64(1); lo <= last; lo += window {
		hi := min(lo+window-1, last)
		pending := map[uint64]bool{}
		for attempt := 0; ; attempt++ {
			for seq := lo; seq <= hi; seq++ {
				if attempt > 0 && !pending[seq] {
					continue
				}
				pending[seq] = true
				req := fmt.Appendf(nil, `{"seq":%d}`, seq)
				if err := nc.PublishRequest(subject, inbox+"."+strconv.FormatUint(seq, 10), req); err != nil {
					return nil, err
				}
			}
			timeout := time.After(5 * time.Second)
		collect:
			for len(pending) > 0 {
				select {
				case m := <-ch:
					seq, _ := strconv.ParseUint(m.Subject[len(inbox)+1:], 10, 64)
					if !pending[seq] {
						continue
					}
					var resp struct {
						Message *storedMsg `json:"message"`
						Error   *struct {
							Description string `json:"description"`
						} `json:"error"`
					}
					if err := json.Unmarshal(m.Data, &resp); err != nil {
						return nil, fmt.Errorf("sequence %d: %w", seq, err)
					}
					if resp.Error != nil || resp.Message == nil {
						return nil, fmt.Errorf("sequence %d: %v", seq, resp.Error)
					}
					out[seq-1] = *resp.Message
					delete(pending, seq)
				case <-timeout:
					break collect
				}
			}
			if len(pending) == 0 {
				break
			}
			if attempt == 3 {
				return nil, fmt.Errorf("%d sequences from %d unanswered", len(pending), lo)
			}
		}
	}
	return out, nil
}

// msgID returns the Nats-Msg-Id of a stored header block.
func msgID(hdr []byte) string {
	for _, line := range strings.Split(string(hdr), "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, jetstream.MsgIDHeader) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// digest is the SHA-256 of every message's sequence, subject, headers, body and time.
func digest(msgs []storedMsg) string {
	h := sha256.New()
	for _, m := range msgs {
		fmt.Fprintf(h, "%d %s %d %d %d\n", m.Seq, m.Subject, m.Time.UnixNano(), len(m.Header), len(m.Data))
		h.Write(m.Header)
		h.Write(m.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// simulated returns n events of simulated contact-center traffic, in arrival order,
// re-sends (the same id again) included.
func simulated(t testing.TB, n int) ([]domain.Event, []streams.Outgoing) {
	t.Helper()
	var evs []domain.Event
	stop := errors.New("enough")
	err := simulate.Generate(simulate.Config{Seed: 7, Interactions: n/8 + 10}, func(e domain.Event) error {
		evs = append(evs, e)
		if len(evs) == n {
			return stop
		}
		return nil
	})
	if err != nil && !errors.Is(err, stop) {
		t.Fatal(err)
	}
	if len(evs) < n {
		t.Fatalf("simulated %d events, want %d", len(evs), n)
	}
	out := make([]streams.Outgoing, n)
	for i, e := range evs {
		o, err := streams.NewOutgoing(e)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = o
	}
	return evs, out
}

// supervised runs a consume loop as a process supervisor would: it starts the loop
// again after an error, and after a stall (behind the log with no progress for
// stallAfter), counting both and keeping the last error.
type supervised struct {
	restarts, stalls atomic.Int64
	mu               sync.Mutex
	lastErr          error
}

const stallAfter = 5 * time.Second

// run runs fn until ctx ends. position reports the loop's checkpoint and the log's last
// sequence.
func (s *supervised) run(ctx context.Context, fn func(context.Context) error, position func() (cp, last uint64)) {
	for ctx.Err() == nil {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- fn(rctx) }()
		tick := time.NewTicker(time.Second)
		var err error
		var seen uint64
		since := time.Now()
	watch:
		for {
			select {
			case err = <-done:
				break watch
			case <-tick.C:
				cp, last := position()
				if cp != seen || cp >= last {
					seen, since = cp, time.Now()
				} else if time.Since(since) > stallAfter {
					s.stalls.Add(1)
					cancel()
					<-done
					break watch
				}
			}
		}
		tick.Stop()
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.restarts.Add(1)
			s.mu.Lock()
			s.lastErr = err
			s.mu.Unlock()
			sleepCtx(ctx, 200*time.Millisecond)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// TestClusterPublishUnderLeaderMovesAndRestarts publishes simulated traffic through
// custody's publisher (atomic batches and one by one, alternating) into an R3 cluster
// while the events stream's leader is moved every three seconds (one with -short) and one node is shut down
// and started again twice, with the five views following the log on durable consumers.
// Afterwards every replica holds the same messages, every acknowledgement names the
// sequence that holds its event, every id is stored exactly once, and every view's
// report equals a recomputation from the published events.
func TestClusterPublishUnderLeaderMovesAndRestarts(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	began := time.Now()
	c := newTestCluster(t, "$G", plainOptions)
	c.startAll()
	c.waitMeta(30 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	admin := c.connect(c.url("nats", "", ""))
	js, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := ensureR3(ctx, js); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	if r := s.CachedInfo().Config.Replicas; r != 3 {
		t.Fatalf("replicas %d", r)
	}
	events, msgs := simulated(t, n)
	t.Logf("cluster up and %d events simulated in %s", n, time.Since(began).Round(time.Millisecond))

	// The views follow the log while it is written, as custody serve runs them, under a
	// supervisor that restarts a loop after an error or a stall: custody serve has none
	// today, and needs one (or the fix TestClusterConsumerSurvivesLeaderRestart waits
	// for), because a node restart can end or stall a durable consume loop.
	store, err := projections.OpenSQLite(ctx, filepath.Join(t.TempDir(), "custody.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	viewConn := c.connect(c.url("nats", "", ""))
	viewJS, err := jetstream.New(viewConn)
	if err != nil {
		t.Fatal(err)
	}
	vctx, stopViews := context.WithCancel(ctx)
	var views sync.WaitGroup
	var viewSup supervised
	for _, name := range projections.ViewNames {
		v, err := projections.NewView(store, projections.ViewConfig{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		views.Add(1)
		go func() {
			defer views.Done()
			viewSup.run(vctx, streams.NewConsumer(viewJS, v, streams.ConsumerConfig{MaxWait: 250 * time.Millisecond, Batch: 1000}).Run,
				func() (uint64, uint64) {
					cp, _ := v.Checkpoint(vctx)
					ictx, cancel := context.WithTimeout(vctx, 2*time.Second)
					defer cancel()
					info, err := s.Info(ictx)
					if err != nil {
						return cp, cp
					}
					return cp, info.State.LastSeq
				})
		}()
	}
	defer func() { stopViews(); views.Wait() }()

	// The publisher's connection prefers n2, the node that is restarted.
	pubConn := c.connect(strings.Join(slices.Insert(strings.Split(c.url("nats", "", ""), ","), 0, fmt.Sprintf("nats://127.0.0.1:%d", c.nodes[1].clientPort)), ","), nats.DontRandomize())
	// A fresh publisher for every round: nats.go keeps an asynchronous publish whose
	// acknowledgement never comes in its pending table until the connection reconnects,
	// because NewPublisher sets no WithPublishAsyncTimeout; after 2 × MaxInFlight lost
	// acknowledgements (a few leader moves) every later publish of that publisher stalls
	// and fails. TestPublisherForgetsLostAcks shows it; the fix belongs in publish.go.
	newPublisher := func(atomicBatch int) *streams.Publisher {
		// An acknowledgement lost in a leader move is retried after AckTimeout: 2 s
		// instead of the default 10 s keeps the run short; the retry is the same.
		p, err := streams.NewPublisher(pubConn, streams.PublisherConfig{AtomicBatch: atomicBatch, AckTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	// Chaos: leader moves every three seconds while publishing; node n2 restarted when a
	// quarter and when three fifths of the events are in. The publisher waits at half
	// and at nine tenths for the restart before it, so both happen under load.
	var progress atomic.Int64
	restarted := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	pubDone := make(chan struct{})
	moveEvery := 3 * time.Second
	if testing.Short() {
		moveEvery = time.Second
	}
	var moves, moveErrs atomic.Int64
	var lastMoveErr atomic.Value
	var chaos sync.WaitGroup
	chaos.Add(2)
	go func() {
		defer chaos.Done()
		tick := time.NewTicker(moveEvery)
		defer tick.Stop()
		for {
			select {
			case <-pubDone:
				return
			case <-tick.C:
			}
			if err := stepDown(admin, streams.EventsStream, ""); err != nil {
				moveErrs.Add(1)
				lastMoveErr.Store(err.Error())
			} else {
				moves.Add(1)
			}
		}
	}()
	var downFor [2]time.Duration
	go func() {
		defer chaos.Done()
		for k, at := range []int64{int64(n) / 4, int64(n) * 3 / 5} {
			for progress.Load() < at {
				time.Sleep(10 * time.Millisecond)
			}
			t0 := time.Now()
			leader := c.streamLeader(streams.EventsStream)
			c.stop(1)
			time.Sleep(time.Second)
			if err := c.start(1); err != nil {
				t.Error(err)
			}
			downFor[k] = time.Since(t0)
			t.Logf("restart %d of n2 at %d events (stream leader was %s), down %s", k+1, at, leader, downFor[k].Round(time.Millisecond))
			close(restarted[k])
		}
	}()

	// Publish in chunks, alternating atomic batches and one-by-one publishing. Whatever
	// ends without an outcome is published again with the same ids.
	// Atomic batches get what custody publish sends them: ids seen earlier in the input
	// are dropped before the log (ARCHITECTURE.md step 6); a batch holding a known id
	// would be refused whole and re-sent event by event. One-by-one chunks send the
	// traffic's re-sends as they come, for the log to deduplicate.
	results := make([]streams.Result, n)
	firstOf := map[string]int{}
	chunk := n / 20
	var republished, rounds, dropped int
	pubStart := time.Now()
	for lo := 0; lo < n; lo += chunk {
		if lo >= n/2 {
			<-restarted[0]
		}
		if lo >= n*9/10 {
			<-restarted[1]
			for moves.Load() < 3 && ctx.Err() == nil { // at least three leader moves under load
				time.Sleep(50 * time.Millisecond)
			}
		}
		hi := min(lo+chunk, n)
		atomicBatch := streams.MaxAtomicBatch
		if (lo/chunk)%3 == 2 {
			atomicBatch = 0
		}
		idx := make([]int, 0, hi-lo)
		var known []int
		for i := lo; i < hi; i++ {
			if _, seen := firstOf[msgs[i].ID]; !seen {
				firstOf[msgs[i].ID] = i
			} else if atomicBatch > 0 {
				known = append(known, i)
				continue
			}
			idx = append(idx, i)
		}
		for round := 0; len(idx) > 0; round++ {
			if round == 10 {
				t.Fatalf("events %d..%d: %d still without an outcome after %d rounds: %v", lo, hi, len(idx), round, results[idx[0]].Err)
			}
			if round > 0 {
				republished += len(idx)
				rounds++
			}
			batch := make([]streams.Outgoing, len(idx))
			for j, i := range idx {
				batch[j] = msgs[i]
			}
			var again []int
			for j, r := range newPublisher(atomicBatch).PublishAll(ctx, batch) {
				results[idx[j]] = r
				if r.Status == streams.Rejected {
					again = append(again, idx[j])
				}
			}
			idx = again
		}
		for _, i := range known {
			results[i] = streams.Result{Status: streams.Duplicate, Seq: results[firstOf[msgs[i].ID]].Seq}
		}
		dropped += len(known)
		progress.Store(int64(hi))
	}
	pubTook := time.Since(pubStart)
	close(pubDone)
	chaos.Wait()
	st := pubConn.Stats()
	t.Logf("published %d events in %s (%.0f events/s): %d leader moves (%d refused: %v), 2 restarts of n2, %d events re-published in %d rounds, %d known ids dropped before atomic batches, %d messages sent, %d reconnects",
		n, pubTook.Round(time.Millisecond), float64(n)/pubTook.Seconds(), moves.Load(), moveErrs.Load(), lastMoveErr.Load(), republished, rounds, dropped, st.OutMsgs, st.Reconnects)
	if moves.Load() < 3 {
		t.Errorf("only %d leader moves happened while publishing", moves.Load())
	}

	// Every replica converges on the same last sequence and count.
	var last uint64
	waitFor(t, 60*time.Second, "replicas did not converge", func() bool {
		var states []server.StreamState
		for i := range c.nodes {
			st, ok := c.localState(i, streams.EventsStream)
			if !ok {
				return false
			}
			states = append(states, st)
		}
		for _, st := range states[1:] {
			if st.LastSeq != states[0].LastSeq || st.Msgs != states[0].Msgs || st.FirstSeq != states[0].FirstSeq {
				return false
			}
		}
		last = states[0].LastSeq
		return states[0].Msgs == states[0].LastSeq
	})

	// The same content in every node's own store: each node in turn leads the stream
	// and serves every sequence from its store.
	var content [][]storedMsg
	readStart := time.Now()
	for i, node := range c.nodes {
		waitFor(t, 30*time.Second, "leader move to "+node.name, func() bool {
			if c.streamLeader(streams.EventsStream) == node.name {
				return true
			}
			_ = stepDown(admin, streams.EventsStream, node.name)
			time.Sleep(200 * time.Millisecond)
			return c.streamLeader(streams.EventsStream) == node.name
		})
		got, err := readLeaderStore(admin, streams.EventsStream, last)
		if err != nil {
			t.Fatalf("%s: %v", node.name, err)
		}
		if c.streamLeader(streams.EventsStream) != node.name {
			t.Fatalf("the leader moved away from %s while its store was read", node.name)
		}
		content = append(content, got)
		t.Logf("%s: last sequence %d, SHA-256 %s", node.name, last, digest(got)[:16])
		if i > 0 && digest(got) != digest(content[0]) {
			for j := range got {
				a, b := content[0][j], got[j]
				if a.Subject != b.Subject || !bytes.Equal(a.Header, b.Header) || !bytes.Equal(a.Data, b.Data) || !a.Time.Equal(b.Time) {
					t.Fatalf("sequence %d differs between n1 and %s", j+1, node.name)
				}
			}
			t.Fatalf("%s differs from n1", node.name)
		}
	}
	t.Logf("read %d messages from each of the three stores in %s", last, time.Since(readStart).Round(time.Millisecond))

	// Every id published is stored exactly once, and every acknowledgement names the
	// sequence that holds its event.
	seqOf := map[string]uint64{}
	for _, m := range content[0] {
		id := msgID(m.Header)
		if prev, dup := seqOf[id]; dup {
			t.Fatalf("id %s stored twice, at %d and %d", id, prev, m.Seq)
		}
		seqOf[id] = m.Seq
		ev, err := domain.Parse(m.Data)
		if err != nil || ev.ID != id {
			t.Fatalf("sequence %d: id %q, body %v", m.Seq, id, err)
		}
	}
	unique := map[string]bool{}
	var stored, dups int
	for i, r := range results {
		id := msgs[i].ID
		unique[id] = true
		switch r.Status {
		case streams.Stored:
			stored++
		case streams.Duplicate:
			dups++
		default:
			t.Fatalf("event %d (%s): %s: %v", i, id, r.Status, r.Err)
		}
		if seq, ok := seqOf[id]; !ok {
			t.Fatalf("event %s acknowledged at %d is not in the log", id, r.Seq)
		} else if seq != r.Seq {
			t.Fatalf("event %s acknowledged at %d, stored at %d", id, r.Seq, seq)
		}
	}
	if len(seqOf) != len(unique) {
		t.Fatalf("the log holds %d ids, %d were published", len(seqOf), len(unique))
	}
	t.Logf("%d events published: %d stored, %d duplicates (%d re-sends in the traffic); %d distinct ids = %d messages on every replica",
		n, stored, dups, n-len(unique), len(unique), last)

	// The views catch up, then equal a recomputation from the published events in the
	// order the log acknowledged them.
	caughtUp := func() bool {
		for _, name := range projections.ViewNames {
			cp, err := store.Checkpoint(ctx, name)
			if err != nil || cp < last {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(60 * time.Second); !caughtUp(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			for _, name := range projections.ViewNames {
				cp, _ := store.Checkpoint(ctx, name)
				ci, err := s.Consumer(ctx, "custody-"+name)
				if err != nil {
					t.Logf("view %s at %d; consumer: %v", name, cp, err)
					continue
				}
				i := ci.CachedInfo()
				t.Logf("view %s at %d of %d; consumer delivered %d, ack floor %d, pending %d, ack pending %d, redelivered %d, waiting %d, leader %s",
					name, cp, last, i.Delivered.Stream, i.AckFloor.Stream, i.NumPending, i.NumAckPending, i.NumRedelivered, i.NumWaiting, i.Cluster.Leader)
			}
			if os.Getenv("CUSTODY_TEST_STACKS") != "" {
				var buf bytes.Buffer
				pprof.Lookup("goroutine").WriteTo(&buf, 2)
				for _, g := range strings.Split(buf.String(), "\n\n") {
					if strings.Contains(g, "streams.(*Consumer)") || strings.Contains(g, "jetstream.(*pullSubscription)") || strings.Contains(g, "supervised") {
						t.Log(g)
					}
				}
			}
			viewSup.mu.Lock()
			t.Fatalf("views did not catch up within 60 s of the last publish; consume loops restarted %d times (last error: %v), %d stalls", viewSup.restarts.Load(), viewSup.lastErr, viewSup.stalls.Load())
		}
	}
	stopViews()
	views.Wait()
	viewSup.mu.Lock()
	t.Logf("views caught up %s after start; the supervisor restarted consume loops %d times after an error (last: %v) and %d times after a stall of %s",
		time.Since(began).Round(time.Millisecond), viewSup.restarts.Load(), viewSup.lastErr, viewSup.stalls.Load(), stallAfter)
	viewSup.mu.Unlock()
	compareViews(t, ctx, store, events, results)
	t.Logf("total %s", time.Since(began).Round(time.Millisecond))
}

// viewTypes are the event types each view keeps (projections/views.go, ADR 0004).
var viewTypes = map[string][]domain.Type{
	projections.AccessAuditView: {domain.InteractionStartedType, domain.InteractionClassifiedType, domain.AgentAssignedType,
		domain.PHIAccessedType, domain.InteractionEndedType, domain.TrainingCompletedType, domain.TrainingExpiredType},
	projections.ConsentView: {domain.InteractionStartedType, domain.InteractionClassifiedType, domain.ConsentCapturedType,
		domain.ConsentDeclinedType, domain.PHIAccessedType, domain.RecordingStoredType, domain.InteractionEndedType},
	projections.RetentionView: {domain.RecordingStoredType, domain.RedactionRequestedType, domain.RedactionCompletedType, domain.RecordPurgedType},
	projections.ExposureView: {domain.InteractionStartedType, domain.InteractionClassifiedType, domain.AgentAssignedType,
		domain.PHIAccessedType, domain.RedactionRequestedType, domain.RedactionCompletedType},
	projections.UnauthorizedView: {domain.InteractionClassifiedType, domain.AgentAssignedType, domain.PHIAccessedType},
}

// compareViews recomputes five reports with domain.Ledger straight from the published
// events, ordered by the sequence each acknowledgement named (the first of an id kept,
// late events left out as the views leave them out), and compares them with the reports
// of the views the cluster fed. The alerts report is not compared: its raisedAt is the
// wall clock of the live views.
func compareViews(t *testing.T, ctx context.Context, store *projections.Store, events []domain.Event, results []streams.Result) {
	t.Helper()
	order := make([]int, 0, len(events))
	seen := map[uint64]bool{}
	for i, r := range results {
		if !seen[r.Seq] {
			seen[r.Seq] = true
			order = append(order, i)
		}
	}
	sort.Slice(order, func(a, b int) bool { return results[order[a]].Seq < results[order[b]].Seq })
	var asOf, maxTime time.Time
	late := make([]bool, len(order))
	for k, i := range order {
		e := events[i]
		late[k] = !maxTime.IsZero() && e.Time.Before(maxTime.Add(-projections.DefaultLateness))
		if e.Time.After(maxTime) {
			maxTime = e.Time
		}
	}
	asOf = maxTime
	ledgerOf := func(view string, keepLate bool) *domain.Ledger {
		l := domain.NewLedger()
		for k, i := range order {
			e := events[i]
			if slices.Contains(viewTypes[view], e.Type) && (keepLate || !late[k]) && !e.Time.After(asOf) {
				l.Add(e)
			}
		}
		return l
	}
	ft := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	want := map[string]any{}

	l := ledgerOf(projections.UnauthorizedView, false)
	unauth := []projections.UnauthorizedAgent{}
	for _, a := range l.Agents() {
		if ids := l.Count(a, asOf, asOf); len(ids) > 0 {
			unauth = append(unauth, projections.UnauthorizedAgent{AgentID: a, Count: len(ids), Interactions: ids})
		}
	}
	sort.SliceStable(unauth, func(i, j int) bool {
		if unauth[i].Count != unauth[j].Count {
			return unauth[i].Count > unauth[j].Count
		}
		return unauth[i].AgentID < unauth[j].AgentID
	})
	want[projections.UnauthorizedReport] = unauth

	l = ledgerOf(projections.ConsentView, false)
	consent := projections.ConsentResult{Violations: []projections.ConsentViolation{}}
	for _, id := range l.Interactions() {
		if !l.NeedsConsent(id, asOf) {
			continue
		}
		consent.Required++
		if l.HasConsent(id, asOf) {
			consent.Captured++
		}
		if f, ok := l.ConsentViolation(id, asOf); ok {
			consent.Violations = append(consent.Violations, projections.ConsentViolation{InteractionID: id, Reasons: f.Reasons})
		}
	}
	consent.Rate = domain.Rate(int64(consent.Captured), int64(consent.Required))
	want[projections.ConsentReport] = []any{consent.Required, consent.Captured, consent.Rate, consent.Violations}

	l = ledgerOf(projections.RetentionView, false)
	recs, purges := []projections.RetentionRecording{}, []projections.RetentionPurge{}
	for _, rid := range l.Recordings() {
		st, ok := l.Recording(rid, asOf)
		if !ok {
			continue
		}
		recs = append(recs, projections.RetentionRecording{RecordingID: rid, InteractionID: st.InteractionID, Kind: st.Kind,
			StoredAt: ft(st.StoredAt), DueAt: ft(st.DueAt), LegalHold: st.LegalHold, Status: st.Status, Redaction: st.Redaction})
	}
	for _, e := range l.Purges(asOf) {
		d := e.Data.(*domain.RecordPurged)
		purges = append(purges, projections.RetentionPurge{RecordingID: d.RecordingID, OperatorID: d.OperatorID, PurgedAt: ft(e.Time), RecordCount: d.RecordCount, Reason: d.Reason})
	}
	want[projections.RetentionReport] = []any{recs, purges}

	l = ledgerOf(projections.ExposureView, false)
	exposure := []projections.ExposureAgent{}
	for _, a := range l.Agents() {
		x, ok := l.Exposure(a, asOf)
		if !ok {
			continue
		}
		exposure = append(exposure, projections.ExposureAgent{AgentID: a, EPHIInteractions: x.EPHIInteractions, UnauthorizedInteractions: x.UnauthorizedInteractions,
			PendingRedactionViews: x.PendingRedactionViews, ByInteractionType: x.ByInteractionType, ByChannel: x.ByChannel})
	}
	want[projections.ExposureReport] = exposure

	l = ledgerOf(projections.AccessAuditView, true)
	touches := l.Touches(asOf)
	sort.Slice(touches, func(i, j int) bool {
		a, b := touches[i], touches[j]
		switch {
		case !a.Event.Time.Equal(b.Event.Time):
			return a.Event.Time.Before(b.Event.Time)
		case a.InteractionID != b.InteractionID:
			return a.InteractionID < b.InteractionID
		case a.AgentID != b.AgentID:
			return a.AgentID < b.AgentID
		case a.Action != b.Action:
			return a.Action < b.Action
		}
		return a.Event.ID < b.Event.ID
	})
	rows := []projections.AuditRow{}
	for _, tc := range touches {
		var ch, class *string
		ephi := false
		if v := l.Channel(tc.InteractionID, asOf); v != "" {
			ch = &v
		}
		if cl, ok := l.Classification(tc.InteractionID, asOf); ok {
			v := cl.DataClassification
			class, ephi = &v, domain.IsEPHI(v)
		}
		auth := l.Authorized(tc.AgentID, tc.InteractionID, asOf)
		rows = append(rows, projections.AuditRow{Time: ft(tc.Event.Time), AgentID: tc.AgentID, InteractionID: tc.InteractionID, Action: tc.Action,
			Channel: ch, Classification: class, Authorized: auth, Flagged: ephi && !auth, EventID: tc.Event.ID})
	}
	want[projections.AccessAuditReport] = []any{len(rows), rows}

	for _, name := range []string{projections.UnauthorizedReport, projections.ConsentReport, projections.RetentionReport, projections.ExposureReport, projections.AccessAuditReport} {
		r, err := store.Report(ctx, name, projections.Params{AsOf: asOf})
		if err != nil {
			t.Fatal(err)
		}
		var got any
		size := 0
		switch r := r.(type) {
		case *projections.UnauthorizedResult:
			got, size = r.Agents, len(r.Agents)
		case *projections.ConsentResult:
			got, size = []any{r.Required, r.Captured, r.Rate, r.Violations}, r.Required
		case *projections.RetentionResult:
			got, size = []any{r.Recordings, r.Purges}, len(r.Recordings)+len(r.Purges)
		case *projections.ExposureResult:
			got, size = r.Agents, len(r.Agents)
		case *projections.AuditResult:
			got, size = []any{r.Total, r.Rows}, r.Total
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want[name])
		if !bytes.Equal(g, w) {
			t.Errorf("report %s: the view fed by the cluster differs from the recomputation (%d vs %d bytes)", name, len(g), len(w))
			continue
		}
		if size == 0 {
			t.Errorf("report %s is empty: the comparison proves nothing", name)
		}
		t.Logf("report %s equals the recomputation (%d rows, %d bytes)", name, size, len(g))
	}
}

// TestClusterQuorumLoss stops two of the three nodes: a publish must then fail within
// its bounds, loudly, and report nothing stored. With a quorum back, publishing the same
// events again stores each exactly once (a first attempt the old leader had written may
// be committed once the quorum returns: it is then reported a duplicate, never lost and
// never twice).
func TestClusterQuorumLoss(t *testing.T) {
	c := newTestCluster(t, "$G", plainOptions)
	c.startAll()
	c.waitMeta(30 * time.Second)
	ctx := context.Background()
	nc := c.connect(c.url("nats", "", ""))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ensureR3(ctx, js); err != nil {
		t.Fatal(err)
	}
	before := consentEvents(t, 100)
	pub, err := streams.NewPublisher(nc, streams.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if got := count(pub.PublishAll(ctx, before)); got[streams.Stored] != 100 {
		t.Fatalf("with three nodes: %v", got)
	}

	// The leader stays up without its followers: it takes writes it cannot commit.
	waitFor(t, 30*time.Second, "leader move to n1", func() bool {
		if c.streamLeader(streams.EventsStream) != "n1" {
			_ = stepDown(nc, streams.EventsStream, "n1")
			time.Sleep(200 * time.Millisecond)
		}
		return c.streamLeader(streams.EventsStream) == "n1"
	})
	c.stop(1)
	c.stop(2)
	const ackTimeout, retries = 2 * time.Second, 1
	bound := time.Duration(retries+1)*ackTimeout + 2*time.Second
	single, err := streams.NewPublisher(nc, streams.PublisherConfig{AckTimeout: ackTimeout, Retries: retries})
	if err != nil {
		t.Fatal(err)
	}
	batched, err := streams.NewPublisher(nc, streams.PublisherConfig{AckTimeout: ackTimeout, Retries: retries, AtomicBatch: 50})
	if err != nil {
		t.Fatal(err)
	}
	during := consentEvents(t, 60)
	failed := map[string]error{}
	for _, tc := range []struct {
		name string
		pub  *streams.Publisher
		msgs []streams.Outgoing
	}{{"one by one", single, during[:10]}, {"atomic batch", batched, during[10:]}} {
		t0 := time.Now()
		res := tc.pub.PublishAll(ctx, tc.msgs)
		took := time.Since(t0)
		for i, r := range res {
			if r.Status != streams.Rejected || r.Err == nil {
				t.Fatalf("%s without a quorum: event %d reported %s (%v)", tc.name, i, r.Status, r.Err)
			}
			failed[tc.msgs[i].ID] = r.Err
		}
		if took > bound {
			t.Errorf("%s without a quorum: the failure took %s, bound %s", tc.name, took.Round(time.Millisecond), bound)
		}
		t.Logf("%s without a quorum: all %d events failed in %s: %v", tc.name, len(res), took.Round(time.Millisecond), res[0].Err)
	}

	// One node back: a quorum of two.
	if err := c.start(1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "no stream leader with two nodes", func() bool { return c.streamLeader(streams.EventsStream) != "" })
	var stored, dups int
	waitFor(t, 30*time.Second, "publishing with two nodes", func() bool {
		res := pub.PublishAll(ctx, during)
		stored, dups = 0, 0
		for _, r := range res {
			switch r.Status {
			case streams.Stored:
				stored++
			case streams.Duplicate:
				dups++
			}
		}
		return stored+dups == len(during)
	})
	t.Logf("with two nodes back: %d stored, %d duplicates (first attempts committed once the quorum returned)", stored, dups)

	if err := c.start(2); err != nil {
		t.Fatal(err)
	}
	want := uint64(len(before) + len(during))
	waitFor(t, 30*time.Second, "replicas did not converge", func() bool {
		for i := range c.nodes {
			if st, ok := c.localState(i, streams.EventsStream); !ok || st.LastSeq != want || st.Msgs != want {
				return false
			}
		}
		return true
	})
	ids := map[string]int{}
	waitFor(t, 30*time.Second, "no replay of the log", func() bool {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		clear(ids)
		log, err := streams.OpenLog(rctx, js)
		if err != nil {
			return false
		}
		return log.Replay(rctx, streams.ReplayFrom{}, func(s domain.Stored) error { ids[s.Event.ID]++; return nil }) == nil
	})
	for _, m := range append(before, during...) {
		if ids[m.ID] != 1 {
			t.Fatalf("event %s stored %d times", m.ID, ids[m.ID])
		}
	}
	// A publish whose outcome was unknown must say so: the old leader may have written
	// it, and it is committed when the quorum returns. A retry that meets the first
	// attempt still pending gets "duplicate message id is in process" (err_code 10158),
	// which is no refusal.
	var refusedYetStored int
	for id, err := range failed {
		if ids[id] == 1 && !errors.Is(err, streams.ErrOutcomeUnknown) {
			refusedYetStored++
		}
	}
	t.Logf("every node holds %d messages, each event once; %d of the %d events that failed without a quorum were stored once it returned, %d of them reported as refused by the log",
		want, dups, len(failed), refusedYetStored)
	if refusedYetStored > 0 {
		t.Errorf("%d events reported refused by the log were stored (err_code 10158 must be an unknown outcome, retried)", refusedYetStored)
	}
}

// TestPublisherForgetsLostAcks: an acknowledgement that never comes must not take a slot
// of the publisher for good. Without jetstream.WithPublishAsyncTimeout, nats.go keeps
// every unanswered publish in its pending table until the connection reconnects; after
// 2 × MaxInFlight of them each later publish stalls ("too many outstanding async
// published messages"), as leader moves that lose acknowledgements showed.
func TestPublisherForgetsLostAcks(t *testing.T) {
	e, nc, _ := startLog(t, t.TempDir())
	defer stopLog(e, nc)
	// A subscriber that never answers: publishes to it are never acknowledged.
	sub, err := nc.SubscribeSync("void.>")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	pub, err := streams.NewPublisher(nc, streams.PublisherConfig{MaxInFlight: 2, AckTimeout: 100 * time.Millisecond, Retries: 1, RetryWait: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	lost := make([]streams.Outgoing, 4)
	for i := range lost {
		lost[i] = streams.Outgoing{ID: fmt.Sprintf("lost-%d", i), Subject: "void.x", Data: []byte("{}")}
	}
	for _, r := range pub.PublishAll(context.Background(), lost) {
		if r.Status != streams.Rejected {
			t.Fatalf("an unanswered publish reported %s", r.Status)
		}
	}
	if r := pub.Publish(context.Background(), consentEvents(t, 1)[0]); r.Status != streams.Stored {
		t.Fatalf("after %d unanswered publishes a valid event is %s: %v", len(lost), r.Status, r.Err)
	}
}

// recorder is a projector that keeps sequences in memory.
type recorder struct {
	name string
	mu   sync.Mutex
	cp   uint64
	ids  []string
}

func (r *recorder) Name() string { return r.name }

func (r *recorder) Checkpoint(context.Context) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cp, nil
}

func (r *recorder) Apply(_ context.Context, batch []domain.Stored) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range batch {
		if s.Seq != r.cp+1 {
			return fmt.Errorf("%s: applied %d, got %d", r.name, r.cp, s.Seq)
		}
		r.cp = s.Seq
		r.ids = append(r.ids, s.Event.ID)
	}
	return nil
}

func (r *recorder) position() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cp
}

// TestClusterConsumerSurvivesLeaderRestart: a durable consume loop must keep following
// the log when the node leading its consumer restarts: a pull request the restarted
// leader held is lost without an error (the loop's short NextMaxWait restarts nats.go's
// heartbeat check on every call), and deliveries lost with the leader show as a skip in
// sequences. The loop notices the stall (no delivery while the log holds more) and the
// skip over sequences the log holds, and makes its consumer again at its checkpoint.
func TestClusterConsumerSurvivesLeaderRestart(t *testing.T) {
	c := newTestCluster(t, "$G", plainOptions)
	c.startAll()
	c.waitMeta(30 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nc := c.connect(c.url("nats", "", ""))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ensureR3(ctx, js); err != nil {
		t.Fatal(err)
	}
	pub, err := streams.NewPublisher(nc, streams.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{name: "follower"}
	runErr := make(chan error, 1)
	go func() {
		runErr <- streams.NewConsumer(js, rec, streams.ConsumerConfig{MaxWait: 250 * time.Millisecond}).Run(ctx)
	}()
	// Publish while the loop follows; put the consumer's leader on n2 and restart n2
	// while the loop is behind, three times.
	consumerLeader := func() string {
		ci, err := js.Consumer(ctx, streams.EventsStream, "custody-"+rec.name)
		if err != nil || ci.CachedInfo().Cluster == nil {
			return ""
		}
		return ci.CachedInfo().Cluster.Leader
	}
	var total uint64
	for round := range 3 {
		msgs := consentEvents(t, 3000)
		if got := count(pub.PublishAll(ctx, msgs)); got[streams.Stored] != len(msgs) {
			t.Fatalf("round %d: %v", round, got)
		}
		total += uint64(len(msgs))
		waitFor(t, 20*time.Second, "consumer leader move to n2", func() bool {
			if consumerLeader() != "n2" {
				_, _ = nc.Request("$JS.API.CONSUMER.LEADER.STEPDOWN."+streams.EventsStream+".custody-"+rec.name, []byte(`{"placement":{"preferred":"n2"}}`), 3*time.Second)
				time.Sleep(100 * time.Millisecond)
			}
			return consumerLeader() == "n2"
		})
		t.Logf("round %d: restarting n2, the consumer's leader, with the loop at %d of %d", round, rec.position(), total)
		c.stop(1)
		if err := c.start(1); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for rec.position() < total {
		select {
		case err := <-runErr:
			t.Fatalf("the consume loop ended at %d of %d: %v", rec.position(), total, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the consume loop stalled at %d of %d", rec.position(), total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("followed %d events through three restarts of its consumer's leader", total)
}

// writeTestPKI writes a CA and one certificate for every node (server and client
// authentication, for localhost, 127.0.0.1 and n1..n3) as PEM files in dir.
func writeTestPKI(t testing.TB, dir string) (ca, cert, key string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, nodeKey := newKey(), newKey()
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "custody test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	nodeTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "custody nats node"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost", "n1", "n2", "n3"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	nodeDER, err := x509.CreateCertificate(rand.Reader, nodeTmpl, caCert, &nodeKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(nodeKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("node.pem", "CERTIFICATE", nodeDER), write("node-key.pem", "EC PRIVATE KEY", keyDER)
}

// deployOptions parses deploy/nats/node.conf (with accounts.conf) for node n, with the
// environment that scripts/cluster.sh and docker-compose.yml give it.
func deployOptions(t testing.TB, env map[string]string) func(n *clusterNode, routes []string) *server.Options {
	var mu sync.Mutex
	return func(n *clusterNode, routes []string) *server.Options {
		mu.Lock()
		defer mu.Unlock()
		vars := map[string]string{
			"NATS_NAME":         n.name,
			"NATS_HOST":         "127.0.0.1",
			"NATS_PORT":         strconv.Itoa(n.clientPort),
			"NATS_HTTP_PORT":    "-1",
			"NATS_CLUSTER_PORT": strconv.Itoa(n.clusterPort),
			"NATS_ROUTES":       `["` + strings.Join(routes, `","`) + `"]`,
			"NATS_STORE_DIR":    strconv.Quote(n.storeDir),
		}
		for k, v := range env {
			vars[k] = v
		}
		for k, v := range vars {
			os.Setenv(k, v)
		}
		opts, err := server.ProcessConfigFile(filepath.Join("..", "deploy", "nats", "node.conf"))
		if err != nil {
			t.Errorf("deploy/nats/node.conf: %v", err)
			return &server.Options{}
		}
		opts.NoSigs = true
		opts.NoLog = os.Getenv("CUSTODY_TEST_NATS_LOG") == ""
		return opts
	}
}

// TestClusterAccountsImmutability runs the cluster of deploy/nats/node.conf (TLS on
// client and route connections, accounts.conf) and checks that custody's application
// user can do its work but cannot delete a message, purge, relax the stream's settings or
// delete the stream; and what the server refuses to the administrator too.
func TestClusterAccountsImmutability(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeTestPKI(t, dir)
	env := map[string]string{
		"NATS_TLS_CA": strconv.Quote(ca), "NATS_TLS_CERT": strconv.Quote(cert), "NATS_TLS_KEY": strconv.Quote(key),
		"CUSTODY_ADMIN_PASSWORD": "adminTest0secret",
		"CUSTODY_APP_PASSWORD":   "appTest0secret",
		"CUSTODY_SYS_PASSWORD":   "sysTest0secret",
	}
	for _, k := range []string{"NATS_NAME", "NATS_HOST", "NATS_PORT", "NATS_HTTP_PORT", "NATS_CLUSTER_PORT", "NATS_ROUTES", "NATS_STORE_DIR",
		"NATS_TLS_CA", "NATS_TLS_CERT", "NATS_TLS_KEY", "CUSTODY_ADMIN_PASSWORD", "CUSTODY_APP_PASSWORD", "CUSTODY_SYS_PASSWORD"} {
		t.Setenv(k, "") // restored after the test
	}
	c := newTestCluster(t, "CUSTODY", deployOptions(t, env))
	c.startAll()
	c.waitMeta(30 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Plain-text clients are refused: the nodes require TLS.
	if answer := plainTextClient(t, c.nodes[0].clientPort, env["CUSTODY_APP_PASSWORD"]); strings.Contains(answer, "PONG") {
		t.Fatalf("a client without TLS was served: %q", answer)
	}
	if nc, err := nats.Connect(c.url("tls", "custody", "wrong-password"), nats.RootCAs(ca), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("a wrong password was accepted")
	}

	adminNC := c.connect(c.url("tls", "custody-admin", env["CUSTODY_ADMIN_PASSWORD"]), nats.RootCAs(ca))
	adminJS, err := jetstream.New(adminNC)
	if err != nil {
		t.Fatal(err)
	}
	if err := ensureR3(ctx, adminJS); err != nil {
		t.Fatal(err)
	}

	for _, cfg := range (streams.LogConfig{}).Configs() {
		waitFor(t, 30*time.Second, "no leader for "+cfg.Name, func() bool { return c.streamLeader(cfg.Name) != "" })
	}

	// The server answers a request to a subject the user may not publish to with a
	// permissions violation on the connection (-ERR), not on the request: nats.go hands
	// it to the error handler, and the request itself ends with its deadline.
	var violations sync.Map
	appNC := c.connect(c.url("tls", "custody", env["CUSTODY_APP_PASSWORD"]), nats.RootCAs(ca),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				violations.Store(err.Error(), true)
			}
		}))
	appJS, err := jetstream.New(appNC)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("the application user works", func(t *testing.T) {
		// custody verifies the streams at every start; as the application user it may
		// look, not change.
		if err := streams.EnsureStreams(ctx, appJS, streams.LogConfig{Replicas: 3}); err != nil {
			t.Fatalf("EnsureStreams as the application user: %v", err)
		}
		if err := streams.EnsureStreams(ctx, appJS, streams.LogConfig{}); err != nil {
			t.Fatalf("EnsureStreams as the application user, default config (what cmd/custody passes): %v", err)
		}
		msgs := consentEvents(t, 300)
		for _, cfg := range []streams.PublisherConfig{{AtomicBatch: 100}, {}} {
			pub, err := streams.NewPublisher(appNC, cfg)
			if err != nil {
				t.Fatal(err)
			}
			part := msgs[:150]
			if cfg.AtomicBatch == 0 {
				part = msgs[150:]
			}
			if got := count(pub.PublishAll(ctx, part)); got[streams.Stored] != len(part) {
				t.Fatalf("publish %+v: %v", cfg, got)
			}
		}
		pub, _ := streams.NewPublisher(appNC, streams.PublisherConfig{})
		for _, subject := range []string{streams.AlertSubjectPrefix + "raised", streams.ReportSubjectPrefix + "executed", streams.CheckpointSubject} {
			if r := pub.Publish(ctx, streams.Outgoing{ID: "00000000-0000-4000-8000-" + fmt.Sprintf("%012d", len(subject)), Subject: subject, Data: []byte("{}")}); r.Status != streams.Stored {
				t.Fatalf("publish to %s: %s %v", subject, r.Status, r.Err)
			}
		}
		for _, ephemeral := range []bool{false, true} {
			rec := &recorder{name: fmt.Sprintf("app-%v", ephemeral)}
			if err := streams.NewConsumer(appJS, rec, streams.ConsumerConfig{Ephemeral: ephemeral, MaxWait: 250 * time.Millisecond}).CatchUp(ctx); err != nil {
				t.Fatalf("consume (ephemeral %v): %v", ephemeral, err)
			}
			if rec.position() != 300 {
				t.Fatalf("consumed %d of 300", rec.position())
			}
		}
		log, err := streams.OpenLog(ctx, appJS)
		if err != nil {
			t.Fatal(err)
		}
		if st, err := log.Get(ctx, 7); err != nil || st.Event.ID != msgs[6].ID {
			t.Fatalf("get sequence 7: %v", err)
		}
	})

	stream, err := appJS.Stream(ctx, streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	relaxed := stream.CachedInfo().Config
	relaxed.DenyDelete, relaxed.DenyPurge = false, false
	other := jetstream.StreamConfig{Name: "CUSTODY_SHADOW", Subjects: []string{"shadow.>"}, Replicas: 3}
	for _, tc := range []struct {
		name, subject string
		do            func(ctx context.Context, js jetstream.JetStream) error
	}{
		{"delete a message", "$JS.API.STREAM.MSG.DELETE.", func(ctx context.Context, js jetstream.JetStream) error { return deleteMsg(ctx, js, 1, false) }},
		{"securely delete a message", "$JS.API.STREAM.MSG.DELETE.", func(ctx context.Context, js jetstream.JetStream) error { return deleteMsg(ctx, js, 2, true) }},
		{"purge", "$JS.API.STREAM.PURGE.", func(ctx context.Context, js jetstream.JetStream) error {
			s, err := js.Stream(ctx, streams.EventsStream)
			if err != nil {
				return err
			}
			return s.Purge(ctx)
		}},
		{"relax DenyDelete and DenyPurge", "$JS.API.STREAM.UPDATE.", func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.UpdateStream(ctx, relaxed)
			return err
		}},
		{"delete the stream", "$JS.API.STREAM.DELETE.", func(ctx context.Context, js jetstream.JetStream) error {
			return js.DeleteStream(ctx, streams.EventsStream)
		}},
		{"create a stream", "$JS.API.STREAM.CREATE.", func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.CreateStream(ctx, other)
			return err
		}},
	} {
		t.Run("the application user may not "+tc.name, func(t *testing.T) {
			violations.Clear()
			octx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			err := tc.do(octx, appJS)
			if err == nil {
				t.Fatal("allowed")
			}
			var seen []string
			waitFor(t, 2*time.Second, "no permissions violation reported for "+tc.subject, func() bool {
				seen = seen[:0]
				violations.Range(func(k, _ any) bool {
					if strings.Contains(k.(string), tc.subject) {
						seen = append(seen, k.(string))
					}
					return true
				})
				return len(seen) > 0
			})
			t.Logf("refused: %s (the call: %v)", seen[0], err)
		})
	}

	// The administrator is refused what JetStream itself forbids on this stream.
	for _, tc := range []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"delete a message (deny_delete)", func(ctx context.Context) error { return deleteMsg(ctx, adminJS, 1, false) }},
		{"purge (deny_purge)", func(ctx context.Context) error {
			s, err := adminJS.Stream(ctx, streams.EventsStream)
			if err != nil {
				return err
			}
			return s.Purge(ctx)
		}},
		{"turn deny_delete off", func(ctx context.Context) error {
			cfg := relaxed
			cfg.DenyPurge = true
			_, err := adminJS.UpdateStream(ctx, cfg)
			return err
		}},
		{"turn deny_purge off", func(ctx context.Context) error {
			cfg := relaxed
			cfg.DenyDelete = true
			_, err := adminJS.UpdateStream(ctx, cfg)
			return err
		}},
	} {
		t.Run("the administrator may not "+tc.name, func(t *testing.T) {
			err := tc.do(ctx)
			var apiErr *jetstream.APIError
			if !errors.As(err, &apiErr) && !errors.Is(err, jetstream.ErrMsgDeleteUnsuccessful) {
				t.Fatalf("want a JetStream error, got %v", err)
			}
			t.Logf("refused by JetStream: %v", err)
		})
	}

	// Nothing changed.
	s, err := adminJS.Stream(ctx, streams.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 300 || info.State.FirstSeq != 1 || info.State.LastSeq != 300 || !info.Config.DenyDelete || !info.Config.DenyPurge || info.Config.Replicas != 3 {
		t.Fatalf("the stream changed: %+v, deny_delete %v, deny_purge %v", info.State, info.Config.DenyDelete, info.Config.DenyPurge)
	}

	// What the administrator can still do (documented, not a defence of custody's):
	// shorten the retention and delete the whole stream. The admin credentials must stay
	// out of every running service.
	t.Run("the administrator can still shorten max_age and delete the stream", func(t *testing.T) {
		cfg := info.Config
		cfg.MaxAge = time.Hour
		if _, err := adminJS.UpdateStream(ctx, cfg); err != nil {
			t.Logf("shortening max_age refused: %v", err)
		} else {
			t.Log("shortening max_age to 1h was accepted by the server")
		}
		if err := adminJS.DeleteStream(ctx, streams.EventsStream); err != nil {
			t.Logf("deleting the stream refused: %v", err)
		} else {
			t.Log("deleting the stream was accepted by the server")
		}
	})
}

// plainTextClient speaks the NATS protocol without TLS to a node and returns what the
// node answered after its INFO, which must require TLS.
func plainTextClient(t testing.TB, port int, pass string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 4096)
	n, _ := conn.Read(buf)
	if info := string(buf[:n]); !strings.Contains(info, `"tls_required":true`) {
		t.Fatalf("the node does not require TLS: %s", info)
	}
	fmt.Fprintf(conn, "CONNECT {\"user\":\"custody\",\"pass\":%q,\"verbose\":false,\"pedantic\":false,\"tls_required\":false}\r\nPING\r\n", pass)
	var answer []byte
	for {
		n, err := conn.Read(buf)
		answer = append(answer, buf[:n]...)
		if err != nil || bytes.Contains(answer, []byte("PONG")) {
			return string(answer)
		}
	}
}

// deleteMsg deletes (erases, with secure) one message through the JetStream API.
func deleteMsg(ctx context.Context, js jetstream.JetStream, seq uint64, secure bool) error {
	s, err := js.Stream(ctx, streams.EventsStream)
	if err != nil {
		return err
	}
	if secure {
		return s.SecureDeleteMsg(ctx, seq)
	}
	return s.DeleteMsg(ctx, seq)
}

// TestClusterTwoProcessesFollowTheLog: two custody processes, each with its own store,
// run the same projector against one cluster. Both must see every event: with one
// durable consumer name they would split its deliveries (measured before the names
// carried the store: one at 10,000, the other at 0).
func TestClusterTwoProcessesFollowTheLog(t *testing.T) {
	c := newTestCluster(t, "$G", plainOptions)
	c.startAll()
	c.waitMeta(30 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nc := c.connect(c.url("nats", "", ""))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ensureR3(ctx, js); err != nil {
		t.Fatal(err)
	}
	pub, err := streams.NewPublisher(nc, streams.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// Two processes keeping the same projector in stores of their own: their durable
	// consumers are named after their stores (custody serve names them
	// custody-STOREID-PROJECTOR), so each follows the whole log.
	procs := []*recorder{{name: "view"}, {name: "view"}}
	for i, r := range procs {
		pjs, err := jetstream.New(c.connect(c.url("nats", "", "")))
		if err != nil {
			t.Fatal(err)
		}
		durable := fmt.Sprintf("custody-store%d-view", i)
		go func() {
			_ = streams.NewConsumer(pjs, r, streams.ConsumerConfig{MaxWait: 250 * time.Millisecond, Durable: durable}).Run(ctx)
		}()
	}
	const n = 10_000
	if got := count(pub.PublishAll(ctx, consentEvents(t, n))); got[streams.Stored] != n {
		t.Fatal(got)
	}
	waitFor(t, 20*time.Second, "both processes to apply every event", func() bool {
		return procs[0].position() == n && procs[1].position() == n
	})
}

// TestClusterLoopbackScript runs scripts/cluster.sh: three nats-server processes built
// from go.mod's version, on loopback with deploy/nats/node.conf (TLS, accounts), the
// streams provisioned at R3 by the administrator; custody's application user publishes
// and reads over TLS and cannot delete a message; status and stop work.
func TestClusterLoopbackScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds nats-server and custody and runs them as processes")
	}
	for _, tool := range []string{"bash", "openssl", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	dir := t.TempDir()
	base := loopbackPortBase(t)
	script := func(timeout time.Duration, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join("..", "scripts", "cluster.sh")}, args...)...)
		cmd.Env = append(os.Environ(), "CUSTODY_CLUSTER_DIR="+dir, "CUSTODY_CLUSTER_PORT_BASE="+strconv.Itoa(base), "CUSTODY_CLUSTER_POSTGRES=0")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t0 := time.Now()
	out, err := script(5*time.Minute, "start")
	t.Cleanup(func() {
		if out, err := script(time.Minute, "stop"); err != nil {
			t.Errorf("stop: %v\n%s", err, out)
		}
	})
	if err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	t.Logf("scripts/cluster.sh start took %s", time.Since(t0).Round(time.Millisecond))

	envOut, err := script(time.Minute, "env")
	if err != nil {
		t.Fatalf("env: %v\n%s", err, envOut)
	}
	env := map[string]string{}
	for _, line := range strings.Split(envOut, "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok {
			env[k] = strings.Trim(v, "'")
		}
	}
	url, ca := env["CUSTODY_NATS_URL"], filepath.Join(dir, "certs", "ca.pem")
	if !strings.HasPrefix(url, "tls://custody:") || env["SSL_CERT_FILE"] == "" {
		t.Fatalf("env printed %q", envOut)
	}
	var violations sync.Map
	nc, err := nats.Connect(url, nats.RootCAs(ca), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		violations.Store(err.Error(), true)
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := streams.EnsureStreams(ctx, js, streams.LogConfig{}); err != nil {
		t.Fatalf("EnsureStreams as the application user: %v", err)
	}
	for _, cfg := range (streams.LogConfig{}).Configs() {
		s, err := js.Stream(ctx, cfg.Name)
		if err != nil {
			t.Fatal(err)
		}
		if r := s.CachedInfo().Config.Replicas; r != 3 {
			t.Fatalf("%s has %d replicas", cfg.Name, r)
		}
	}
	pub, err := streams.NewPublisher(nc, streams.PublisherConfig{AtomicBatch: 500})
	if err != nil {
		t.Fatal(err)
	}
	if got := count(pub.PublishAll(ctx, consentEvents(t, 2000))); got[streams.Stored] != 2000 {
		t.Fatalf("publish: %v", got)
	}
	dctx, dcancel := context.WithTimeout(ctx, time.Second)
	err = deleteMsg(dctx, js, 1, false)
	dcancel()
	if err == nil {
		t.Fatal("the application user deleted a message")
	}
	refused := false
	waitFor(t, 2*time.Second, "no permissions violation for the delete", func() bool {
		violations.Range(func(k, _ any) bool {
			refused = refused || strings.Contains(k.(string), "$JS.API.STREAM.MSG.DELETE.")
			return true
		})
		return refused
	})
	status, err := script(time.Minute, "status")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, status)
	}
	// custody streams status: the events stream at three replicas holds the 2,000
	// events, deny delete and deny purge on.
	events := regexp.MustCompile(`(?m)^CUSTODY_EVENTS\s+3\s+n\d\s.*\s2000\s+2000\s+true\s+true\s*$`)
	if !events.MatchString(status) || !strings.Contains(status, "\nn1 healthy\nn2 healthy\nn3 healthy\n") {
		t.Fatalf("status:\n%s", status)
	}
	t.Logf("status:\n%s", status)
}

// loopbackPortBase finds a base port B with B..B+2, B+2000..B+2002 and B+4000..B+4002
// free on loopback (scripts/cluster.sh's layout).
func loopbackPortBase(t testing.TB) int {
	t.Helper()
	for range 50 {
		b, err := rand.Int(rand.Reader, big.NewInt(20000))
		if err != nil {
			t.Fatal(err)
		}
		base, free := 20000+int(b.Int64()), true
		for _, off := range []int{0, 1, 2, 2000, 2001, 2002, 4000, 4001, 4002} {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+off))
			if err != nil {
				free = false
				break
			}
			l.Close()
		}
		if free {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}
