package siem

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
)

// TLSConfig configures the client side of a sink's TLS connection: mutual TLS with a
// client certificate, TLS 1.2 or later, the receiver's CA bundle and optional public key
// pins. File paths only: the private key is read from its file, never from the
// configuration itself.
type TLSConfig struct {
	// CAFile is a PEM bundle of the CAs that sign the receiver's certificate. Optional;
	// default the system roots.
	CAFile string `json:"caFile,omitempty"`
	// CertFile is the PEM client certificate (chain) presented to the receiver. Required.
	CertFile string `json:"certFile"`
	// KeyFile is the PEM private key of the client certificate. Required.
	KeyFile string `json:"keyFile"`
	// ServerName is the name the receiver's certificate must carry. Optional; default
	// the host of the sink's URL or address.
	ServerName string `json:"serverName,omitempty"`
	// Pins are base64 (standard encoding) SHA-256 digests of the receiver leaf
	// certificate's SubjectPublicKeyInfo. Optional; when set, the leaf must match one of
	// them in addition to passing normal chain and name verification. List two during a
	// key rotation.
	Pins []string `json:"pins,omitempty"`
	// MinVersion is "1.2" or "1.3". Optional; default "1.2".
	MinVersion string `json:"minVersion,omitempty"`
}

// ErrPinMismatch is returned by a handshake whose server key matches none of the pins.
var ErrPinMismatch = errors.New("tls: server public key matches no configured pin")

// Validate reports every problem of the configuration at once. It does not read files.
func (c TLSConfig) Validate() error {
	var errs []error
	if c.CertFile == "" {
		errs = append(errs, errors.New("tls: certFile is required (mutual TLS)"))
	}
	if c.KeyFile == "" {
		errs = append(errs, errors.New("tls: keyFile is required (mutual TLS)"))
	}
	for i, p := range c.Pins {
		if b, err := base64.StdEncoding.DecodeString(p); err != nil || len(b) != sha256.Size {
			errs = append(errs, fmt.Errorf("tls: pins[%d]: not a base64 SHA-256 digest", i))
		}
	}
	if _, err := c.minVersion(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c TLSConfig) minVersion() (uint16, error) {
	switch c.MinVersion {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("tls: minVersion %q: must be 1.2 or 1.3", c.MinVersion)
}

// ClientConfig reads the files and builds the client tls.Config. defaultServerName is
// used when ServerName is empty (pass the host of the URL or address).
func (c TLSConfig) ClientConfig(defaultServerName string) (*tls.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	minV, _ := c.minVersion()
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		// The error of LoadX509KeyPair names the problem, not key material.
		return nil, fmt.Errorf("tls: client certificate %s: %w", c.CertFile, err)
	}
	cfg := &tls.Config{
		MinVersion: minV,
		ServerName: c.ServerName,
		// The configured certificate is always presented, even when the receiver's list
		// of acceptable CAs does not name its issuer, so that the receiver's log says
		// "unknown CA" rather than "no certificate".
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
	}
	if cfg.ServerName == "" {
		cfg.ServerName = defaultServerName
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: CA bundle %s: no PEM certificate found", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if len(c.Pins) > 0 {
		pins := make([][]byte, len(c.Pins))
		for i, p := range c.Pins {
			pins[i], _ = base64.StdEncoding.DecodeString(p)
		}
		// VerifyConnection runs after the normal chain and name verification, on full
		// handshakes and on resumed sessions alike.
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrPinMismatch
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			match := 0
			for _, p := range pins {
				match |= subtle.ConstantTimeCompare(sum[:], p)
			}
			if match != 1 {
				return ErrPinMismatch
			}
			return nil
		}
	}
	return cfg, nil
}

// SPKIPin returns the pin of a certificate: the base64 SHA-256 of its
// SubjectPublicKeyInfo, the value TLSConfig.Pins expects.
func SPKIPin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}
