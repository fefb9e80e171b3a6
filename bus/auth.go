package bus

import (
	"fmt"

	"github.com/nats-io/nats.go"
)

// Credentials says how this process authenticates to NATS and verifies
// it. The zero value connects without authentication or TLS (the embedded
// default, on loopback only).
type Credentials struct {
	CredsFile string // JWT + nkey seed file (decentralised auth)
	NKeySeed  string // file holding an nkey seed
	User      string // user/password auth
	Password  string
	Token     string
	CAFile    string // verify the server against this CA (enables TLS)
	CertFile  string // client certificate for mutual TLS
	KeyFile   string
}

// Options turns the credentials into connection options.
func (c Credentials) Options() ([]nats.Option, error) {
	var opts []nats.Option
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.NKeySeed != "" {
		o, err := nats.NkeyOptionFromSeed(c.NKeySeed)
		if err != nil {
			return nil, fmt.Errorf("bus: nkey seed %s: %w", c.NKeySeed, err)
		}
		opts = append(opts, o)
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.Token != "" {
		opts = append(opts, nats.Token(c.Token))
	}
	if c.CAFile != "" {
		opts = append(opts, nats.RootCAs(c.CAFile))
	}
	if c.CertFile != "" || c.KeyFile != "" {
		if c.CertFile == "" || c.KeyFile == "" {
			return nil, fmt.Errorf("bus: a client certificate needs both cert and key files")
		}
		opts = append(opts, nats.ClientCert(c.CertFile, c.KeyFile))
	}
	return opts, nil
}
