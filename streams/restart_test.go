package streams_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/custody/custody/domain"
	"github.com/custody/custody/streams"
)

// TestMain lets the test binary act as a crashing publisher in a child process.
func TestMain(m *testing.M) {
	if dir := os.Getenv("CUSTODY_TEST_CHILD_DIR"); dir != "" {
		childPublish(dir, os.Getenv("CUSTODY_TEST_CHILD_BATCH") == "1")
		return
	}
	os.Exit(m.Run())
}

// childPublish publishes forever, printing "id seq" for every acknowledged event, until
// it is killed.
func childPublish(dir string, batch bool) {
	e, nc, _ := startLog(&testing.T{}, dir)
	_ = e
	cfg := streams.PublisherConfig{}
	if batch {
		cfg.AtomicBatch = 200
	}
	pub, err := streams.NewPublisher(nc, cfg)
	if err != nil {
		panic(err)
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, "ready")
	w.Flush()
	for {
		msgs := consentEvents(&testing.T{}, 500)
		for i, r := range pub.PublishAll(context.Background(), msgs) {
			if r.Status == streams.Stored {
				fmt.Fprintf(w, "%s %d\n", msgs[i].ID, r.Seq)
			}
		}
		w.Flush()
	}
}

func TestCrashLosesNoAcknowledgedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	for _, tc := range []struct {
		name  string
		batch bool
	}{{"one by one", false}, {"atomic batches", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			acked := map[string]uint64{}
			for round := 0; round < 2; round++ {
				cmd := exec.Command(os.Args[0], "-test.run=^$")
				cmd.Env = append(os.Environ(), "CUSTODY_TEST_CHILD_DIR="+dir, "CUSTODY_TEST_CHILD_BATCH="+map[bool]string{true: "1", false: "0"}[tc.batch])
				out, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				sc := bufio.NewScanner(out)
				deadline := time.Now().Add(time.Duration(700+300*round) * time.Millisecond)
				started := false
				for sc.Scan() {
					line := sc.Text()
					if line == "ready" {
						started = true
						deadline = time.Now().Add(time.Duration(700+300*round) * time.Millisecond)
						continue
					}
					id, seq, ok := strings.Cut(line, " ")
					if ok {
						var s uint64
						fmt.Sscan(seq, &s)
						acked[id] = s
					}
					if started && time.Now().After(deadline) {
						cmd.Process.Signal(syscall.SIGKILL)
						break
					}
				}
				// Read what the child printed before it died: those were acknowledged too.
				for sc.Scan() {
					if id, seq, ok := strings.Cut(sc.Text(), " "); ok {
						var s uint64
						fmt.Sscan(seq, &s)
						acked[id] = s
					}
				}
				cmd.Wait()
			}
			if len(acked) < 500 {
				t.Fatalf("only %d events acknowledged before the kills; the test proves nothing", len(acked))
			}
			e, nc, js := startLog(t, dir)
			defer stopLog(e, nc)
			log, err := streams.OpenLog(context.Background(), js)
			if err != nil {
				t.Fatal(err)
			}
			found := map[string]uint64{}
			err = log.Replay(context.Background(), streams.ReplayFrom{}, func(st domain.Stored) error {
				found[st.Event.ID] = st.Seq
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for id, seq := range acked {
				got, ok := found[id]
				if !ok {
					t.Fatalf("acknowledged event %s (sequence %d) lost after SIGKILL", id, seq)
				}
				if got != seq {
					t.Fatalf("event %s acknowledged at %d, found at %d", id, seq, got)
				}
			}
			t.Logf("%d acknowledged events, %d in the log after two SIGKILLs", len(acked), len(found))
		})
	}
}
