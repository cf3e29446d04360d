package main

import (
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"

	"github.com/sextant-dns/sextant/cache"
)

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
