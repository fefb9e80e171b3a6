package manifest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/meridian-ops/meridian/store/vfs"
)

var ctx = context.Background()

func tbl(level int, id uint64, lo, hi string) TableMeta {
	return TableMeta{ID: id, Level: level, Size: 100, Entries: 3, Smallest: []byte(lo), Largest: []byte(hi)}
}

func open(t *testing.T, fs vfs.FS) *Manifest {
	t.Helper()
	m, err := Open(ctx, Options{FS: fs, Dir: "db", MaxSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestEditsSurviveCrashAndReopen(t *testing.T) {
	fs := vfs.NewMem()
	m := open(t, fs)
	edits := []Edit{
		{FlushedLSN: 10, Add: []TableMeta{tbl(0, m.NewFileID(), "a", "m")}},
		{FlushedLSN: 20, Add: []TableMeta{tbl(0, m.NewFileID(), "c", "z")}},
		{Remove: []TableRef{{0, 1}, {0, 2}}, Add: []TableMeta{tbl(1, m.NewFileID(), "a", "k"), tbl(1, m.NewFileID(), "l", "z")}},
	}
	for _, e := range edits {
		if err := m.Apply(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	want := m.State()
	fs.Crash() // every Apply fsynced; CURRENT was synced at Open
	m2 := open(t, fs)
	got := m2.State()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after crash:\n got %+v\nwant %+v", got, want)
	}
	if got.FlushedLSN != 20 || got.Tables() != [NumLevels]int{0, 2} || got.NextFileID != 5 {
		t.Fatalf("state %+v", got)
	}
	if err := got.Check(); err != nil {
		t.Fatal(err)
	}
	names, _ := fs.List("db")
	if len(names) != 2 { // CURRENT + one manifest
		t.Fatalf("files %v", names)
	}
}

func TestRejectsImpossibleEdits(t *testing.T) {
	m := open(t, vfs.NewMem())
	if err := m.Apply(ctx, Edit{Remove: []TableRef{{0, 9}}}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("remove of missing table: %v", err)
	}
	m.Apply(ctx, Edit{Add: []TableMeta{tbl(1, 1, "a", "f")}})
	if err := m.Apply(ctx, Edit{Add: []TableMeta{tbl(1, 2, "e", "g")}}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("overlapping L1 tables accepted: %v", err)
	}
	if m.State().Tables()[1] != 1 {
		t.Fatal("rejected edit changed the state")
	}
}

// TestTornLastEditEveryOffset cuts the manifest inside its last edit at
// every byte: Open must return the state before that edit.
func TestTornLastEditEveryOffset(t *testing.T) {
	fs := vfs.NewMem()
	m := open(t, fs)
	m.Apply(ctx, Edit{FlushedLSN: 5, Add: []TableMeta{tbl(0, 1, "a", "b")}})
	before := m.State()
	sizeBefore := m.Size()
	m.Apply(ctx, Edit{FlushedLSN: 9, Add: []TableMeta{tbl(0, 2, "c", "d")}})
	name := filepath.Join("db", m.FileName())
	full, _ := vfs.ReadAll(fs, name)
	for cut := sizeBefore; cut < int64(len(full)); cut++ {
		mem := vfs.NewMem()
		vfs.WriteFile(mem, name, full[:cut])
		vfs.WriteFile(mem, "db/CURRENT", []byte(m.FileName()+"\n"))
		m2, err := Open(ctx, Options{FS: mem, Dir: "db"})
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if fmt.Sprint(m2.State()) != fmt.Sprint(before) {
			t.Fatalf("cut %d: state %+v", cut, m2.State())
		}
		// Edits after a torn tail go to a fresh file and survive a reopen.
		if err := m2.Apply(ctx, Edit{FlushedLSN: 11}); err != nil {
			t.Fatal(err)
		}
		m2.Close()
		m3, err := Open(ctx, Options{FS: mem, Dir: "db"})
		if err != nil || m3.State().FlushedLSN != 11 {
			t.Fatalf("cut %d: edit after torn tail lost: %v", cut, err)
		}
		m3.Close()
	}
}

func TestRewriteWhenGrown(t *testing.T) {
	fs := vfs.NewMem()
	m := open(t, fs)
	for i := uint64(1); i <= 200; i++ {
		if err := m.Apply(ctx, Edit{FlushedLSN: i, Add: []TableMeta{tbl(0, i, "a", "b")}, Remove: removeOld(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if m.Rewrites() < 2 || m.Size() > 4096+200 {
		t.Fatalf("rewrites %d size %d", m.Rewrites(), m.Size())
	}
	want := m.State()
	fs.Crash()
	if got := open(t, fs).State(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after rewrite+crash: %+v", got)
	}
}

func removeOld(i uint64) []TableRef {
	if i > 1 {
		return []TableRef{{0, i - 1}}
	}
	return nil
}

// TestCheckpointSwitchIsAtomic fails each step of a checkpoint and crashes:
// the reopened state is always the complete pre-checkpoint state.
func TestCheckpointSwitchIsAtomic(t *testing.T) {
	for _, op := range []vfs.Op{vfs.OpCreate, vfs.OpWrite, vfs.OpSync, vfs.OpRename, vfs.OpSyncDir} {
		t.Run(op.String(), func(t *testing.T) {
			mem := vfs.NewMem()
			ff := vfs.NewFaulty(mem, nil)
			m, err := Open(ctx, Options{FS: ff, Dir: "db"})
			if err != nil {
				t.Fatal(err)
			}
			m.Apply(ctx, Edit{FlushedLSN: 7, Add: []TableMeta{tbl(1, 1, "a", "b")}})
			want := m.State()
			ff.SetInjector(func(o vfs.Op, _ string) error {
				if o == op {
					return vfs.ErrInjected
				}
				return nil
			})
			if err := m.Checkpoint(ctx); !errors.Is(err, vfs.ErrInjected) {
				t.Fatalf("checkpoint err = %v", err)
			}
			if err := m.Apply(ctx, Edit{FlushedLSN: 8}); !errors.Is(err, ErrClosed) {
				t.Fatalf("poisoned manifest accepted an edit: %v", err)
			}
			mem.Crash()
			got := open(t, mem).State()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("state %+v want %+v", got, want)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	e0 := Edit{Checkpoint: true, NextFileID: 3, Add: []TableMeta{tbl(1, 1, "a", "c"), tbl(1, 2, "d", "f")}}
	e1 := Edit{FlushedLSN: 9, Remove: []TableRef{{1, 1}}}
	f.Add(e1.Encode(e0.Encode(nil)))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 20))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, _, _, err := Decode(data)
		if err != nil {
			return
		}
		if err := st.Check(); err != nil {
			t.Fatalf("Decode accepted a state that fails Check: %v", err)
		}
		// Round trip: a checkpoint of the decoded state decodes to itself.
		e := Edit{Checkpoint: true, FlushedLSN: st.FlushedLSN, NextFileID: st.NextFileID}
		for _, l := range st.Levels {
			e.Add = append(e.Add, l...)
		}
		st2, _, _, err := Decode(e.Encode(nil))
		if err != nil || fmt.Sprint(st2) != fmt.Sprint(st) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, st, st2)
		}
	})
}
