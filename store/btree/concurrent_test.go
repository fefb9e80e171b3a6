package btree

import (
	"bytes"
	"context"
	"sync"
	"testing"
)

// Readers run Get and Scan while a writer inserts and deletes, on a small
// pool so evictions happen under the readers; run with -race. Keys below
// 1000 are never touched by the writer and must always read back intact.
func TestConcurrentReadersAndWriter(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, 16, Options{})
	for i := range uint32(1000) {
		if err := e.tree.Put(ctx, i, tleValue(i)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	stop := make(chan struct{})
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint32(r); ; i = (i + 7) % 1000 {
				select {
				case <-stop:
					return
				default:
				}
				v, ok, err := e.tree.Get(ctx, i, nil)
				if err != nil || !ok || !bytes.Equal(v, tleValue(i)) {
					errs <- err
					return
				}
				n := 0
				if err := e.tree.Scan(ctx, 100, 199, func(k uint32, v []byte) bool { n++; return true }); err != nil || n != 100 {
					errs <- err
					return
				}
			}
		}()
	}
	for i := uint32(1000); i < 6000; i++ {
		if err := e.tree.Put(ctx, i, tleValue(i)); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 && i >= 1500 {
			if _, err := e.tree.Delete(ctx, i-500); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("reader saw a wrong result (err=%v)", err)
	}
	mustCheck(t, e.tree)
}
