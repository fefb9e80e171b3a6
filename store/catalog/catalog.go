package catalog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/meridian-ops/meridian/store/mvcc"
	"github.com/meridian-ops/meridian/store/query"
	"github.com/meridian-ops/meridian/store/tle"
)

// Errors callers branch on.
var (
	ErrUnknownSource = errors.New("catalog: unknown source")
	ErrNotFound      = mvcc.ErrNotFound
)

// DefaultSources are the five providers of the course, highest priority
// first (priority breaks equal-epoch ties).
var DefaultSources = []query.SourceInfo{
	{ID: 1, Name: "18th-sds", Priority: 5},
	{ID: 2, Name: "esa-sst", Priority: 4},
	{ID: 3, Name: "leolabs", Priority: 3},
	{ID: 4, Name: "exoanalytic", Priority: 2},
	{ID: 5, Name: "numerica", Priority: 1},
}

const (
	prefixSource   = 's'
	prefixResolved = 'o'
)

// Catalog is the registry on one MVCC store. Safe for concurrent use;
// writes are serialized (the store worker is the only writer).
type Catalog struct {
	db      *mvcc.DB
	sources []query.SourceInfo
	byName  map[string]query.SourceInfo
	byID    map[query.SourceID]query.SourceInfo
	writeMu sync.Mutex
}

// New serves the catalog on db with the given providers (DefaultSources if
// nil). IDs must be unique and non-zero; they are stored in keys, so keep
// them stable across restarts.
func New(db *mvcc.DB, sources []query.SourceInfo) (*Catalog, error) {
	if sources == nil {
		sources = DefaultSources
	}
	c := &Catalog{db: db, sources: sources, byName: map[string]query.SourceInfo{}, byID: map[query.SourceID]query.SourceInfo{}}
	for _, s := range sources {
		if s.ID == 0 || s.Name == "" {
			return nil, fmt.Errorf("catalog: source %+v needs a non-zero id and a name", s)
		}
		if _, dup := c.byID[s.ID]; dup {
			return nil, fmt.Errorf("catalog: duplicate source id %d", s.ID)
		}
		if _, dup := c.byName[s.Name]; dup {
			return nil, fmt.Errorf("catalog: duplicate source name %q", s.Name)
		}
		c.byName[s.Name], c.byID[s.ID] = s, s
	}
	return c, nil
}

// DB returns the MVCC store.
func (c *Catalog) DB() *mvcc.DB { return c.db }

// Sources returns the configured providers.
func (c *Catalog) Sources() []query.SourceInfo { return c.sources }

// Source looks a provider up by name.
func (c *Catalog) Source(name string) (query.SourceInfo, error) {
	s, ok := c.byName[name]
	if !ok {
		return s, fmt.Errorf("%w %q", ErrUnknownSource, name)
	}
	return s, nil
}

// SourceName returns a provider's name by id ("" if unknown).
func (c *Catalog) SourceName(id query.SourceID) string { return c.byID[id].Name }

func sourceKey(dst []byte, src query.SourceID, id uint32) []byte {
	return binary.BigEndian.AppendUint32(append(dst, prefixSource, byte(src)), id)
}

func resolvedKey(dst []byte, id uint32) []byte {
	return binary.BigEndian.AppendUint32(append(dst, prefixResolved), id)
}

// Update is one provider's element set for one object.
type Update struct {
	Source string
	Rec    tle.Record
	Name   string // optional
}

// Result says what Apply did.
type Result struct {
	CommitTS  uint64 // 0 when nothing changed
	Written   int    // updates that changed the provider's record
	Unchanged int    // updates identical to the stored record (redeliveries)
	Resolved  int    // updates that became the resolved entry
	New       int    // objects the catalog did not hold before
}

// Apply commits updates as one transaction and returns once it is durable.
// An update from an unknown source fails the whole batch with
// ErrUnknownSource before anything is written.
func (c *Catalog) Apply(ctx context.Context, updates []Update) (Result, error) {
	for i := range updates {
		if _, ok := c.byName[updates[i].Source]; !ok {
			return Result{}, fmt.Errorf("update %d: %w %q", i, ErrUnknownSource, updates[i].Source)
		}
		if updates[i].Rec.NoradID == 0 {
			return Result{}, fmt.Errorf("update %d: catalog: norad id 0", i)
		}
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	for attempt := 0; ; attempt++ {
		res, err := c.apply(ctx, updates)
		if errors.Is(err, mvcc.ErrConflict) && attempt < 8 {
			continue // another writer (none in the worker) won; re-read and retry
		}
		return res, err
	}
}

func (c *Catalog) apply(ctx context.Context, updates []Update) (Result, error) {
	tx, err := c.db.Begin(ctx)
	if err != nil {
		return Result{}, err
	}
	defer tx.Rollback()
	var res Result
	var key []byte
	rec := make([]byte, tle.RecordSize)
	for i := range updates {
		u := &updates[i]
		src := c.byName[u.Source]
		u.Rec.Encode(rec)
		key = sourceKey(key[:0], src.ID, u.Rec.NoradID)
		old, err := tx.Get(ctx, key)
		switch {
		case err == nil && bytes.Equal(old, rec) && !c.renames(ctx, tx, u):
			res.Unchanged++
			continue
		case err != nil && !errors.Is(err, mvcc.ErrNotFound):
			return res, fmt.Errorf("catalog: read %s/%d: %w", u.Source, u.Rec.NoradID, err)
		}
		tx.Put(key, rec)
		res.Written++
		won, isNew, err := c.resolve(ctx, tx, u, src)
		if err != nil {
			return res, err
		}
		if won {
			res.Resolved++
		}
		if isNew {
			res.New++
		}
	}
	if res.Written == 0 {
		return res, nil
	}
	ts, err := tx.Commit(ctx)
	if err != nil {
		return res, err
	}
	res.CommitTS = ts
	return res, nil
}

// renames reports whether u names its object differently than the
// resolved entry does (a re-sent update that only adds a name is applied).
func (c *Catalog) renames(ctx context.Context, tx *mvcc.Txn, u *Update) bool {
	if u.Name == "" {
		return false
	}
	v, err := tx.Get(ctx, resolvedKey(nil, u.Rec.NoradID))
	return err != nil || len(v) < tle.RecordSize+1 || string(v[tle.RecordSize+1:]) != u.Name
}

// resolvedValue encodes a resolved entry: the record, the winning source,
// then the object's name (which survives a winner that gave none).
func resolvedValue(rec *tle.Record, src query.SourceID, name string) []byte {
	v := make([]byte, tle.RecordSize+1, tle.RecordSize+1+len(name))
	rec.Encode(v[:tle.RecordSize])
	v[tle.RecordSize] = byte(src)
	return append(v, name...)
}

// resolve updates the object's resolved entry after u was written for
// src, and reports whether u is now the winner and whether the object is
// new to the catalog.
func (c *Catalog) resolve(ctx context.Context, tx *mvcc.Txn, u *Update, src query.SourceInfo) (won, isNew bool, err error) {
	key := resolvedKey(nil, u.Rec.NoradID)
	old, err := tx.Get(ctx, key)
	if errors.Is(err, mvcc.ErrNotFound) {
		tx.Put(key, resolvedValue(&u.Rec, src.ID, u.Name))
		return true, true, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("catalog: read resolved %d: %w", u.Rec.NoradID, err)
	}
	if len(old) < tle.RecordSize+1 {
		return false, false, fmt.Errorf("catalog: resolved entry %d has %d bytes: %w", u.Rec.NoradID, len(old), tle.ErrRecordSize)
	}
	name := string(old[tle.RecordSize+1:])
	if u.Name != "" {
		name = u.Name
	}
	var cur tle.Record
	if err := cur.UnmarshalBinary(old[:tle.RecordSize]); err != nil {
		return false, false, fmt.Errorf("catalog: resolved entry %d: %w", u.Rec.NoradID, err)
	}
	oldSrc := c.byID[query.SourceID(old[tle.RecordSize])]
	if oldSrc.ID != src.ID {
		a, b := query.NewRow(&u.Rec, src.ID, src.Priority), query.NewRow(&cur, oldSrc.ID, oldSrc.Priority)
		won = query.Newer(&a, &b)
		if won {
			tx.Put(key, resolvedValue(&u.Rec, src.ID, name))
		} else if name != string(old[tle.RecordSize+1:]) {
			tx.Put(key, resolvedValue(&cur, oldSrc.ID, name))
		}
		return won, false, nil
	}
	// The winner itself changed its record (perhaps to an older epoch):
	// recompute from every provider's current record, as a merge would.
	var best query.Row
	found := false
	var rec tle.Record
	var k []byte
	for _, s := range c.sources {
		k = sourceKey(k[:0], s.ID, u.Rec.NoradID)
		v, err := tx.Get(ctx, k)
		if errors.Is(err, mvcc.ErrNotFound) {
			continue
		}
		if err != nil {
			return false, false, fmt.Errorf("catalog: read %s/%d: %w", s.Name, u.Rec.NoradID, err)
		}
		if err := rec.UnmarshalBinary(v); err != nil {
			return false, false, fmt.Errorf("catalog: %s/%d: %w", s.Name, u.Rec.NoradID, err)
		}
		r := query.NewRow(&rec, s.ID, s.Priority)
		if !found || query.Newer(&r, &best) {
			best, found = r, true
		}
	}
	tx.Put(key, resolvedValue(&best.Rec, best.Source, name))
	return best.Source == src.ID, false, nil
}
