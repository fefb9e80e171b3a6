package system_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
)

// natsServer runs a standalone NATS server with JetStream on a fixed
// loopback port, so the test can stop it and start it again on the same
// address and store, as an operator restarting the cluster would.
type natsServer struct {
	t    *testing.T
	opts server.Options
	srv  *server.Server
}

func startNATS(t *testing.T, dir string) *natsServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	n := &natsServer{t: t, opts: server.Options{ServerName: "fault", Host: "127.0.0.1", Port: port, JetStream: true,
		StoreDir: filepath.Join(dir, "nats"), NoSigs: true, NoLog: true, MaxPayload: 8 << 20}}
	n.start()
	t.Cleanup(func() {
		if n.srv != nil {
			n.srv.Shutdown()
		}
	})
	return n
}

func (n *natsServer) start() {
	o := n.opts
	s, err := server.NewServer(&o)
	if err != nil {
		n.t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("NATS not ready")
	}
	n.srv = s
}

func (n *natsServer) restart() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.start()
}

// The NATS server restarts while stations stream: the gateway and the
// workers reconnect by themselves, and every frame the stations sent is
// processed exactly once (nothing acked lost, nothing processed twice).
func TestNATSRestartWhileStreaming(t *testing.T) {
	dir := t.TempDir()
	ns := startNATS(t, dir)
	cfg := testConfig(t, dir)
	cfg.NATSURL = ns.srv.ClientURL()
	cfg.Only = []string{"archive", "processor", "fanin", "router", "gateway"}
	s := start(t, cfg)
	defer stop(t, s)

	select {
	case <-s.Gateway.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("gateway not ready")
	}
	const stations, perPhase = 8, 300
	conns := make([]net.Conn, stations)
	writers := make([]*bufio.Writer, stations)
	for i := range conns {
		c, err := net.Dial("tcp", s.Gateway.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i], writers[i] = c, bufio.NewWriter(c)
		_ = schemas.WriteFrame(writers[i], []byte(fmt.Sprintf("HELLO station=gs-f%02d format=mf1", i)))
	}
	send := func(phase int) {
		var wg sync.WaitGroup
		for i := range stations {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range perPhase {
					seq := uint64(phase*perPhase + j + 1)
					_ = schemas.WriteFrame(writers[i], schemas.AppendMF1(nil, schemas.MF1Header{TimestampMs: seq, Sequence: seq,
						SatelliteID: uint32(i + 1)}, []byte("x")))
				}
				if err := writers[i].Flush(); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	nc, err := nats.Connect(cfg.NATSURL, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := bus.NewJetStream(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, schemas.BucketStats)
	if err != nil {
		t.Fatal(err)
	}
	var ps schemas.PipelineStats
	send(0)
	bustest.Eventually(t, 30*time.Second, func() bool {
		_, _ = bus.KVGet(ctx, kv, schemas.KeyPipelineStats, &ps)
		return ps.FramesProcessed > 0
	}, "nothing processed before the restart")
	ns.restart() // while phase 0 is still flowing through the pipeline
	send(1)
	total := uint64(stations * 2 * perPhase)
	bustest.Eventually(t, 60*time.Second, func() bool {
		_, _ = bus.KVGet(ctx, kv, schemas.KeyPipelineStats, &ps)
		return ps.FramesProcessed >= total && s.Archive.Count() >= total
	}, "after the restart only %d of %d frames processed (%d archived)", ps.FramesProcessed, total, s.Archive.Count())
	if ps.FramesProcessed != total || s.Archive.Count() != total || ps.DuplicatesDropped != 0 {
		t.Fatalf("processed %d, archived %d, duplicates %d; want exactly %d each and no duplicates",
			ps.FramesProcessed, s.Archive.Count(), ps.DuplicatesDropped, total)
	}
	// Every frame is in the archive exactly once.
	for i := range stations {
		got, err := s.Archive.Query(fmt.Sprintf("gs-f%02d", i), 0, 1<<62)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[uint64]bool{}
		for _, f := range got {
			if seen[f.Sequence] {
				t.Fatalf("gs-f%02d frame %d archived twice", i, f.Sequence)
			}
			seen[f.Sequence] = true
		}
		if len(seen) != 2*perPhase {
			t.Fatalf("gs-f%02d: %d frames archived, want %d", i, len(seen), 2*perPhase)
		}
	}
}
