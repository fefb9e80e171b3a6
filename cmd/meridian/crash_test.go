package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/meridian-ops/meridian/bus/bustest"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/workers/archive"
)

// The crash test: `kill -9` of `meridian run` under load, repeated, then
// reconcile every count. CI runs one kill; MERIDIAN_CRASH_KILLS=N runs N
// (MERIDIAN_CRASH_SYNC_ALWAYS=1 adds --sync-always).

const (
	crashStations = 4 // TCP stations sending mf1 frames
	crashFrames   = 5 // frames each station writes per tick
	crashTick     = 10 * time.Millisecond
	crashSource   = "leolabs" // a configured TLE source
)

// freeAddr returns a loopback address with a port free right now, so that
// every life of the process listens on the same ports and clients reconnect.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// crashProc is one life of `meridian run`.
type crashProc struct {
	cmd    *exec.Cmd
	logged chan struct{} // closed when its stderr ends
}

func startCrashRun(t *testing.T, dataDir, natsAddr, gwAddr string, life int, extra ...string) *crashProc {
	t.Helper()
	args := append([]string{"run", "--data-dir", dataDir, "--nats-addr", natsAddr, "--gateway-addr", gwAddr,
		"--http-addr", "127.0.0.1:0", "--udp-addr", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(binary, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(filepath.Dir(dataDir), fmt.Sprintf("life-%d.log", life)))
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &crashProc{cmd: cmd, logged: make(chan struct{})}
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.logged; _ = cmd.Wait() })
	started := make(chan struct{})
	go func() {
		defer close(p.logged)
		defer logf.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			if strings.Contains(sc.Text(), `msg="meridian started"`) {
				once.Do(func() { close(started) })
			}
		}
	}()
	select {
	case <-started:
		return p
	case <-p.logged:
		t.Fatalf("life %d: meridian run exited before it started; see %s", life, logf.Name())
	case <-time.After(30 * time.Second):
		t.Fatalf("life %d: meridian run did not start within 30 s", life)
	}
	return nil
}

func (p *crashProc) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.logged
	_ = p.cmd.Wait()
}

func (p *crashProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.logged
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// crashStation dials the gateway as station crash-<i> and writes mf1 frames
// with satellite 100+i and consecutive sequences until ctx ends,
// reconnecting whenever the process dies. A frame written to a socket that
// then breaks may be lost: the gateway acknowledges nothing to stations
// (package gateway, Caveats), so only what JetStream stored counts as acked.
func crashStation(ctx context.Context, i int, addr string, written *atomic.Int64) {
	station := fmt.Sprintf("crash-%d", i)
	body := []byte("kill9-telemetry-payload")
	var seq uint64
	var buf []byte
	tick := time.NewTicker(crashTick) // paces the load; not synchronisation
	defer tick.Stop()
	for ctx.Err() == nil {
		d := net.Dialer{Timeout: time.Second}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
			continue
		}
		err = schemas.WriteFrame(conn, []byte("HELLO station="+station+" format=mf1"))
		for err == nil {
			select {
			case <-ctx.Done():
				_ = schemas.WriteFrame(conn, schemas.GoodbyeFrame())
				_ = conn.Close()
				return
			case <-tick.C:
			}
			for range crashFrames {
				seq++
				h := schemas.MF1Header{TimestampMs: uint64(time.Now().UnixMilli()), Sequence: seq, SatelliteID: uint32(100 + i),
					ByteCount: uint16(len(body)), StationID: uint8(i)}
				if seq%50 == 0 {
					h.Flags = 0x01 // emergency: published at once, never batched
				}
				buf = schemas.AppendMF1(buf[:0], h, body)
				if err = schemas.WriteFrame(conn, buf); err != nil {
					break
				}
				written.Add(1)
			}
		}
		_ = conn.Close()
	}
}

// ackedSet records what JetStream acknowledged to a publisher.
type ackedSet struct {
	mu  sync.Mutex
	ids []string
	n   atomic.Int64
}

func (a *ackedSet) add(id string) {
	a.mu.Lock()
	a.ids = append(a.ids, id)
	a.mu.Unlock()
	a.n.Add(1)
}

// publishLoop publishes one message per tick with JetStream until ctx ends,
// recording the ones acked. A publish that fails (the process is down) is
// simply not acked; it is not retried.
func publishLoop(ctx context.Context, js jetstream.JetStream, acked *ackedSet, msg func(n int) (subject, id string, data []byte)) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		subject, id, data := msg(n)
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.Publish(pctx, subject, data, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			acked.add(id)
		}
	}
}

// ingestObserver reads TLM_INGEST from the start with an ordered consumer on
// its own connection, recording every batch by stream sequence.
type ingestObserver struct {
	nc     *nats.Conn
	cc     jetstream.ConsumeContext
	mu     sync.Mutex
	bySeq  map[uint64][]schemas.FrameKey
	frames int
	maxSeq uint64
}

func observeIngest(t *testing.T, url string) *ingestObserver {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	o := &ingestObserver{nc: nc, bySeq: map[uint64][]schemas.FrameKey{}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, schemas.StreamIngest, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	o.cc, err = c.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		var b schemas.FrameBatch
		if err := schemas.Decode(m.Data(), &b); err != nil {
			return
		}
		keys := make([]schemas.FrameKey, len(b.Frames))
		for i := range b.Frames {
			keys[i] = b.Frames[i].Key()
		}
		o.mu.Lock()
		o.bySeq[meta.Sequence.Stream] = keys
		o.frames += len(keys)
		o.maxSeq = max(o.maxSeq, meta.Sequence.Stream)
		o.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func (o *ingestObserver) snapshot() (frames int, maxSeq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.frames, o.maxSeq
}

func (o *ingestObserver) close() map[uint64][]schemas.FrameKey {
	o.cc.Stop()
	o.nc.Close()
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.bySeq
}

// readStream reads every message of a limits stream with an ordered
// consumer.
func readStream(t *testing.T, js jetstream.JetStream, stream string, f func(data []byte)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs == 0 {
		return
	}
	c, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := c.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			t.Fatalf("reading %s: %v", stream, err)
		}
		f(m.Data())
		meta, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		if meta.Sequence.Stream >= info.State.LastSeq {
			return
		}
	}
}

// lagging describes the worker consumers that have not caught up ("" when
// every one has).
func lagging(js jetstream.JetStream) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out []string
	for _, name := range []string{schemas.StreamIngest, schemas.StreamRouted, schemas.StreamWork, schemas.StreamProcessed,
		schemas.StreamCmd, schemas.StreamTLE} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return fmt.Sprintf("%s: %v", name, err)
		}
		consumers := 0
		for ci := range s.ListConsumers(ctx).Info() {
			if ci.Config.Durable == "" {
				continue // a live view (ephemeral), maybe of a killed process
			}
			consumers++
			if ci.NumPending > 0 || ci.NumAckPending > 0 {
				out = append(out, fmt.Sprintf("%s/%s: %d pending, %d awaiting ack (delivered %d, ack floor %d)", name, ci.Name,
					ci.NumPending, ci.NumAckPending, ci.Delivered.Stream, ci.AckFloor.Stream))
			}
		}
		if consumers == 0 {
			out = append(out, name+": no consumer")
		}
	}
	return strings.Join(out, "; ")
}

func TestKill9UnderLoadReconciles(t *testing.T) {
	kills := 1
	if v := os.Getenv("MERIDIAN_CRASH_KILLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("MERIDIAN_CRASH_KILLS=%q: want a positive number", v)
		}
		kills = n
	}
	// MERIDIAN_CRASH_TORN_TAIL=1 also cuts TLM_INGEST's tail after each kill:
	// the new messages then get the lost sequences, and must still flow
	// downstream (their outputs' Nats-Msg-Ids must not collide with the lost
	// messages' ones). Frames lost before the pipeline took them are lost.
	tornTail := os.Getenv("MERIDIAN_CRASH_TORN_TAIL") != ""
	var extra []string
	if os.Getenv("MERIDIAN_CRASH_SYNC_ALWAYS") != "" {
		extra = append(extra, "--sync-always")
	}
	began := time.Now()
	dataDir := filepath.Join(t.TempDir(), "data")
	natsAddr, gwAddr := freeAddr(t), freeAddr(t)
	url := "nats://" + natsAddr
	proc := startCrashRun(t, dataDir, natsAddr, gwAddr, 0, extra...)

	// Publishers of commands and TLE updates share one connection that
	// reconnects to every life of the server (same port).
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond), nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var cmdsAcked, tlesAcked ackedSet
	var written atomic.Int64
	loadCtx, stopLoad := context.WithCancel(context.Background())
	var load sync.WaitGroup
	defer func() { stopLoad(); load.Wait() }()
	for i := range crashStations {
		load.Go(func() { crashStation(loadCtx, i, gwAddr, &written) })
	}
	load.Go(func() {
		publishLoop(loadCtx, js, &cmdsAcked, func(n int) (string, string, []byte) {
			c := schemas.Command{ID: fmt.Sprintf("kill9-%d", n), StationID: fmt.Sprintf("offline-%d", n%3),
				Kind: schemas.CmdStatusRequest, IssuedAtNs: time.Now().UnixNano()}
			data, _ := schemas.Marshal(&c)
			return schemas.SubmitSubject(c.StationID), c.ID, data
		})
	})
	load.Go(func() {
		publishLoop(loadCtx, js, &tlesAcked, func(n int) (string, string, []byte) {
			u := schemas.Tle{NoradID: uint32(n), Epoch: 24001.5, MeanMotion: 15, Inclination: 51, Source: crashSource, RevNumber: uint32(n)}
			data, _ := schemas.Marshal(&u)
			return schemas.TLESubject(crashSource), strconv.Itoa(n), data
		})
	})

	// observedKeys are the frames JetStream stored in TLM_INGEST, as seen by
	// an observer at some time: acknowledged to the gateway.
	observedKeys := map[schemas.FrameKey]bool{}
	var ingestLost []int // per restart: frames seen in TLM_INGEST before the kill, gone after it
	obs := observeIngest(t, url)
	perLife := 3000 // frames stored in TLM_INGEST per life before the kill
	if v := os.Getenv("MERIDIAN_CRASH_PER_LIFE"); v != "" {
		if perLife, err = strconv.Atoi(v); err != nil || perLife < 1 {
			t.Fatalf("MERIDIAN_CRASH_PER_LIFE=%q: want a positive number", v)
		}
	}
	for round := 1; round <= kills; round++ {
		target := len(observedKeys) + perLife
		bustest.Eventually(t, 30*time.Second, func() bool { f, _ := obs.snapshot(); return f >= target },
			"life %d: TLM_INGEST did not reach %d frames", round, target)
		proc.kill9(t)
		before := obs.close()
		var beforeMax uint64
		for seq, keys := range before {
			beforeMax = max(beforeMax, seq)
			for _, k := range keys {
				observedKeys[k] = true
			}
		}
		if tornTail {
			// Simulate a lost tail (what a power cut without --sync-always
			// does): the last fifth of TLM_INGEST's last block.
			blks, _ := filepath.Glob(filepath.Join(dataDir, "nats", "jetstream", "$G", "streams", schemas.StreamIngest, "msgs", "*.blk"))
			if len(blks) != 1 {
				t.Fatalf("TLM_INGEST has %d blocks, want 1", len(blks))
			}
			fi, err := os.Stat(blks[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(blks[0], fi.Size()*4/5); err != nil {
				t.Fatal(err)
			}
		}
		proc = startCrashRun(t, dataDir, natsAddr, gwAddr, round, extra...)
		obs = observeIngest(t, url)
		// Once the new observer has read past the old last sequence, compare
		// what each sequence holds now with what it held before the kill.
		bustest.Eventually(t, 30*time.Second, func() bool { _, m := obs.snapshot(); return m >= beforeMax },
			"life %d: TLM_INGEST did not grow past sequence %d", round+1, beforeMax)
		obs.mu.Lock()
		lostFrames, lostBatches, firstLost := 0, 0, uint64(0)
		for seq, keys := range before {
			if !slices.Equal(obs.bySeq[seq], keys) {
				lostFrames += len(keys)
				lostBatches++
				if firstLost == 0 || seq < firstLost {
					firstLost = seq
				}
			}
		}
		obs.mu.Unlock()
		ingestLost = append(ingestLost, lostFrames)
		t.Logf("%v kill %d: TLM_INGEST held %d frames up to sequence %d before the kill; after the restart %d frames (%d batches from sequence %d) no longer there",
			time.Since(began).Round(time.Millisecond), round, len(observedKeys), beforeMax, lostFrames, lostBatches, firstLost)
	}
	// Let the last life take load for a moment, then stop it.
	f0, _ := obs.snapshot()
	bustest.Eventually(t, 30*time.Second, func() bool { f, _ := obs.snapshot(); return f >= f0+1000 },
		"last life: TLM_INGEST did not take new frames")
	stopLoad()
	load.Wait()
	drainDeadline := time.Now().Add(60 * time.Second) // polled like bustest.Eventually, reporting what lags
	for lag := lagging(js); lag != ""; lag = lagging(js) {
		if time.Now().After(drainDeadline) {
			t.Fatalf("the pipeline did not drain in 60 s: %s", lag)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%v: drained", time.Since(began).Round(time.Millisecond))
	for _, keys := range obs.close() {
		for _, k := range keys {
			observedKeys[k] = true
		}
	}

	// Final contents of TLM_INGEST and TLM_PROCESSED.
	finalIngest := map[schemas.FrameKey]int{}
	readStream(t, js, schemas.StreamIngest, func(data []byte) {
		var b schemas.FrameBatch
		if err := schemas.Decode(data, &b); err != nil {
			t.Fatal(err)
		}
		for i := range b.Frames {
			finalIngest[b.Frames[i].Key()]++
		}
	})
	processed := map[schemas.FrameKey]int{}
	readStream(t, js, schemas.StreamProcessed, func(data []byte) {
		var b schemas.FrameBatch
		if err := schemas.Decode(data, &b); err != nil {
			t.Fatal(err)
		}
		for i := range b.Frames {
			processed[b.Frames[i].Key()]++
		}
	})
	acked := map[schemas.FrameKey]bool{}
	for k := range observedKeys {
		acked[k] = true
	}
	for k := range finalIngest {
		acked[k] = true
	}
	for k := range processed {
		acked[k] = true // it came from TLM_INGEST, so JetStream stored it
	}
	goneFromIngest := 0
	for k := range acked {
		if finalIngest[k] == 0 {
			goneFromIngest++
		}
	}

	// Commands dispatched: CMD_DISPATCH is a work queue nobody consumes for
	// the offline stations; read it message by message.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dispatched := map[string]int{}
	ds, err := js.Stream(ctx, schemas.StreamDispatch)
	if err != nil {
		t.Fatal(err)
	}
	dinfo, err := ds.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := dinfo.State.FirstSeq; dinfo.State.Msgs > 0 && seq <= dinfo.State.LastSeq; seq++ {
		m, err := ds.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var c schemas.Command
		if err := schemas.Decode(m.Data, &c); err != nil {
			t.Fatal(err)
		}
		dispatched[c.ID]++
	}
	cs, err := js.Stream(ctx, schemas.StreamCmd)
	if err != nil {
		t.Fatal(err)
	}
	cinfo, err := cs.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// TLE updates in the store, read at one timestamp.
	var missingTLE []uint32
	tleIDs := make([]uint32, 0, len(tlesAcked.ids))
	for _, id := range tlesAcked.ids {
		n, _ := strconv.ParseUint(id, 10, 32)
		tleIDs = append(tleIDs, uint32(n))
	}
	for chunk := range slices.Chunk(tleIDs, schemas.MaxSnapshotIDs) {
		data, _ := schemas.Marshal(&schemas.TleSnapshotRequest{NoradIDs: chunk})
		m, err := nc.Request(schemas.OORTleSnapshot, data, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var rep schemas.TleSnapshotReply
		if err := schemas.Unmarshal(m.Data, &rep); err != nil {
			t.Fatalf("oor.tle.snapshot: %v (%s)", err, m.Header.Get("Nats-Service-Error"))
		}
		missingTLE = append(missingTLE, rep.Missing...)
		for _, x := range rep.Tles {
			if x.RevNumber != x.NoradID {
				t.Errorf("TLE %d holds rev %d", x.NoradID, x.RevNumber)
			}
		}
	}

	t.Logf("%v: read back", time.Since(began).Round(time.Millisecond))
	proc.stop(t)
	t.Logf("%v: stopped", time.Since(began).Round(time.Millisecond))
	a, err := archive.Open(filepath.Join(dataDir, "archive"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	archived := map[schemas.FrameKey]int{}
	for i := range crashStations {
		frames, err := a.Query(fmt.Sprintf("crash-%d", i), 0, math.MaxUint64)
		if err != nil {
			t.Fatal(err)
		}
		for j := range frames {
			archived[frames[j].Key()]++
		}
	}

	// The report, then the assertions.
	t.Logf("%d kills: %d frames written to sockets, %d stored in TLM_INGEST at some time (acked), %d in TLM_INGEST at the end, "+
		"%d acked frames no longer in TLM_INGEST (lost per kill: %v); %d in tlm.processed, %d archived; "+
		"%d commands acked, %d dispatched; %d TLE updates acked, %d missing from the store",
		kills, written.Load(), len(acked), len(finalIngest), goneFromIngest, ingestLost, len(processed), len(archived),
		cmdsAcked.n.Load(), len(dispatched), tlesAcked.n.Load(), len(missingTLE))
	if tornTail {
		acked = map[schemas.FrameKey]bool{} // what survived, or went on before the cut
		for k := range finalIngest {
			acked[k] = true
		}
		for k := range processed {
			acked[k] = true
		}
	}
	var notProcessed, dupProcessed, notArchived, dupArchived int
	for k := range acked {
		switch processed[k] {
		case 0:
			notProcessed++
		case 1:
		default:
			dupProcessed++
		}
		switch archived[k] {
		case 0:
			notArchived++
		case 1:
		default:
			dupArchived++
		}
	}
	if notProcessed+dupProcessed+notArchived+dupArchived > 0 {
		t.Errorf("acked frames: %d never reached tlm.processed, %d reached it more than once; %d not archived, %d archived more than once",
			notProcessed, dupProcessed, notArchived, dupArchived)
	}
	if len(archived) != len(acked) {
		t.Errorf("the archive holds %d frames, want the %d acked", len(archived), len(acked))
	}
	for k, n := range finalIngest {
		if n != 1 {
			t.Errorf("frame %v stored %d times in TLM_INGEST", k, n)
			break
		}
	}
	var notDispatched, dupDispatched int
	for _, id := range cmdsAcked.ids {
		switch dispatched[id] {
		case 0:
			notDispatched++
		case 1:
		default:
			dupDispatched++
		}
	}
	for id, n := range dispatched {
		if n > 1 {
			t.Errorf("command %s dispatched %d times", id, n)
		}
	}
	if notDispatched+dupDispatched > 0 || cinfo.State.Msgs != 0 {
		t.Errorf("acked commands: %d not dispatched, %d dispatched more than once; %d still in CMD", notDispatched, dupDispatched, cinfo.State.Msgs)
	}
	if len(missingTLE) > 0 {
		t.Errorf("%d acked TLE updates are not in the store (first: %v)", len(missingTLE), missingTLE[:min(5, len(missingTLE))])
	}
	if cmdsAcked.n.Load() == 0 || tlesAcked.n.Load() == 0 || len(acked) == 0 {
		t.Fatal("the load generators had nothing acked")
	}
}
