package cache

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/internal/dnsname"
)

// AnswerKey is the question a ready-to-send answer answers, with the query
// flags that change the answer.
type AnswerKey struct {
	Name  string // the qname, matched case-insensitively
	Type  uint16
	Class uint16
	DO    bool // the query's DNSSEC OK bit: RRSIGs included
	CD    bool // the query's CD bit: validation not applied
	// AD is the query's AD bit. RFC 6840 5.7: the response may carry AD
	// only if the query had DO or AD, so an answer made for such a query is
	// not given to one without. Leave it false when unsure: the only cost is
	// a miss.
	AD bool
}

// Answers is the ready-to-send answer cache: packed responses to hot
// questions that Write serves straight from a raw query. It is safe for
// concurrent use; there is no global lock.
//
// Besides the AnswerKey, an answer is keyed by whether the response has an
// OPT record, so that a query without EDNS never gets one (RFC 6891 7) and
// one with EDNS always does.
type Answers struct {
	cfg    Config
	seed   maphash.Seed
	shards shardSet[uint64, *answer]
	stats  counters
}

// answer is one stored response. It is immutable once stored.
type answer struct {
	wire    []byte   // the packed response
	qname   []byte   // the lower-cased wire qname
	qtype   uint16   //
	qclass  uint16   //
	flags   byte     // answerFlags
	nameEnd int      // the question's qname is wire[headerLen:nameEnd]
	ttlOffs []uint16 // offset of every TTL field in wire
	ttls    []uint32 // the TTL stored at each offset
	stored  time.Time
	expires time.Time
}

// Flag bits of an answer's identity beyond name, type and class.
const (
	flagDO byte = 1 << iota
	flagCD
	flagWantAD // DO or AD was set (RFC 6840 5.7)
	flagEDNS
)

func answerFlags(do, cd, ad, edns bool) byte {
	var f byte
	if do {
		f |= flagDO
	}
	if cd {
		f |= flagCD
	}
	if do || ad {
		f |= flagWantAD
	}
	if edns {
		f |= flagEDNS
	}
	return f
}

// NewAnswers makes a ready-to-send answer cache. Of cfg it uses MaxEntries,
// MaxBytes, Shards, MaxTTL and Clock.
func NewAnswers(cfg Config) *Answers {
	cfg = cfg.withDefaults()
	return &Answers{cfg: cfg, seed: maphash.MakeSeed(), shards: newShardSet[uint64, *answer](cfg, (*answer).bytes, nil)}
}

// hash identifies an answer by its lower-cased wire qname, type, class and
// flags. Different answers with one hash only evict each other: Write
// compares the full identity before serving.
func (a *Answers) hash(lowerQname []byte, qtype, qclass uint16, flags byte) uint64 {
	var h maphash.Hash
	h.SetSeed(a.seed)
	h.Write(lowerQname)
	var tail [5]byte
	binary.BigEndian.PutUint16(tail[0:], qtype)
	binary.BigEndian.PutUint16(tail[2:], qclass)
	tail[4] = flags
	h.Write(tail[:])
	return h.Sum64()
}

// Put packs resp once and stores it as the answer to k, to live as long as
// its smallest TTL (at most MaxTTL; the TTLs in it are lowered to MaxTTL).
// It stores nothing for a response that is not NOERROR or NXDOMAIN, is
// truncated, has no records with a TTL, has a TTL of 0, does not pack, or
// whose question is not k's.
func (a *Answers) Put(k AnswerKey, resp *dns.Msg) {
	if resp == nil || resp.Truncated || (resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError) {
		return
	}
	if len(resp.Question) != 1 {
		return
	}
	q := resp.Question[0]
	if q.Qtype != k.Type || q.Qclass != k.Class || lowerName(dns.Fqdn(q.Name)) != lowerName(dns.Fqdn(k.Name)) {
		return
	}
	packed := *resp // a shallow copy, so as not to change the caller's Compress
	packed.Compress = true
	wire, err := packed.Pack()
	if err != nil {
		return
	}
	lay, ok := layoutResponse(wire)
	if !ok || lay.minTTL == 0 {
		return
	}
	maxTTL := uint32(a.cfg.MaxTTL / time.Second)
	for i, off := range lay.ttlOffs {
		if lay.ttls[i] > maxTTL {
			lay.ttls[i] = maxTTL
			binary.BigEndian.PutUint32(wire[off:], maxTTL)
		}
	}
	life := min(lay.minTTL, maxTTL)
	if life == 0 {
		return
	}
	// ASCII-only folding, as parseQuestion folds the client's name: names
	// that differ in other octets must not share an answer.
	qname := bytes.Clone(wire[headerLen:lay.nameEnd])
	dnsname.LowerBytes(qname)
	now := a.cfg.Clock.Now()
	ans := &answer{
		wire:    wire,
		qname:   qname,
		qtype:   k.Type,
		qclass:  k.Class,
		flags:   answerFlags(k.DO, k.CD, k.AD, lay.edns),
		nameEnd: lay.nameEnd,
		ttlOffs: lay.ttlOffs,
		ttls:    lay.ttls,
		stored:  now,
		expires: now.Add(time.Duration(life) * time.Second),
	}
	h := a.hash(qname, ans.qtype, ans.qclass, ans.flags)
	evicted, _ := a.shards.at(h).add(h, ans)
	a.stats.evictions.Add(uint64(evicted))
}

// answerOverhead approximates an answer's memory beyond its slices.
const answerOverhead = 128

// bytes is the memory ans holds, for the byte budget.
func (ans *answer) bytes() int {
	return answerOverhead + len(ans.wire) + len(ans.qname) + 6*len(ans.ttlOffs)
}

// Write answers query, the client's raw wire query, from the cache over UDP:
// the response must fit 512 bytes, or the query's EDNS payload size if
// larger. See WriteSized.
func (a *Answers) Write(dst []byte, query []byte) ([]byte, bool) {
	return a.WriteSized(dst, query, 0)
}

// WriteSized answers query, the client's raw wire query, from the cache. On
// a hit it appends the response to dst and returns it with true: the stored
// answer with the query's ID and RD bit, the query's qname bytes (so the
// client's 0x20 case is echoed) and every TTL counted down by the time since
// Put. It returns dst unchanged and false on any doubt: a malformed or
// unusual query (see parseQuestion), a miss, an expired answer, or a
// response longer than maxSize. maxSize <= 0 means the UDP limit from the
// query: 512 bytes, or its EDNS payload size if larger. It does not
// allocate beyond growing dst.
func (a *Answers) WriteSized(dst []byte, query []byte, maxSize int) ([]byte, bool) {
	var lower [maxNameWire]byte
	qs, ok := parseQuestion(query, &lower)
	if !ok {
		return dst, false
	}
	flags := answerFlags(qs.do, qs.cd, qs.ad, qs.edns)
	qname := lower[:qs.lowerLen]
	h := a.hash(qname, qs.qtype, qs.qclass, flags)
	s := a.shards.at(h)
	ans, ok := s.lru.Get(h)
	if !ok || ans.qtype != qs.qtype || ans.qclass != qs.qclass || ans.flags != flags || !bytes.Equal(ans.qname, qname) {
		a.stats.misses.Add(1)
		return dst, false
	}
	now := a.cfg.Clock.Now()
	if !now.Before(ans.expires) || now.Before(ans.stored) { // run out, or the clock moved back past Put
		s.removeIf(h, ans)
		a.stats.expired.Add(1)
		a.stats.misses.Add(1)
		return dst, false
	}
	if maxSize <= 0 {
		maxSize = 512
		if qs.edns && int(qs.udpSize) > maxSize {
			maxSize = int(qs.udpSize)
		}
	}
	if len(ans.wire) > maxSize {
		a.stats.misses.Add(1)
		return dst, false
	}
	elapsed := uint32(now.Sub(ans.stored) / time.Second)

	start := len(dst)
	dst = append(dst, ans.wire...)
	out := dst[start:]
	out[0], out[1] = query[0], query[1]   // ID
	out[2] = out[2]&^0x01 | query[2]&0x01 // RD
	copy(out[headerLen:ans.nameEnd], query[headerLen:qs.nameEnd])
	for i, off := range ans.ttlOffs {
		binary.BigEndian.PutUint32(out[off:], ans.ttls[i]-elapsed)
	}
	a.stats.hits.Add(1)
	return dst, true
}

// Purge drops every answer (for example after the operator flushes the
// cache or changes local data).
func (a *Answers) Purge() { a.shards.purge() }

// Stats returns the counters and the current number of answers.
func (a *Answers) Stats() Stats {
	return a.stats.snapshot(a.shards.len())
}
