package bus_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
)

// An embedded server run from a nats-server config: the components' user
// may do everything, an operator's read-only user may not submit commands,
// and an anonymous client is refused.
const serverConf = `
accounts {
  MERIDIAN {
    jetstream: enabled
    users: [
      { user: meridian, password: "s3cret-components" }
      { user: viewer, password: "look-only",
        permissions: {
          publish: { allow: ["$JS.API.INFO", "$JS.API.STREAM.INFO.>", "$JS.API.STREAM.LIST", "$JS.API.STREAM.NAMES"], deny: ["cmd.>", "tlm.>", "tle.>"] }
          subscribe: { allow: ["_INBOX.>", "tlm.processed.>"] }
        }
      }
    ]
  }
}
`

func TestServerConfigEnforcesUsersAndPermissions(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte(serverConf), 0o600); err != nil {
		t.Fatal(err)
	}
	creds := bus.Credentials{User: "meridian", Password: "s3cret-components"}
	copts, err := creds.Options()
	if err != nil {
		t.Fatal(err)
	}
	b := bustest.New(t, func(c *bus.Config) { c.ServerConfig = conf; c.ConnectOptions = copts })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Ready(ctx); err != nil {
		t.Fatalf("authenticated components not ready: %v", err)
	}

	if _, err := nats.Connect(b.URL); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("anonymous connection: %v, want authorization violation", err)
	}
	if _, err := nats.Connect(b.URL, nats.UserInfo("meridian", "wrong")); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("wrong password: %v, want authorization violation", err)
	}

	viewer, err := nats.Connect(b.URL, nats.UserInfo("viewer", "look-only"))
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	js, _ := jetstream.New(viewer)
	// The server refuses the publish (an async -ERR); the request then
	// gets no ack and times out on the client.
	pctx, pcancel := context.WithTimeout(ctx, time.Second)
	_, err = js.Publish(pctx, "cmd.submit.gs-1", []byte{0x80})
	pcancel()
	if err == nil {
		t.Fatal("read-only operator submitted a command")
	}
	if !errors.Is(viewer.LastError(), nats.ErrPermissionViolation) {
		t.Fatalf("no permissions violation reported: last error %v", viewer.LastError())
	}
	st, _ := b.JS.Stream(ctx, "CMD")
	info, _ := st.Info(ctx)
	if info.State.Msgs != 0 {
		t.Fatalf("refused publish was stored: %d messages", info.State.Msgs)
	}
}

func TestCredentialsNeedCertAndKey(t *testing.T) {
	if _, err := (bus.Credentials{CertFile: "c.pem"}).Options(); err == nil {
		t.Fatal("cert without key accepted")
	}
}
