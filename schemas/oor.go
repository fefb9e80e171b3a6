package schemas

import "errors"

// Requests and replies of the micro service "oor" (the store worker).
// AsOf is an MVCC read timestamp in Unix nanoseconds: a read sees the
// newest version committed at or before it; nil or 0 means "now".

// TleGetRequest asks oor.tle.get for one object.
type TleGetRequest struct {
	NoradID uint32  `msgpack:"norad_id" json:"norad_id"`
	AsOf    *uint64 `msgpack:"as_of,omitempty" json:"as_of,omitempty"`
}

// TleGetReply answers oor.tle.get; Found is false for an unknown id.
type TleGetReply struct {
	Found    bool   `msgpack:"found" json:"found"`
	Tle      *Tle   `msgpack:"tle,omitempty" json:"tle,omitempty"`
	CommitTs uint64 `msgpack:"commit_ts,omitempty" json:"commit_ts,omitempty"` // version read
	AsOf     uint64 `msgpack:"as_of" json:"as_of"`                             // snapshot used
}

// TlePutRequest is oor.tle.put's request: commit one element set.
type TlePutRequest struct {
	Tle Tle `msgpack:"tle" json:"tle"`
}

// TlePutReply answers oor.tle.put once the commit is durable.
type TlePutReply struct {
	CommitTs uint64 `msgpack:"commit_ts" json:"commit_ts"`
}

// TleScanRequest asks oor.tle.scan for ids in [From, To].
type TleScanRequest struct {
	From  uint32  `msgpack:"from" json:"from"`
	To    uint32  `msgpack:"to" json:"to"`
	AsOf  *uint64 `msgpack:"as_of,omitempty" json:"as_of,omitempty"`
	Limit int     `msgpack:"limit,omitempty" json:"limit,omitempty"` // 0: the server's cap
}

// TleScanReply answers oor.tle.scan. More is true when Limit cut the
// result; the next page starts after the last id returned.
type TleScanReply struct {
	Tles []Tle  `msgpack:"tles" json:"tles"`
	More bool   `msgpack:"more" json:"more"`
	AsOf uint64 `msgpack:"as_of" json:"as_of"`
}

// TleSnapshotRequest asks oor.tle.snapshot for many ids read at one
// timestamp (a conjunction query's consistent view).
type TleSnapshotRequest struct {
	NoradIDs []uint32 `msgpack:"norad_ids" json:"norad_ids"`
	AsOf     *uint64  `msgpack:"as_of,omitempty" json:"as_of,omitempty"`
}

// TleSnapshotReply answers oor.tle.snapshot.
type TleSnapshotReply struct {
	AsOf    uint64   `msgpack:"as_of" json:"as_of"`
	Tles    []Tle    `msgpack:"tles" json:"tles"`
	Missing []uint32 `msgpack:"missing,omitempty" json:"missing,omitempty"`
}

// CatalogMergeRequest asks oor.catalog.merge to merge the per-source
// catalogs (newest epoch wins, ties by source priority).
type CatalogMergeRequest struct {
	AsOf    *uint64 `msgpack:"as_of,omitempty" json:"as_of,omitempty"`
	Samples int     `msgpack:"samples,omitempty" json:"samples,omitempty"` // winners to return as examples
}

// MergeSample is one object's merge outcome.
type MergeSample struct {
	NoradID      uint32  `msgpack:"norad_id" json:"norad_id"`
	WinnerSource string  `msgpack:"winner_source" json:"winner_source"`
	Epoch        float64 `msgpack:"epoch" json:"epoch"`
	Candidates   int     `msgpack:"candidates" json:"candidates"`
}

// CatalogMergeReply answers oor.catalog.merge.
type CatalogMergeReply struct {
	AsOf      uint64         `msgpack:"as_of" json:"as_of"`
	RowsIn    int            `msgpack:"rows_in" json:"rows_in"`
	Objects   int            `msgpack:"objects" json:"objects"`
	Conflicts int            `msgpack:"conflicts" json:"conflicts"`
	BySource  map[string]int `msgpack:"by_source" json:"by_source"` // winners per source
	Samples   []MergeSample  `msgpack:"samples,omitempty" json:"samples,omitempty"`
	ElapsedUs int64          `msgpack:"elapsed_us" json:"elapsed_us"`
}

// StoreStats answers oor.stats and is mirrored to KV meridian_stats key "store".
type StoreStats struct {
	Objects     uint64            `msgpack:"objects" json:"objects"`
	Commits     uint64            `msgpack:"commits" json:"commits"`
	Gets        uint64            `msgpack:"gets" json:"gets"`
	Scans       uint64            `msgpack:"scans" json:"scans"`
	Conflicts   uint64            `msgpack:"conflicts" json:"conflicts"`
	WALBytes    uint64            `msgpack:"wal_bytes" json:"wal_bytes"`
	SSTables    []int             `msgpack:"sstables" json:"sstables"` // per level
	Watermark   uint64            `msgpack:"watermark" json:"watermark"`
	Extra       map[string]uint64 `msgpack:"extra,omitempty" json:"extra,omitempty"`
	UpdatedAtMs int64             `msgpack:"updated_at_ms" json:"updated_at_ms"`
}

// MaxScanRange bounds a scan request; MaxSnapshotIDs bounds a snapshot.
const (
	MaxScanLimit   = 10_000
	MaxSnapshotIDs = 10_000
)

// Errors returned by request validation.
var (
	ErrBadRange      = errors.New("scan needs from <= to")
	ErrTooManyIDs    = errors.New("snapshot asks for more than 10000 ids")
	ErrLimitTooLarge = errors.New("scan limit above 10000")
)

// Validate checks a scan request.
func (r *TleScanRequest) Validate() error {
	if r.From > r.To {
		return ErrBadRange
	}
	if r.Limit < 0 || r.Limit > MaxScanLimit {
		return ErrLimitTooLarge
	}
	return nil
}

// Validate checks a snapshot request.
func (r *TleSnapshotRequest) Validate() error {
	if len(r.NoradIDs) > MaxSnapshotIDs {
		return ErrTooManyIDs
	}
	return nil
}

// Validate checks a get request.
func (r *TleGetRequest) Validate() error {
	if r.NoradID == 0 {
		return ErrNoNoradID
	}
	return nil
}

// Validate checks a put request.
func (r *TlePutRequest) Validate() error { return r.Tle.Validate() }
