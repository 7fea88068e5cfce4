package siem_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custody/custody/integration/siem"
)

// syslogReceiver is a syslog/TLS listener requiring client certificates that reads
// octet-counted frames (RFC 5425).
type syslogReceiver struct {
	ln       net.Listener
	frames   chan string
	mu       sync.Mutex
	conns    []net.Conn
	accepted int
	badFrame error
	wg       sync.WaitGroup
}

func newSyslogReceiver(t *testing.T, p *pki, clientCA *x509.CertPool) *syslogReceiver {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", p.serverTLS(clientCA))
	if err != nil {
		t.Fatal(err)
	}
	r := &syslogReceiver{ln: ln, frames: make(chan string, 100)}
	r.wg.Go(r.accept)
	t.Cleanup(func() {
		ln.Close()
		r.closeConns()
		r.wg.Wait()
	})
	return r
}

func (r *syslogReceiver) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		r.conns = append(r.conns, c)
		r.mu.Unlock()
		r.wg.Go(func() { r.read(c) })
	}
}

func (r *syslogReceiver) read(c net.Conn) {
	defer c.Close()
	if err := c.(*tls.Conn).Handshake(); err != nil {
		return // refused client
	}
	r.mu.Lock()
	r.accepted++
	r.mu.Unlock()
	br := bufio.NewReader(c)
	for {
		n, err := br.ReadString(' ')
		if err != nil {
			return
		}
		size, err := strconv.Atoi(strings.TrimSuffix(n, " "))
		if err != nil || size <= 0 {
			r.mu.Lock()
			r.badFrame = fmt.Errorf("bad frame length %q", n)
			r.mu.Unlock()
			return
		}
		buf := make([]byte, size)
		if _, err := io.ReadFull(br, buf); err != nil {
			return
		}
		r.frames <- string(buf)
	}
}

func (r *syslogReceiver) closeConns() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

func (r *syslogReceiver) counts() (accepted int, badFrame error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted, r.badFrame
}

func (r *syslogReceiver) next(t *testing.T) string {
	t.Helper()
	select {
	case f := <-r.frames:
		return f
	case <-time.After(5 * time.Second):
		t.Fatal("no syslog frame")
		return ""
	}
}

func syslogSink(t *testing.T, addr string, tc siem.TLSConfig) *siem.SyslogSink {
	t.Helper()
	s, err := siem.NewCEFSyslog(siem.SyslogConfig{Name: "arcsight", Address: addr, TLS: tc, Hostname: "custody-1",
		ProductVersion: "1.4.0", SettleTime: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSyslogSinkFramesCEFOverMutualTLS(t *testing.T) {
	p := newPKI(t, "syslog")
	rcv := newSyslogReceiver(t, p, p.pool)
	s := syslogSink(t, rcv.ln.Addr().String(), p.clientTLS())
	events := goldenEvents()
	for _, g := range events[:3] {
		if err := s.Deliver(context.Background(), g.e); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range events[:3] {
		frame := rcv.next(t)
		want := siem.SyslogMessage(g.e, 13, "custody-1", "custody", "1.4.0")
		if frame != want {
			t.Fatalf("frame\n%q\nwant\n%q", frame, want)
		}
		c, err := siem.ParseCEF(frame[strings.Index(frame, "CEF:"):])
		if err != nil || c.SignatureID == "" || c.Extensions[1] != (siem.CEFField{Key: "externalId", Value: g.e.ID}) {
			t.Fatalf("CEF of %s: %+v, %v", g.name, c, err)
		}
	}
	if n, bad := rcv.counts(); n != 1 || bad != nil {
		t.Fatalf("%d connections (want 1 for three messages), framing error %v", n, bad)
	}

	// The receiver drops the connection: the next delivery connects again.
	rcv.closeConns()
	time.Sleep(100 * time.Millisecond)
	if err := s.Deliver(context.Background(), events[3].e); err != nil {
		t.Fatal(err)
	}
	if f := rcv.next(t); !strings.Contains(f, events[3].e.ID) {
		t.Fatalf("frame after reconnect: %q", f)
	}
	if n, _ := rcv.counts(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestSyslogSinkRefusals(t *testing.T) {
	good := newPKI(t, "syslog-good")
	other := newPKI(t, "syslog-other")
	e := goldenEvents()[0].e
	tests := []struct {
		name string
		tls  siem.TLSConfig
		want error
	}{
		{"client certificate from another CA", siem.TLSConfig{CAFile: good.caFile, CertFile: other.certFile, KeyFile: other.keyFile}, siem.ErrRetryable},
		{"receiver from an untrusted CA", siem.TLSConfig{CAFile: other.caFile, CertFile: good.certFile, KeyFile: good.keyFile}, siem.ErrRetryable},
		{"pin mismatch", siem.TLSConfig{CAFile: good.caFile, CertFile: good.certFile, KeyFile: good.keyFile, Pins: []string{siem.SPKIPin(other.serverLeaf)}}, siem.ErrRetryable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newSyslogReceiver(t, good, good.pool)
			s := syslogSink(t, rcv.ln.Addr().String(), tt.tls)
			err := s.Deliver(context.Background(), e)
			t.Log(err)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Deliver = %v, want %v", err, tt.want)
			}
			select {
			case f := <-rcv.frames:
				t.Fatalf("receiver got a frame from a refused client: %q", f)
			case <-time.After(100 * time.Millisecond):
			}
		})
	}

	t.Run("client without a certificate", func(t *testing.T) {
		rcv := newSyslogReceiver(t, good, good.pool)
		c, err := tls.Dial("tcp", rcv.ln.Addr().String(), &tls.Config{RootCAs: good.pool, MinVersion: tls.VersionTLS12})
		if err == nil {
			defer c.Close()
			_, _ = c.Write([]byte("5 hello"))
		}
		select {
		case f := <-rcv.frames:
			t.Fatalf("receiver got a frame from a client without certificate: %q", f)
		case <-time.After(100 * time.Millisecond):
		}
		if n, _ := rcv.counts(); n != 0 {
			t.Fatalf("receiver completed %d handshakes", n)
		}
	})
}
