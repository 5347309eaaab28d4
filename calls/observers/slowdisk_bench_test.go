package observers_test

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/store"
	"github.com/membrane-mcp/membrane/mcp/mcptest"
)

// BenchmarkStoreSlowDisk shows that the store's writes are not on a
// call's critical path: the p99 of a no-op MCP call with the store on a
// disk made slow (its filesystem hammered by a loop that writes and
// fsyncs 1 MiB at a time, beside the store's own commits and
// checkpoints) against the same with the store on tmpfs (/dev/shm),
// alternating in rounds. x_p99 is the slow disk's call p99 over tmpfs's
// (1.0: the call does not follow the disk); disk_fsync_p99_ms is how slow
// the hammered disk's fsync was during the run, to show it was slow; and
// dropped counts the events the stores lost.
func BenchmarkStoreSlowDisk(b *testing.B) {
	const shm = "/dev/shm"
	if st, err := os.Stat(shm); err != nil || !st.IsDir() {
		b.Skip("no tmpfs at /dev/shm")
	}
	slowDir := b.TempDir() // the test's temporary directory, on a real disk
	fastDir, err := os.MkdirTemp(shm, "membrane-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(fastDir) })

	open := func(dir string) (*calls.Router, *store.Store) {
		st, err := store.Open(filepath.Join(dir, "membrane.db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		r := mcptest.NoopRouter(b, &calls.RouterOptions{Observers: []calls.Observer{st}})
		b.Cleanup(func() { r.Close(); st.Close() })
		return r, st
	}
	slowR, _ := open(slowDir)
	fastR, _ := open(fastDir)

	// The hammer: write and fsync 1 MiB at a time on the slow disk's
	// filesystem, timing each fsync.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var fsyncs []time.Duration
	wg.Go(func() {
		f, err := os.Create(filepath.Join(slowDir, "hammer"))
		if err != nil {
			b.Error(err)
			return
		}
		defer f.Close()
		buf := make([]byte, 1<<20)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%64 == 0 {
				f.Truncate(0)
				f.Seek(0, 0)
			}
			f.Write(buf)
			t0 := time.Now()
			f.Sync()
			fsyncs = append(fsyncs, time.Since(t0))
		}
	})

	slow, fast := mcptest.NoopCaller(b, "mcp-inmemory", slowR), mcptest.NoopCaller(b, "mcp-inmemory", fastR)
	var tSlow, tFast []time.Duration
	timed := func(f func(), into *[]time.Duration) func() {
		return func() {
			t0 := time.Now()
			f()
			*into = append(*into, time.Since(t0))
		}
	}
	mcptest.AlternateRatios(b, 50, timed(fast, &tFast), timed(slow, &tSlow))
	close(stop)
	wg.Wait()
	pSlow, pFast := p99(tSlow), p99(tFast)
	b.ReportMetric(float64(pSlow)/float64(pFast), "x_p99")
	b.ReportMetric(float64(pSlow.Microseconds())/1000, "p99_slow_ms")
	b.ReportMetric(float64(pFast.Microseconds())/1000, "p99_tmpfs_ms")
	b.ReportMetric(float64(p99(fsyncs).Microseconds())/1000, "disk_fsync_p99_ms")
	b.ReportMetric(float64(mcptest.Dropped(slowR)+mcptest.Dropped(fastR)), "dropped")
}

func p99(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)*99/100]
}
