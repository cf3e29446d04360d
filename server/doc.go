// Package server answers clients: it is the transport.Handler between the
// front ends and the rest of Sextant. Each query goes, in order, to the
// co-located authoritative zones, to the ready-to-send answer cache
// (straight from the raw query, before it is parsed: the hot path), and to
// the resolver, whose response is stored in that answer cache.
//
// It keeps the answer cache out of the resolver: the resolver resolves
// questions (its Resolve and Exchange are what embedding programs call),
// and serving clients (wire-level answer reuse, local zones first) is this
// package's one job, as the front ends' is speaking the transports.
package server
