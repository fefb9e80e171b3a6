package processor

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/meridian-ops/meridian/schemas"
)

// benchMessages are encoded batches of 1,000 frames with about a third
// duplicates and disjoint sequence ranges: 256 of them hold more unique keys
// (~170k) than the window (131k), so when the benchmark cycles back to a
// message its keys have been forgotten and the workload stays the course's.
var benchMessages = func() [][]byte {
	r := rand.New(rand.NewPCG(42, 42))
	msgs := make([][]byte, 256)
	for i := range msgs {
		b := courseBatch(r, 1000, uint64(i)*10_000)
		for j := range b.Frames {
			b.Frames[j].Payload = b.Frames[j].Payload[:64]
		}
		msgs[i] = schemas.AppendFrameBatch(nil, b)
	}
	return msgs
}()

const framesPerBatch = 1000

func reportFPS(b *testing.B) {
	b.ReportMetric(float64(b.N)*framesPerBatch/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkCourseRun is the whole core per batch of 1,000 frames: decode
// from the bus's msgpack, validate, dedup, sort, encode the outputs.
func BenchmarkCourseRun(b *testing.B) {
	c := NewCore(CoreConfig{})
	for i := range len(benchMessages) { // warm-up
		_, _ = c.Process(benchMessages[i])
		c.Encode()
		c.Commit()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := c.Process(benchMessages[i%len(benchMessages)]); err != nil {
			b.Fatal(err)
		}
		c.Encode()
		c.Commit()
	}
	reportFPS(b)
}

// BenchmarkStage measures each stage alone on the same batches.
func BenchmarkStage(b *testing.B) {
	b.Run("decode", func(b *testing.B) {
		c := NewCore(CoreConfig{})
		b.ReportAllocs()
		for i := range b.N {
			if err := c.b.decode(benchMessages[i%len(benchMessages)]); err != nil {
				b.Fatal(err)
			}
		}
		reportFPS(b)
	})
	b.Run("validate+dedup+sort", func(b *testing.B) {
		c := NewCore(CoreConfig{})
		decoded := make([]*Batch, 16)
		for i := range decoded {
			decoded[i] = newBatch(1000, 1<<20)
			_ = decoded[i].decode(benchMessages[i])
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			c.b = decoded[i%len(decoded)]
			c.run()
			c.Rollback() // keep the window from remembering the 16 batches
		}
		reportFPS(b)
	})
	b.Run("sort", func(b *testing.B) {
		c := NewCore(CoreConfig{})
		_, _ = c.Process(benchMessages[0])
		order := slices.Clone(c.order)
		slices.Sort(order) // arrival order: what the sort sees in the pipeline
		hs := c.b.Headers
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			copy(c.order, order)
			slices.SortStableFunc(c.order, func(a, b uint32) int { return cmp.Compare(hs[a].TimestampMs, hs[b].TimestampMs) })
		}
		reportFPS(b)
	})
	b.Run("encode", func(b *testing.B) {
		c := NewCore(CoreConfig{})
		_, _ = c.Process(benchMessages[0])
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			c.Encode()
		}
		reportFPS(b)
	})
}

// BenchmarkNaiveCourseRun is the "before" of the audit: the same work done
// the obvious way — reflection-based msgpack decode into []schemas.Frame,
// a fresh map per batch plus a map for the window, sort.SliceStable over the
// frames themselves, and Marshal for the output.
func BenchmarkNaiveCourseRun(b *testing.B) {
	window := map[Key]struct{}{}
	var ring []Key
	b.ReportAllocs()
	for i := range b.N {
		var fb schemas.FrameBatch
		if err := schemas.Unmarshal(benchMessages[i%len(benchMessages)], &fb); err != nil {
			b.Fatal(err)
		}
		seen := map[Key]struct{}{}
		var out []schemas.Frame
		for _, f := range fb.Frames {
			if f.Flags&schemas.FlagCRCFailed != 0 {
				continue
			}
			k := Key{f.SatelliteID, f.Sequence}
			if _, dup := seen[k]; dup {
				continue
			}
			if _, dup := window[k]; dup {
				continue
			}
			seen[k] = struct{}{}
			window[k] = struct{}{}
			ring = append(ring, k)
			out = append(out, f)
		}
		for len(ring) > 1<<17 {
			delete(window, ring[0])
			ring = ring[1:]
		}
		sort.SliceStable(out, func(a, b int) bool { return out[a].TimestampMs < out[b].TimestampMs })
		if _, err := schemas.Marshal(&schemas.FrameBatch{StationID: "gs-a", Frames: out}); err != nil {
			b.Fatal(err)
		}
	}
	reportFPS(b)
}
