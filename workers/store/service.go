package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/meridian-ops/meridian/bus"
	"github.com/meridian-ops/meridian/schemas"
	"github.com/meridian-ops/meridian/store/catalog"
	"github.com/meridian-ops/meridian/store/mvcc"
)

// DefaultScanLimit is the page size of a scan that names no limit.
const DefaultScanLimit = 1000

// startService registers the micro service "oor".
func (w *Worker) startService() (micro.Service, error) {
	svc, err := micro.AddService(w.nc, micro.Config{Name: schemas.OORService, Version: "1.0.0",
		Description: "Orbital Object Registry: TLE reads at MVCC snapshots, writes, catalog merge"})
	if err != nil {
		return nil, err
	}
	o := bus.EndpointOptions{}
	err = errors.Join(
		bus.AddEndpoint(svc, schemas.OORTleGet, o, w.get),
		bus.AddEndpoint(svc, schemas.OORTlePut, o, w.put),
		bus.AddEndpoint(svc, schemas.OORTleScan, o, w.scan),
		bus.AddEndpoint(svc, schemas.OORTleSnapshot, bus.EndpointOptions{MaxRequest: 1 << 20}, w.snapshot),
		bus.AddEndpoint(svc, schemas.OORCatalogMerge, bus.EndpointOptions{Timeout: time.Minute}, w.merge),
		bus.AddEndpoint(svc, schemas.OORStats, o, func(context.Context, *struct{}) (*schemas.StoreStats, error) {
			st := w.Stats()
			return &st, nil
		}),
	)
	if err != nil {
		_ = svc.Stop()
		return nil, err
	}
	return svc, nil
}

// open opens a catalog snapshot, mapping a too-old as_of to a 400.
func (w *Worker) open(ctx context.Context, at *uint64) (*catalog.Snapshot, error) {
	s, err := w.cat.Snapshot(ctx, asOf(at))
	if errors.Is(err, mvcc.ErrSnapshotTooOld) {
		return nil, fmt.Errorf("%w: as_of %d: %v", bus.ErrBadRequest, asOf(at), err)
	}
	return s, err
}

func (w *Worker) get(ctx context.Context, req *schemas.TleGetRequest) (*schemas.TleGetReply, error) {
	w.gets.Add(1)
	opsTotal.WithLabelValues("get").Inc()
	s, err := w.open(ctx, req.AsOf)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	rep := &schemas.TleGetReply{AsOf: s.TS()}
	e, err := s.Get(ctx, req.NoradID)
	if errors.Is(err, catalog.ErrNotFound) {
		return rep, nil
	}
	if err != nil {
		return nil, err
	}
	t := fromEntry(&e)
	rep.Found, rep.Tle, rep.CommitTs = true, &t, e.CommitTS
	return rep, nil
}

func (w *Worker) put(ctx context.Context, req *schemas.TlePutRequest) (*schemas.TlePutReply, error) {
	w.puts.Add(1)
	opsTotal.WithLabelValues("put").Inc()
	if _, err := w.cat.Source(req.Tle.Source); err != nil {
		return nil, fmt.Errorf("%w: %v", bus.ErrBadRequest, err)
	}
	res, err := w.cat.Apply(ctx, []catalog.Update{{Source: req.Tle.Source, Rec: ToRecord(&req.Tle), Name: req.Tle.Name}})
	if err != nil {
		return nil, err
	}
	w.objects.Add(int64(res.New))
	ts := res.CommitTS
	if ts == 0 { // identical to the stored record: already committed
		ts = w.cat.DB().Now()
	}
	return &schemas.TlePutReply{CommitTs: ts}, nil
}

func (w *Worker) scan(ctx context.Context, req *schemas.TleScanRequest) (*schemas.TleScanReply, error) {
	w.scans.Add(1)
	opsTotal.WithLabelValues("scan").Inc()
	limit := req.Limit
	if limit == 0 {
		limit = DefaultScanLimit
	}
	s, err := w.open(ctx, req.AsOf)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	rep := &schemas.TleScanReply{AsOf: s.TS(), Tles: []schemas.Tle{}}
	to := req.To
	if to == 0 {
		to = math.MaxUint32
	}
	rep.More, err = s.Scan(ctx, req.From, to, limit, func(e *catalog.Entry) bool {
		rep.Tles = append(rep.Tles, fromEntry(e))
		return true
	})
	return rep, err
}

func (w *Worker) snapshot(ctx context.Context, req *schemas.TleSnapshotRequest) (*schemas.TleSnapshotReply, error) {
	w.snapshots.Add(1)
	opsTotal.WithLabelValues("snapshot").Inc()
	s, err := w.open(ctx, req.AsOf)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	rep := &schemas.TleSnapshotReply{AsOf: s.TS(), Tles: make([]schemas.Tle, 0, len(req.NoradIDs))}
	for _, id := range req.NoradIDs {
		e, err := s.Get(ctx, id)
		switch {
		case errors.Is(err, catalog.ErrNotFound):
			rep.Missing = append(rep.Missing, id)
		case err != nil:
			return nil, err
		default:
			rep.Tles = append(rep.Tles, fromEntry(&e))
		}
	}
	return rep, nil
}

func (w *Worker) merge(ctx context.Context, req *schemas.CatalogMergeRequest) (*schemas.CatalogMergeReply, error) {
	w.merges.Add(1)
	opsTotal.WithLabelValues("merge").Inc()
	if req.Samples < 0 || req.Samples > 1000 {
		return nil, fmt.Errorf("%w: samples must be 0..1000", bus.ErrBadRequest)
	}
	start := time.Now()
	s, err := w.open(ctx, req.AsOf)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	m, err := s.Merge(ctx, req.Samples, false)
	if err != nil {
		return nil, err
	}
	rep := &schemas.CatalogMergeReply{AsOf: s.TS(), RowsIn: int(m.RowsIn), Objects: int(m.Stats.Objects),
		Conflicts: int(m.Stats.Conflicts), BySource: map[string]int{}, ElapsedUs: time.Since(start).Microseconds()}
	for _, src := range w.cat.Sources() {
		if n := m.Stats.Wins[src.ID]; n > 0 {
			rep.BySource[src.Name] = int(n)
		}
	}
	for _, r := range m.Samples { // in NORAD id order
		n, err := s.Candidates(ctx, r.NoradID)
		if err != nil {
			return nil, err
		}
		rep.Samples = append(rep.Samples, schemas.MergeSample{NoradID: r.NoradID, WinnerSource: w.cat.SourceName(r.Source),
			Epoch: r.Rec.Epoch, Candidates: n})
	}
	return rep, nil
}
