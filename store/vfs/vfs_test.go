package vfs

import (
	"errors"
	"io"
	"path/filepath"
	"syscall"
	"testing"
)

func TestMemCrashKeepsOnlySynced(t *testing.T) {
	m := NewMem()
	f, _ := m.Create("d/a")
	f.Write([]byte("hello"))
	f.Sync()
	f.Write([]byte(" world"))
	// Not yet SyncDir: the file itself is lost on crash.
	m.Crash()
	if _, err := m.Open("d/a"); err == nil {
		t.Fatal("file whose directory entry was never synced survived the crash")
	}

	f, _ = m.Create("d/a")
	f.Write([]byte("hello"))
	f.Sync()
	m.SyncDir("d")
	f.Write([]byte(" world"))
	if got, _ := ReadAll(m, "d/a"); string(got) != "hello world" {
		t.Fatalf("live read = %q", got)
	}
	m.Crash()
	got, err := ReadAll(m, "d/a")
	if err != nil || string(got) != "hello" {
		t.Fatalf("after crash = %q, %v; want synced prefix", got, err)
	}
}

func TestMemRenameDurability(t *testing.T) {
	m := NewMem()
	WriteFile(m, "d/CURRENT", []byte("old"))
	m.SyncDir("d")
	WriteFile(m, "d/CURRENT.tmp", []byte("new"))
	m.Rename("d/CURRENT.tmp", "d/CURRENT")
	m.Crash() // rename not synced: old content
	if got, _ := ReadAll(m, "d/CURRENT"); string(got) != "old" {
		t.Fatalf("unsynced rename survived: %q", got)
	}
	WriteFile(m, "d/CURRENT.tmp", []byte("new"))
	m.Rename("d/CURRENT.tmp", "d/CURRENT")
	m.SyncDir("d")
	m.Crash()
	if got, _ := ReadAll(m, "d/CURRENT"); string(got) != "new" {
		t.Fatalf("synced rename lost: %q", got)
	}
	if names, _ := m.List("d"); len(names) != 1 {
		t.Fatalf("List = %v", names)
	}
}

func TestOpenHandleSurvivesRemove(t *testing.T) {
	for _, fs := range []FS{NewMem(), Default} {
		dir := t.TempDir()
		name := filepath.Join(dir, "x")
		WriteFile(fs, name, []byte("abc"))
		f, err := fs.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := fs.Remove(name); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 3)
		if _, err := f.ReadAt(buf, 0); err != nil && err != io.EOF || string(buf) != "abc" {
			t.Fatalf("%T: read after remove = %q %v", fs, buf, err)
		}
		f.Close()
	}
}

func TestFaultyShortWriteAndENOSPC(t *testing.T) {
	m := NewMem()
	ff := NewFaulty(m, func(op Op, name string) error {
		if op == OpWrite {
			return ErrInjected
		}
		return nil
	})
	ff.ShortWrites = true
	f, _ := ff.Create("a")
	n, err := f.Write([]byte("abcdef"))
	if !errors.Is(err, ErrInjected) || n != 3 {
		t.Fatalf("short write: n=%d err=%v", n, err)
	}
	ff.SetInjector(nil)
	ff.DiskFull(4)
	n, err = f.Write([]byte("123456"))
	if !errors.Is(err, syscall.ENOSPC) || n != 4 {
		t.Fatalf("ENOSPC write: n=%d err=%v", n, err)
	}
	if got, _ := ReadAll(m, "a"); string(got) != "abc1234" {
		t.Fatalf("contents %q", got)
	}
	ff.SetInjector(func(op Op, _ string) error {
		if op == OpSync {
			return ErrInjected
		}
		return nil
	})
	if err := f.Sync(); !errors.Is(err, ErrInjected) {
		t.Fatalf("sync err = %v", err)
	}
}
