package streams

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// ErrDataDirBusy is returned by StartEmbedded when another process holds the data
// directory and has published no address to connect to.
var ErrDataDirBusy = errors.New("data directory is held by another custody process")

// EmbeddedConfig configures the embedded nats-server.
type EmbeddedConfig struct {
	// DataDir holds the JetStream store, the lock and the address file. Required.
	DataDir string
	// Listen is an optional client listener, "host:port" (port 0 picks a free one). Empty
	// means in-process connections only: nothing listens on the network.
	Listen string
	// ReadyTimeout bounds the wait for the server to start. Optional; default 10 s.
	ReadyTimeout time.Duration
	// KeyFile, when set, names the file of the key that encrypts the store at rest
	// (JetStream's ChaCha20-Poly1305 cipher). A store created with a key cannot be opened
	// without it, nor with another one. Optional.
	KeyFile string
}

func (c *EmbeddedConfig) setDefaults() {
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 10 * time.Second
	}
}

// Validate reports a configuration that cannot work.
func (c *EmbeddedConfig) Validate() error {
	if c.DataDir == "" {
		return errors.New("embedded server: DataDir is required")
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("embedded server: Listen %q: must be host:port: %w", c.Listen, err)
		}
	}
	return nil
}

// Embedded is a nats-server with JetStream running inside this process on a data
// directory, with every write synced to disk before it is acknowledged
// (sync_interval: always). It holds an exclusive lock on the directory; while it runs
// with a listener, the directory's address file tells other custody processes where to
// connect.
type Embedded struct {
	srv      *server.Server
	lock     *os.File
	urlFile  string
	token    string
	dataDir  string
	listener bool
}

const (
	lockName = "custody.lock"
	urlName  = "nats.url"
)

// ErrEncryptionKey is returned when the store's encryption key is missing, too short
// or not the one the store was created with.
var ErrEncryptionKey = errors.New("encryption key")

// minKeyLen is the shortest accepted encryption key, in bytes.
const minKeyLen = 32

// checkName is the file recording that the store is encrypted, with a check value of
// its key (an HMAC of a constant, which says nothing about the key itself).
const checkName = "encryption.check"

// encryptionKey reads the key and checks it against the store: a store that was
// encrypted is never started without its key or with another key (the server would
// not load its streams, and custody would create empty ones beside them).
func encryptionKey(cfg EmbeddedConfig) (string, error) {
	check := filepath.Join(cfg.DataDir, checkName)
	have, err := os.ReadFile(check)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("embedded server: %w", err)
	}
	if cfg.KeyFile == "" {
		if have != nil {
			return "", fmt.Errorf("embedded server: %w: the store in %s is encrypted; give its key file", ErrEncryptionKey, cfg.DataDir)
		}
		return "", nil
	}
	raw, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return "", fmt.Errorf("embedded server: %w: %v", ErrEncryptionKey, err)
	}
	key := strings.TrimSpace(string(raw))
	if len(key) < minKeyLen {
		return "", fmt.Errorf("embedded server: %w: the key in %s must be at least %d characters (e.g. openssl rand -hex 32)", ErrEncryptionKey, cfg.KeyFile, minKeyLen)
	}
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte("custody encryption key check v1"))
	sum := hex.EncodeToString(mac.Sum(nil)) + "\n"
	switch {
	case have == nil:
		if err := writeFileAtomic(check, []byte(sum), 0o600); err != nil {
			return "", err
		}
	case !hmac.Equal(have, []byte(sum)):
		return "", fmt.Errorf("embedded server: %w: the key in %s is not the key the store in %s was encrypted with", ErrEncryptionKey, cfg.KeyFile, cfg.DataDir)
	}
	return key, nil
}

// StartEmbedded starts the server and waits until it accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	lock, err := lockDir(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	token, err := randomToken()
	if err != nil {
		lock.Close()
		return nil, err
	}
	opts := &server.Options{
		ServerName:    "custody",
		JetStream:     true,
		StoreDir:      filepath.Join(cfg.DataDir, "jetstream"),
		SyncAlways:    true,
		SyncInterval:  2 * time.Minute, // unused while SyncAlways is set; kept explicit
		NoSigs:        true,
		NoLog:         true,
		DontListen:    cfg.Listen == "",
		Authorization: token,
		MaxPayload:    4 << 20,
	}
	if cfg.Listen != "" {
		host, port, _ := net.SplitHostPort(cfg.Listen)
		opts.Host = host
		p, err := strconv.Atoi(port)
		if err != nil {
			lock.Close()
			return nil, fmt.Errorf("embedded server: Listen port %q: %w", port, err)
		}
		if p == 0 {
			p = server.RANDOM_PORT
		}
		opts.Port = p
	}
	key, err := encryptionKey(cfg)
	if err != nil {
		lock.Close()
		return nil, err
	}
	if key != "" {
		opts.JetStreamKey = key
		opts.JetStreamCipher = server.ChaCha
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("embedded server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(cfg.ReadyTimeout) {
		srv.Shutdown()
		lock.Close()
		return nil, fmt.Errorf("embedded server: not ready after %s", cfg.ReadyTimeout)
	}
	e := &Embedded{srv: srv, lock: lock, token: token, dataDir: cfg.DataDir, urlFile: filepath.Join(cfg.DataDir, urlName), listener: cfg.Listen != ""}
	if e.listener {
		if err := writeFileAtomic(e.urlFile, []byte(e.URL()+"\n"), 0o600); err != nil {
			e.Shutdown()
			return nil, err
		}
	}
	return e, nil
}

// URL is the client URL with the access token, or "" without a listener.
func (e *Embedded) URL() string {
	if !e.listener {
		return ""
	}
	addr, ok := e.srv.Addr().(*net.TCPAddr)
	if !ok {
		return ""
	}
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return fmt.Sprintf("nats://%s@%s", e.token, net.JoinHostPort(host, strconv.Itoa(addr.Port)))
}

// Connect opens an in-process client connection (no network).
func (e *Embedded) Connect(opts ...nats.Option) (*nats.Conn, error) {
	opts = append([]nats.Option{nats.InProcessServer(e.srv), nats.Token(e.token), nats.Name("custody")}, opts...)
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to embedded server: %w", err)
	}
	return nc, nil
}

// Shutdown stops the server, waits for it, removes the address file and releases the
// directory lock.
func (e *Embedded) Shutdown() {
	if e.listener {
		os.Remove(e.urlFile)
	}
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	if e.lock != nil {
		syscall.Flock(int(e.lock.Fd()), syscall.LOCK_UN)
		e.lock.Close()
		e.lock = nil
	}
}

// Server exposes the underlying nats-server, for tests and diagnostics.
func (e *Embedded) Server() *server.Server { return e.srv }

func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrDataDirBusy
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	return f, nil
}

// HeldURL returns the client URL published by the process that holds dir, or
// ErrDataDirBusy when it is held with no URL, or "" and nil when nobody holds it.
func HeldURL(dir string) (string, error) {
	f, err := lockDir(dir)
	if err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
		return "", nil
	}
	if !errors.Is(err, ErrDataDirBusy) {
		if os.IsNotExist(errors.Unwrap(err)) {
			return "", nil
		}
		return "", err
	}
	b, rerr := os.ReadFile(filepath.Join(dir, urlName))
	if rerr != nil || strings.TrimSpace(string(b)) == "" {
		return "", ErrDataDirBusy
	}
	return strings.TrimSpace(string(b)), nil
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
