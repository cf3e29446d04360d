package server

import (
	"encoding/binary"
	"time"

	"github.com/sextant-dns/sextant/internal/histogram"
)

// hitSampleEvery is how many cache hits share one latency measurement.
// A hit from the ready-to-send cache takes 150 ns or so, and reading the
// clock twice (about 80 ns here) would add half of it; one in 64 costs
// about a nanosecond per query on average and still gives thousands of
// samples a minute on any resolver busy enough for the distribution to
// matter. The sample is chosen by the query ID, which clients pick at
// random (RFC 5452 9.2): no random number, no shared counter, nothing
// but a comparison on the 63 hits in 64 that are not measured. A client
// that sends one ID every time is measured always or never; that skews
// only the histogram, by one client's share.
const hitSampleEvery = 64

// Latency holds the handler's answer-latency histograms, from the query's
// arrival at the handler to its response ready to write (the front end
// then sends it). Hits are answers from
// the ready-to-send cache and, for queries without RD, from the record
// cache; they are sampled, one in hitSampleEvery. Misses are the
// resolver's answers (from its record cache or after iteration), every
// one; Local the local zones' answers not yet in the ready cache.
type Latency struct {
	Hit, Miss, Local *histogram.Histogram
}

// NewLatency makes empty histograms with histogram.LatencyBounds.
func NewLatency() *Latency {
	return &Latency{
		Hit:   histogram.New(histogram.LatencyBounds),
		Miss:  histogram.New(histogram.LatencyBounds),
		Local: histogram.New(histogram.LatencyBounds),
	}
}

// HitSampleEvery is how many cache hits share one sample of Latency.Hit.
const HitSampleEvery = hitSampleEvery

// sampleHit reports whether a hit for the query with id is measured.
func sampleHit(id uint16) bool { return id%hitSampleEvery == 0 }

// timedReady is AnswerReady measuring one hit in hitSampleEvery.
func (h *Handler) timedReady(dst, query []byte, maxSize int) ([]byte, bool) {
	if len(query) < 2 || !sampleHit(binary.BigEndian.Uint16(query)) {
		return h.answers.WriteSized(dst, query, maxSize)
	}
	start := time.Now()
	out, ok := h.answers.WriteSized(dst, query, maxSize)
	if ok {
		h.lat.Hit.Observe(time.Since(start))
	}
	return out, ok
}
