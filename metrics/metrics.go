// Package metrics exposes Sextant's counters to Prometheus (issue 11). It
// is the only package that imports the Prometheus client: the packages
// that do the work keep plain atomic counters and fixed-bucket histograms
// (transport.ResponseCounters, server.Latency, cache.Stats,
// resolver.Stats, ...), and the Collector here reads them when /metrics is
// scraped. Nothing is pushed into Prometheus types per query, so metrics
// cost the query path only the atomic adds its own packages make.
//
// Names follow the Prometheus conventions: a sextant_ prefix, _total on
// counters, base units (seconds, bytes).
package metrics

import (
	"strconv"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sextant-dns/sextant/authority/secondary"
	"github.com/sextant-dns/sextant/cache"
	"github.com/sextant-dns/sextant/internal/histogram"
	"github.com/sextant-dns/sextant/resolver"
	"github.com/sextant-dns/sextant/server"
	"github.com/sextant-dns/sextant/sharedcache"
	"github.com/sextant-dns/sextant/transport"
)

// DefaultTopServers is how many upstream servers get series of their own:
// the most asked. The rest are summed under server="other", so that the
// series stay few however many servers the resolver has talked to.
const DefaultTopServers = 20

// ConnStats are one stream front end's connection counters, named
// ("tcp", "dot", "doh", "doh3", "doq").
type ConnStats struct {
	FrontEnd string
	Stats    transport.ConnStats
}

// Sources are what the Collector reads; any may be nil (or empty) when
// that part is off.
type Sources struct {
	Responses *transport.ResponseCounters
	Latency   *server.Latency
	// Resolver gives the upstream, validation and budget counters and
	// its RRset cache; Answers is the ready-to-send answer cache.
	Resolver  *resolver.Resolver
	Answers   *cache.Answers
	RateLimit *transport.RateLimiter
	// RRL is the response rate limiter of the local zones' answers.
	RRL *transport.ResponseRateLimiter
	// Conns returns the stream front ends' connection counters.
	Conns func() []ConnStats
	// Secondary gives the transfer status of secondary zones.
	Secondary *secondary.Manager
	// SharedCache is the fleet's shared cache (--shared-cache).
	SharedCache *sharedcache.Cache
	// Handler gives the questions refused by the recursion limits.
	Handler *server.Handler
	// TopServers bounds the upstream servers with series of their own;
	// 0 means DefaultTopServers.
	TopServers int
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("sextant_"+name, help, labels, nil)
}

var (
	descQueries = desc("queries_total", "Responses sent to clients, by transport and rcode (dropped queries are not counted).", "transport", "rcode")
	descLatency = desc("answer_duration_seconds", `Time from a query reaching the query router to its response written (on the UDP ready path: ready). cache="hit" (ready-to-send answers and RD=0 cache-only answers) is sampled, one hit in 64; "miss" (the resolver's answers) and "local" (co-located zones) count every answer.`, "cache")

	descCacheEntries   = desc("cache_entries", "Entries held by the cache.", "cache")
	descCacheBytes     = desc("cache_bytes", "Bytes the cache's entries are counted for against --cache-max-bytes.", "cache")
	descCacheHits      = desc("cache_hits_total", "Cache lookups that found a live entry.", "cache")
	descCacheMisses    = desc("cache_misses_total", "Cache lookups that found nothing live.", "cache")
	descCacheEvictions = desc("cache_evictions_total", "Entries pushed out by the cache's size bounds.", "cache")
	descCacheExpired   = desc("cache_expired_total", "Expired entries removed when looked up.", "cache")

	descUpQueries  = desc("upstream_queries_total", `Queries sent to authoritative servers, by server address (the most asked; the rest as server="other").`, "server")
	descUpTimeouts = desc("upstream_timeouts_total", "Upstream queries without a usable reply in time, by server.", "server")
	descUpReplies  = desc("upstream_replies_total", "Upstream queries answered, by server.", "server")
	descUpRTTSum   = desc("upstream_rtt_seconds_total", "Sum of the round-trip times of the upstream replies, by server (divide by sextant_upstream_replies_total for the mean).", "server")
	descUpSRTT     = desc("upstream_srtt_seconds", "Smoothed round-trip time used to select the server.", "server")
	descUpRTT      = desc("upstream_rtt_seconds", "Round-trip time of every upstream reply.")

	descValidations       = desc("validations_total", `DNSSEC validator runs by outcome: RFC 4035 state and Extended DNS Error code (ede="none" without one).`, "state", "ede")
	descBudget            = desc("budget_exhausted_total", `Client questions whose budget ran out: budget="resolution" (upstream queries, CNAME hops, depth, name-server lookups, deadline) or "validation" (signature checks, key fetches, NSEC3 hashing).`, "budget")
	descShared            = desc("shared_cache_operations_total", `Shared cache (Redis) operations by outcome: hit, miss, forged (refused: not signed with the fleet key), error, skipped (breaker open), write, write_dropped.`, "outcome")
	descSharedBreaker     = desc("shared_cache_breaker_open", "1 while the shared cache's circuit breaker is open (lookups are not sent).")
	descRecursionsRefused = desc("recursions_refused_total", "Questions answered SERVFAIL at once because their client network, or the resolver, had too many in resolution (--max-recursions*).")
	descRateLimit         = desc("ratelimit_responses_total", `UDP answers judged by the rate limiter, by verdict: passed, exempt, slipped (sent truncated or BADCOOKIE), dropped.`, "verdict")
	descRRL               = desc("rrl_responses_total", `Authoritative UDP answers of the local zones judged by response rate limiting (--rrl-responses-per-second), by verdict: passed, exempt (valid server cookie), slipped (sent truncated), dropped.`, "verdict")

	descConnsOpen    = desc("connections_open", "Connections open now, by stream front end.", "frontend")
	descConnsRefused = desc("connections_refused_total", `Connections refused, by front end and reason: "total" (at the cap), "client" or "network" (over a share).`, "frontend", "reason")
	descConnsEvicted = desc("connections_evicted_total", "Idle connections closed to make room for new ones.", "frontend")

	descZoneLoaded    = desc("secondary_zone_loaded", "1 when a version of the secondary zone is held.", "zone")
	descZoneExpired   = desc("secondary_zone_expired", "1 when the secondary zone's SOA expire passed without a successful refresh (it is not served).", "zone")
	descZoneFailing   = desc("secondary_zone_refresh_failing", "1 when the secondary zone's last refresh failed.", "zone")
	descZoneSerial    = desc("secondary_zone_serial", "SOA serial of the version held.", "zone")
	descZoneSuccess   = desc("secondary_zone_last_success_timestamp_seconds", "DNS-clock time of the last successful refresh (SOA checked or zone transferred).", "zone")
	descZoneTransfers = desc("secondary_zone_transfers_total", "New versions of the secondary zone transferred in.", "zone")
	descZoneNotifies  = desc("secondary_zone_notifies_refused_total", "NOTIFY messages for the zone refused.", "zone")
)

// Collector reads Sources at each scrape.
type Collector struct{ src Sources }

// NewCollector makes the collector of src.
func NewCollector(src Sources) *Collector {
	if src.TopServers <= 0 {
		src.TopServers = DefaultTopServers
	}
	return &Collector{src: src}
}

// Describe sends every metric's description.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descQueries, descLatency,
		descCacheEntries, descCacheBytes, descCacheHits, descCacheMisses, descCacheEvictions, descCacheExpired,
		descUpQueries, descUpTimeouts, descUpReplies, descUpRTTSum, descUpSRTT, descUpRTT,
		descValidations, descBudget, descRateLimit, descRRL, descShared, descSharedBreaker, descRecursionsRefused,
		descConnsOpen, descConnsRefused, descConnsEvicted,
		descZoneLoaded, descZoneExpired, descZoneFailing, descZoneSerial, descZoneSuccess, descZoneTransfers, descZoneNotifies,
	} {
		ch <- d
	}
}

// Collect reads every source.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.src
	if s.Responses != nil {
		s.Responses.Each(func(p transport.Proto, rcode int, n uint64) {
			ch <- counter(descQueries, n, p.String(), rcodeName(rcode))
		})
	}
	if s.Latency != nil {
		ch <- constHistogram(descLatency, s.Latency.Hit.Snapshot(), "hit")
		ch <- constHistogram(descLatency, s.Latency.Miss.Snapshot(), "miss")
		ch <- constHistogram(descLatency, s.Latency.Local.Snapshot(), "local")
	}
	if s.Resolver != nil {
		collectCache(ch, "rrset", s.Resolver.Cache().Stats())
		collectResolver(ch, s.Resolver.Stats(s.TopServers))
	}
	if s.Answers != nil {
		collectCache(ch, "answers", s.Answers.Stats())
	}
	if s.RateLimit != nil {
		st := s.RateLimit.Stats()
		collectLimiter(ch, descRateLimit, st.Passed, st.Exempt, st.Slipped, st.Dropped)
	}
	if s.RRL != nil {
		st := s.RRL.Stats()
		collectLimiter(ch, descRRL, st.Passed, st.Exempt, st.Slipped, st.Dropped)
	}
	if s.SharedCache != nil {
		st := s.SharedCache.Stats()
		for _, o := range []struct {
			name string
			n    uint64
		}{{"hit", st.Hits}, {"miss", st.Misses}, {"forged", st.Forged}, {"error", st.Errors}, {"skipped", st.Skipped}, {"write", st.Writes}, {"write_dropped", st.WritesDropped}} {
			ch <- counter(descShared, o.n, o.name)
		}
		ch <- gauge(descSharedBreaker, boolValue(st.BreakerOpen))
	}
	if s.Handler != nil {
		ch <- counter(descRecursionsRefused, s.Handler.RecursionsRefused())
	}
	if s.Conns != nil {
		for _, fe := range s.Conns() {
			st := fe.Stats
			ch <- gauge(descConnsOpen, float64(st.Open), fe.FrontEnd)
			ch <- counter(descConnsRefused, uint64(st.RefusedTotal), fe.FrontEnd, "total")
			ch <- counter(descConnsRefused, uint64(st.RefusedClient), fe.FrontEnd, "client")
			ch <- counter(descConnsRefused, uint64(st.RefusedPrefix), fe.FrontEnd, "network")
			ch <- counter(descConnsEvicted, uint64(st.Evicted), fe.FrontEnd)
		}
	}
	if s.Secondary != nil {
		for _, z := range s.Secondary.Status() {
			collectZone(ch, z)
		}
	}
}

func collectCache(ch chan<- prometheus.Metric, name string, st cache.Stats) {
	ch <- gauge(descCacheEntries, float64(st.Entries), name)
	ch <- gauge(descCacheBytes, float64(st.Bytes), name)
	ch <- counter(descCacheHits, st.Hits, name)
	ch <- counter(descCacheMisses, st.Misses, name)
	ch <- counter(descCacheEvictions, st.Evictions, name)
	ch <- counter(descCacheExpired, st.Expired, name)
}

func collectResolver(ch chan<- prometheus.Metric, st resolver.Stats) {
	servers := st.Upstream
	if st.UpstreamOther.Queries > 0 {
		servers = append(servers, st.UpstreamOther)
	}
	for _, u := range servers {
		name := "other"
		if u.Addr.IsValid() {
			name = u.Addr.String()
		}
		ch <- counter(descUpQueries, u.Queries, name)
		ch <- counter(descUpTimeouts, u.Timeouts, name)
		ch <- counter(descUpReplies, u.Replies, name)
		ch <- prometheus.MustNewConstMetric(descUpRTTSum, prometheus.CounterValue, u.RTTSum.Seconds(), name)
		if u.SRTTKnown {
			ch <- gauge(descUpSRTT, u.SRTT.Seconds(), name)
		}
	}
	ch <- constHistogram(descUpRTT, st.UpstreamRTT)
	for o, n := range st.Validations {
		ede := "none"
		if o.EDE >= 0 {
			ede = strconv.Itoa(o.EDE)
		}
		ch <- counter(descValidations, n, o.Status.String(), ede)
	}
	ch <- counter(descBudget, st.BudgetExhausted, "resolution")
	ch <- counter(descBudget, st.ValidationBudgetExhausted, "validation")
}

func collectZone(ch chan<- prometheus.Metric, z secondary.Status) {
	ch <- gauge(descZoneLoaded, boolValue(z.Loaded), z.Zone)
	ch <- gauge(descZoneExpired, boolValue(z.Expired), z.Zone)
	ch <- gauge(descZoneFailing, boolValue(z.LastError != ""), z.Zone)
	if z.Loaded {
		ch <- gauge(descZoneSerial, float64(z.Serial), z.Zone)
	}
	if !z.LastSuccess.IsZero() {
		ch <- gauge(descZoneSuccess, float64(z.LastSuccess.UnixNano())/float64(time.Second), z.Zone)
	}
	ch <- counter(descZoneTransfers, z.Transfers, z.Zone)
	ch <- counter(descZoneNotifies, z.NotifiesRefused, z.Zone)
}

// rcodeName is the rcode's mnemonic ("NOERROR", "NXDOMAIN"; "BADCOOKIE"),
// or "OTHER" for transport.RcodeOther.
func rcodeName(rcode int) string {
	if rcode == transport.RcodeOther {
		return "OTHER"
	}
	if s, ok := dns.RcodeToString[rcode]; ok {
		return s
	}
	return strconv.Itoa(rcode)
}

func counter(d *prometheus.Desc, n uint64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), labels...)
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// constHistogram turns a histogram snapshot (cumulative counts) into a
// Prometheus histogram in seconds.
func constHistogram(d *prometheus.Desc, s histogram.Snapshot, labels ...string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(s.Bounds))
	for i, b := range s.Bounds {
		buckets[b.Seconds()] = s.Counts[i]
	}
	return prometheus.MustNewConstHistogram(d, s.Count, s.Sum.Seconds(), buckets, labels...)
}

// collectLimiter sends a limiter's verdict counters (the client rate
// limiter's and RRL's have the same four) under desc.
func collectLimiter(ch chan<- prometheus.Metric, desc *prometheus.Desc, passed, exempt, slipped, dropped uint64) {
	ch <- counter(desc, passed, "passed")
	ch <- counter(desc, exempt, "exempt")
	ch <- counter(desc, slipped, "slipped")
	ch <- counter(desc, dropped, "dropped")
}
