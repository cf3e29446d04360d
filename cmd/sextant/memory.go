package main

import (
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"syscall"

	"github.com/sextant-dns/sextant/cache"
)

// memoryOverhead is the memory `sextant serve` is allowed beyond
// --cache-max-bytes before the Go runtime collects harder: the runtime
// itself, goroutine stacks, socket and packet buffers, the validator's and
// server selection's own tables, resolutions in flight.
const memoryOverhead = 128 << 20

// setMemoryLimit sets the Go memory limit (runtime/debug.SetMemoryLimit) to
// the cache bound plus memoryOverhead, so that the process's memory follows
// --cache-max-bytes instead of growing to twice the live heap (GOGC=100)
// before each collection. A GOMEMLIMIT in the environment wins: the
// runtime has applied it already.
func setMemoryLimit(cacheBytes int, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	limit := int64(cacheBytes) + memoryOverhead
	debug.SetMemoryLimit(limit)
	log.Debug("Go memory limit set from --cache-max-bytes", "bytes", limit)
}

// heapProfileEnv names the file prefix SIGUSR1 writes heap profiles to
// (PREFIX.1, PREFIX.2, ...). It is a debugging aid for bench/memory.sh (no
// flag: not a stable interface).
const heapProfileEnv = "SEXTANT_HEAP_PROFILE"

// reportMemoryOnSignal logs, on every SIGUSR1, the live heap after a
// collection and the number of entries of both caches, and writes a heap
// profile when SEXTANT_HEAP_PROFILE names a file. It returns a stop func.
func reportMemoryOnSignal(log *slog.Logger, rrsets *cache.Cache, answers *cache.Answers) func() {
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	done := make(chan struct{})
	go func() {
		for n := 1; ; n++ {
			select {
			case <-usr1:
				reportMemory(log, rrsets, answers, n)
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(usr1); close(done) }
}

func reportMemory(log *slog.Logger, rrsets *cache.Cache, answers *cache.Answers, n int) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	log.Warn("memory", "heap_alloc", ms.HeapAlloc, "heap_sys", ms.HeapSys, "sys", ms.Sys,
		"rrset_entries", rrsets.Stats().Entries, "answer_entries", answers.Stats().Entries)
	prefix := os.Getenv(heapProfileEnv)
	if prefix == "" {
		return
	}
	f, err := os.Create(prefix + "." + strconv.Itoa(n))
	if err != nil {
		log.Error("heap profile", "err", err)
		return
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		log.Error("heap profile", "err", err)
	}
}
