package memtable

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
)

func k(i uint32) []byte { return binary.BigEndian.AppendUint32(nil, i) }

// TestModel checks Get and iteration at every snapshot against a model of
// versioned maps.
func TestModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tb := New()
	type ver struct {
		lsn  uint64
		kind Kind
		val  string
	}
	model := map[uint32][]ver{}
	for lsn := uint64(1); lsn <= 3000; lsn++ {
		key := uint32(r.IntN(500))
		kind := KindSet
		if r.IntN(5) == 0 {
			kind = KindDelete
		}
		val := ""
		if kind == KindSet {
			val = string(rune('a' + r.IntN(26)))
		}
		tb.Add(k(key), lsn, kind, []byte(val))
		model[key] = append(model[key], ver{lsn, kind, val})
	}
	if err := tb.Check(); err != nil {
		t.Fatal(err)
	}
	at := func(key uint32, snap uint64) (ver, bool) {
		var best ver
		ok := false
		for _, v := range model[key] {
			if v.lsn <= snap {
				best, ok = v, true
			}
		}
		return best, ok
	}
	for _, snap := range []uint64{0, 1, 500, 1777, 3000} {
		for key := uint32(0); key < 510; key++ {
			want, ok := at(key, snap)
			v, kind, found := tb.Get(k(key), snap)
			if found != ok || (ok && (kind != want.kind || string(v) != want.val)) {
				t.Fatalf("snap %d key %d: got %q %v %v want %+v %v", snap, key, v, kind, found, want, ok)
			}
		}
		// Iteration yields each key once, in order, at its visible version.
		var keys []uint32
		for key := range model {
			if _, ok := at(key, snap); ok {
				keys = append(keys, key)
			}
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		it := tb.Iter(snap)
		i := 0
		for ok := it.First(); ok; ok = it.Next() {
			if i >= len(keys) || !bytes.Equal(it.Key(), k(keys[i])) {
				t.Fatalf("snap %d: iteration position %d got %x", snap, i, it.Key())
			}
			want, _ := at(keys[i], snap)
			if it.Kind() != want.kind || string(it.Value()) != want.val || it.LSN() != want.lsn {
				t.Fatalf("snap %d key %d: iter %q want %+v", snap, keys[i], it.Value(), want)
			}
			i++
		}
		if i != len(keys) {
			t.Fatalf("snap %d: iterated %d keys, want %d", snap, i, len(keys))
		}
		if len(keys) > 3 {
			if !it.SeekGE(k(keys[2])) || !bytes.Equal(it.Key(), k(keys[2])) {
				t.Fatalf("SeekGE exact failed")
			}
			if !it.SeekGE(append(k(keys[2]), 0)) || !bytes.Equal(it.Key(), k(keys[3])) {
				t.Fatalf("SeekGE between keys failed")
			}
		}
	}
}

func TestSameLSNLaterWins(t *testing.T) {
	tb := New()
	tb.Add([]byte("a"), 7, KindSet, []byte("first"))
	tb.Add([]byte("a"), 7, KindSet, []byte("second"))
	if v, _, _ := tb.Get([]byte("a"), 7); string(v) != "second" {
		t.Fatalf("got %q", v)
	}
}

// TestConcurrentReaders runs readers during writes (meaningful with -race).
func TestConcurrentReaders(t *testing.T) {
	tb := New()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				it := tb.Iter(^uint64(0))
				var prev []byte
				for ok := it.First(); ok; ok = it.Next() {
					if prev != nil && bytes.Compare(prev, it.Key()) >= 0 {
						t.Error("iteration out of order")
						return
					}
					prev = it.Key()
				}
			}
		}()
	}
	for i := uint32(0); i < 20000; i++ {
		tb.Add(k(i*7919%20000), uint64(i+1), KindSet, []byte("v"))
	}
	close(stop)
	wg.Wait()
	if err := tb.Check(); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkAddRandom(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	val := make([]byte, 82)
	b.ReportAllocs()
	tb := New()
	for i := 0; b.Loop(); i++ {
		if i%100000 == 0 {
			tb = New()
		}
		tb.Add(k(r.Uint32()), uint64(i+1), KindSet, val)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkGet(b *testing.B) {
	tb := New()
	val := make([]byte, 82)
	for i := uint32(0); i < 100000; i++ {
		tb.Add(k(i*7919%100000), uint64(i+1), KindSet, val)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		tb.Get(k(uint32(i%100000)), ^uint64(0))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
}

func TestAppendSortedMatchesAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	type e struct {
		k   uint32
		lsn uint64
		v   string
	}
	var es []e
	for lsn := uint64(1); lsn <= 2000; lsn++ {
		es = append(es, e{uint32(r.IntN(300)), lsn, fmt.Sprint(lsn)})
	}
	a := New()
	for _, x := range es {
		a.Add(k(x.k), x.lsn, KindSet, []byte(x.v))
	}
	sort.Slice(es, func(i, j int) bool {
		if es[i].k != es[j].k {
			return es[i].k < es[j].k
		}
		return es[i].lsn > es[j].lsn
	})
	b := New()
	for _, x := range es {
		b.AppendSorted(k(x.k), x.lsn, KindSet, []byte(x.v))
	}
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
	for _, snap := range []uint64{5, 999, 2000} {
		ia, ib := a.Iter(snap), b.Iter(snap)
		oa, ob := ia.First(), ib.First()
		for oa && ob {
			if !bytes.Equal(ia.Key(), ib.Key()) || !bytes.Equal(ia.Value(), ib.Value()) {
				t.Fatalf("snap %d: %x=%s vs %x=%s", snap, ia.Key(), ia.Value(), ib.Key(), ib.Value())
			}
			oa, ob = ia.Next(), ib.Next()
		}
		if oa || ob {
			t.Fatalf("snap %d: lengths differ", snap)
		}
	}
	defer func() {
		if recover() != ErrNotSorted {
			t.Fatal("out-of-order AppendSorted did not panic")
		}
	}()
	b.AppendSorted(k(0), 1, KindSet, nil)
}
