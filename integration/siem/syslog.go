package siem

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/custody/custody/domain"
)

// SyslogConfig configures the CEF-over-syslog sink: RFC 5424 messages carrying one CEF
// record each, framed by octet counting (RFC 5425 / RFC 6587) on a mutual TLS
// connection.
type SyslogConfig struct {
	// Name names the sink (see HTTPConfig.Name). Required.
	Name string `json:"name"`
	// Address is the receiver, host:port (6514 is the registered syslog-over-TLS port).
	// Required.
	Address string `json:"address"`
	// TLS configures mutual TLS. Required (certFile and keyFile).
	TLS TLSConfig `json:"tls"`
	// Facility is the syslog facility, 0-23. Optional; default 13 (log audit).
	Facility int `json:"facility,omitempty"`
	// Hostname is the HOSTNAME of the syslog header. Optional; default os.Hostname, "-"
	// if unknown.
	Hostname string `json:"hostname,omitempty"`
	// AppName is the APP-NAME of the syslog header. Optional; default "custody".
	AppName string `json:"appName,omitempty"`
	// ProductVersion is the CEF device version. Optional; default the module version.
	ProductVersion string `json:"productVersion,omitempty"`
	// DialTimeout bounds connecting and the TLS handshake. Optional; default 10 s.
	DialTimeout time.Duration `json:"-"`
	// WriteTimeout bounds writing one message. Optional; default 10 s.
	WriteTimeout time.Duration `json:"-"`
	// SettleTime is how long a new connection is watched for the receiver closing it
	// before the first message is written. With TLS 1.3 a receiver reports a refused
	// client certificate only after the client's handshake has completed, and syslog
	// receivers never answer, so without this wait the first message of a refused
	// connection would be lost. Optional; default 250 ms.
	SettleTime time.Duration `json:"-"`
}

func (c *SyslogConfig) setDefaults() {
	if c.Facility == 0 {
		c.Facility = 13
	}
	if c.Hostname == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			c.Hostname = h
		} else {
			c.Hostname = "-"
		}
	}
	if c.AppName == "" {
		c.AppName = "custody"
	}
	if c.ProductVersion == "" {
		c.ProductVersion = defaultProductVersion()
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.SettleTime == 0 {
		c.SettleTime = 250 * time.Millisecond
	}
}

// Validate reports every problem at once. It reads no file.
func (c *SyslogConfig) Validate() error {
	var errs []error
	if err := validateName(c.Name); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := net.SplitHostPort(c.Address); c.Address == "" || err != nil {
		errs = append(errs, errors.New("address must be host:port"))
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Facility < 0 || c.Facility > 23 {
		errs = append(errs, fmt.Errorf("facility %d: must be 0-23", c.Facility))
	}
	if !printableASCII(c.Hostname, 255) || !printableASCII(c.AppName, 48) {
		errs = append(errs, errors.New("hostname (255) and appName (48) must be printable ASCII without spaces"))
	}
	return errors.Join(errs...)
}

func printableASCII(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

// SyslogSink writes CEF records over syslog/TLS. It keeps one connection, made on first
// use and again after any failure. It is safe for concurrent use.
//
// Syslog has no application-level acknowledgement: a message counts as delivered when
// it has been written to a connection the receiver had not closed. A receiver that
// drops the connection right after a write can lose that one message; the HTTPS sinks
// do not have this gap.
type SyslogSink struct {
	cfg    SyslogConfig
	tls    *tls.Config
	dialer net.Dialer

	mu   sync.Mutex
	conn *syslogConn
}

type syslogConn struct {
	c    *tls.Conn
	dead chan struct{} // closed when the receiver closed the connection or sent anything
	err  error         // why, valid after dead is closed
	done chan struct{} // closed when the reader goroutine returned
}

// NewCEFSyslog builds the CEF-over-syslog/TLS sink. It does not connect yet.
func NewCEFSyslog(c SyslogConfig) (*SyslogSink, error) {
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, configError("cef-syslog", c.Name, err)
	}
	host, _, _ := net.SplitHostPort(c.Address)
	tlsCfg, err := c.TLS.ClientConfig(host)
	if err != nil {
		return nil, configError("cef-syslog", c.Name, err)
	}
	return &SyslogSink{cfg: c, tls: tlsCfg, dialer: net.Dialer{Timeout: c.DialTimeout}}, nil
}

// Name is the sink's name.
func (s *SyslogSink) Name() string { return s.cfg.Name }

// syslogSeverity maps OCSF severity ids onto syslog severities.
var syslogSeverity = map[int]int{sevInformational: 6, sevLow: 5, sevMedium: 4, sevHigh: 3, sevCritical: 2}

// SyslogMessage renders the RFC 5424 message (without framing) for an event:
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME - MSGID - CEF:0|...
//
// TIMESTAMP is the event time in UTC with microseconds, MSGID the event type.
func SyslogMessage(e domain.Event, facility int, hostname, appName, productVersion string) string {
	_, sev := titleAndSeverity(e, factsOf(e))
	pri := facility*8 + syslogSeverity[sev]
	ts := e.Time.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
	msgID := string(e.Type)
	if len(msgID) > 32 {
		msgID = msgID[:32]
	}
	return "<" + strconv.Itoa(pri) + ">1 " + ts + " " + hostname + " " + appName + " - " + msgID + " - " +
		CEFRecord(e, productVersion).String()
}

// Deliver writes one framed message. Errors are retryable (a connection can be made
// again); a record that cannot be rendered is permanent.
func (s *SyslogSink) Deliver(ctx context.Context, e domain.Event) error {
	msg := SyslogMessage(e, s.cfg.Facility, s.cfg.Hostname, s.cfg.AppName, s.cfg.ProductVersion)
	frame := strconv.Itoa(len(msg)) + " " + msg

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil {
		select {
		case <-s.conn.dead:
			s.dropLocked()
		default:
		}
	}
	if s.conn == nil {
		c, err := s.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &DeliveryError{Sink: s.cfg.Name, EventID: e.ID, Reason: err.Error()}
		}
		s.conn = c
	}
	_ = s.conn.c.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := s.conn.c.Write([]byte(frame)); err != nil {
		s.dropLocked()
		return &DeliveryError{Sink: s.cfg.Name, EventID: e.ID, Reason: "write: " + networkReason(err)}
	}
	return nil
}

// connect dials, completes the handshake and watches the connection for SettleTime.
func (s *SyslogSink) connect(ctx context.Context) (*syslogConn, error) {
	d := tls.Dialer{NetDialer: &s.dialer, Config: s.tls}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
	defer cancel()
	nc, err := d.DialContext(dctx, "tcp", s.cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("connect: %s", networkReason(err))
	}
	c := &syslogConn{c: nc.(*tls.Conn), dead: make(chan struct{}), done: make(chan struct{})}
	go c.watch()
	t := time.NewTimer(s.cfg.SettleTime)
	defer t.Stop()
	select {
	case <-c.dead:
		c.close()
		return nil, fmt.Errorf("connection refused by the receiver: %s", networkReason(c.err))
	case <-ctx.Done():
		c.close()
		return nil, ctx.Err()
	case <-t.C:
	}
	return c, nil
}

// watch reads until the connection fails: a syslog receiver never sends anything, so
// any read result means the connection is no longer usable.
func (c *syslogConn) watch() {
	defer close(c.done)
	var b [1]byte
	_, err := c.c.Read(b[:])
	if err == nil {
		err = errors.New("unexpected data from the receiver")
	}
	c.err = err
	close(c.dead)
}

func (c *syslogConn) close() {
	c.c.Close()
	<-c.done
}

func (s *SyslogSink) dropLocked() {
	if s.conn != nil {
		s.conn.close()
		s.conn = nil
	}
}

// Close closes the connection.
func (s *SyslogSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked()
	return nil
}
