package cache

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"sync/atomic"
	"time"
	"unsafe"

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
	// localGen is the generation of the local data that static answers
	// (PutStatic) were made from; InvalidateStatic moves it on, and a
	// static answer of another generation is a miss.
	localGen atomic.Uint64
}

// answer is one stored response. It is immutable once stored, but for
// refreshing. A busy resolver holds one per cached question, so it is one
// allocation: this head, then in the same block its data, the packed
// response and the offset of every TTL field in it (2 bytes each, big
// endian). The qname is read from the stored wire (lower-cased there: Write
// copies the client's own qname over it anyway), and so are the TTLs to
// count down.
//
// Why one block: a cache hit is bound by memory latency, not by
// instructions. With the head and a separate []byte, a hit under dnsperf
// (5000 names, so no entry is still in the CPU's caches when asked again)
// took a cache miss on the head and another on the bytes. In one block,
// WriteSized went from 15% to 6% of the server's CPU in `make bench`'s UDP
// profile, and the server from 1.06x to 0.98x the floor's CPU per answer
// (issue 16). The head has no pointers, so the block is a plain []byte for
// the garbage collector, kept alive by the *answer to its start.
type answer struct {
	stored  int64 // Put's DNS clock reading, Unix nanoseconds
	expires int64 // stored plus the smallest TTL, Unix nanoseconds
	gen     uint64
	dataLen uint32 // the bytes after the head: wire, then TTL offsets
	wireLen uint16 // the response is data[:wireLen]
	nameEnd uint16 // the question's qname is data[headerLen:nameEnd]
	qtype   uint16
	qclass  uint16
	flags   byte // answerFlags
	static  bool // PutStatic's: TTLs as stored, valid while gen is current
	// refreshing is set when one query in the answer's last tenth of life
	// was let through as a miss, so that the resolver sees the question
	// and prefetches its data (nearExpiry); the others keep the answer.
	refreshing atomic.Bool
}

// answerHeadSize is where an answer's data starts in its block: past the
// head, at a multiple of 8 so that the block's size classes stay the same
// as the data's.
const answerHeadSize = (unsafe.Sizeof(answer{}) + 7) &^ 7

// allocAnswer allocates an answer with n bytes of data, zeroed. The block is
// a []byte of at least 48 bytes, which Go's allocator places at a multiple
// of 8: aligned for the head's fields.
func allocAnswer(n int) *answer {
	block := make([]byte, int(answerHeadSize)+n)
	ans := (*answer)(unsafe.Pointer(unsafe.SliceData(block)))
	ans.dataLen = uint32(n)
	return ans
}

// data is the bytes after the head: the wire, then the TTL offsets.
func (ans *answer) data() []byte {
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(ans), answerHeadSize)), ans.dataLen)
}

// wire is the packed response.
func (ans *answer) wire() []byte { return ans.data()[:ans.wireLen] }

// qname is the lower-cased wire qname of the question.
func (ans *answer) qname() []byte { return ans.data()[headerLen:ans.nameEnd] }

// ttlOffsets is the offsets of the TTL fields in wire, 2 bytes each.
func (ans *answer) ttlOffsets() []byte { return ans.data()[ans.wireLen:] }

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
	return &Answers{cfg: cfg, seed: maphash.MakeSeed(), shards: newShardSet(cfg, func(_ uint64, ans *answer) int { return ans.bytes() }, nil)}
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
	wire, lay, ok := packAnswer(k, resp)
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
	now := a.cfg.Clock.Now().UnixNano()
	a.add(newAnswer(k, wire, lay, lay.ttlOffs), func(ans *answer) {
		ans.stored, ans.expires = now, now+int64(life)*int64(time.Second)
	})
}

// PutStatic stores resp, an authoritative answer from local data, as the
// answer to k with its TTLs as they are (an authoritative server does not
// count them down) until the local data changes: gen is StaticGeneration
// read before resp was made, and InvalidateStatic, called once a change is
// served, makes every answer of an older generation a miss. Otherwise it
// stores what Put stores, TTL 0 included.
func (a *Answers) PutStatic(k AnswerKey, resp *dns.Msg, gen uint64) {
	wire, lay, ok := packAnswer(k, resp)
	if !ok {
		return
	}
	a.add(newAnswer(k, wire, lay, nil), func(ans *answer) {
		ans.static, ans.gen = true, gen
	})
}

// StaticGeneration is the generation of local data PutStatic's answers
// must be made from to be served.
func (a *Answers) StaticGeneration() uint64 { return a.localGen.Load() }

// InvalidateStatic retires every answer stored with PutStatic so far: the
// local data they came from has changed.
func (a *Answers) InvalidateStatic() { a.localGen.Add(1) }

// packAnswer packs resp, a response to k, compressed, and lays it out;
// false for what the cache never stores (see Put).
func packAnswer(k AnswerKey, resp *dns.Msg) ([]byte, responseLayout, bool) {
	if resp == nil || resp.Truncated || (resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError) {
		return nil, responseLayout{}, false
	}
	if len(resp.Question) != 1 {
		return nil, responseLayout{}, false
	}
	q := resp.Question[0]
	if q.Qtype != k.Type || q.Qclass != k.Class || !dnsname.Equal(dns.Fqdn(q.Name), dns.Fqdn(k.Name)) {
		return nil, responseLayout{}, false
	}
	packed := *resp // a shallow copy, so as not to change the caller's Compress
	packed.Compress = true
	wire, err := packed.Pack()
	if err != nil {
		return nil, responseLayout{}, false
	}
	lay, ok := layoutResponse(wire)
	return wire, lay, ok
}

// newAnswer makes the stored form of wire: the response with its qname
// lower-cased, then the offsets of the TTLs to count down (ttlOffs).
func newAnswer(k AnswerKey, wire []byte, lay responseLayout, ttlOffs []uint16) *answer {
	// ASCII-only folding, as parseQuestion folds the client's name: names
	// that differ in other octets must not share an answer.
	ans := allocAnswer(len(wire) + 2*len(ttlOffs))
	ans.wireLen, ans.nameEnd = uint16(len(wire)), uint16(lay.nameEnd)
	ans.qtype, ans.qclass = k.Type, k.Class
	ans.flags = answerFlags(k.DO, k.CD, k.AD, lay.edns)
	buf := ans.data()
	copy(buf, wire)
	dnsname.LowerBytes(buf[headerLen:lay.nameEnd])
	for i, off := range ttlOffs {
		binary.BigEndian.PutUint16(buf[len(wire)+2*i:], off)
	}
	return ans
}

// add completes ans with set and stores it.
func (a *Answers) add(ans *answer, set func(*answer)) {
	set(ans)
	h := a.hash(ans.qname(), ans.qtype, ans.qclass, ans.flags)
	evicted, _ := a.shards.at(h).add(h, ans)
	a.stats.evictions.Add(uint64(evicted))
}

// answerOverhead is an answer's memory beside its data: the head, its LRU
// slab node (24 bytes) and lruKeyBytes.
const answerOverhead = int(answerHeadSize) + 24 + lruKeyBytes

// bytes is the memory ans holds, for the byte budget.
func (ans *answer) bytes() int {
	return answerOverhead + int(ans.dataLen)
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
	if !ok || ans.qtype != qs.qtype || ans.qclass != qs.qclass || ans.flags != flags || !bytes.Equal(ans.qname(), qname) {
		a.stats.misses.Add(1)
		return dst, false
	}
	var now int64
	if ans.static {
		if ans.gen != a.localGen.Load() { // the local data changed
			s.removeIf(h, ans)
			a.stats.expired.Add(1)
			a.stats.misses.Add(1)
			return dst, false
		}
	} else if now = a.cfg.Clock.Now().UnixNano(); now >= ans.expires || now < ans.stored { // run out, or the clock moved back past Put
		s.removeIf(h, ans)
		a.stats.expired.Add(1)
		a.stats.misses.Add(1)
		return dst, false
	} else if a.cfg.Prefetch && now >= ans.expires-(ans.expires-ans.stored)/10 && ans.refreshing.CompareAndSwap(false, true) {
		a.stats.misses.Add(1) // this one goes to the resolver, which prefetches
		return dst, false
	}
	if maxSize <= 0 {
		maxSize = 512
		if qs.edns && int(qs.udpSize) > maxSize {
			maxSize = int(qs.udpSize)
		}
	}
	if int(ans.wireLen) > maxSize {
		a.stats.misses.Add(1)
		return dst, false
	}
	elapsed := uint32((now - ans.stored) / int64(time.Second)) // 0 for static answers: no TTL offsets

	start := len(dst)
	dst = append(dst, ans.wire()...)
	out := dst[start:]
	out[0], out[1] = query[0], query[1]   // ID
	out[2] = out[2]&^0x01 | query[2]&0x01 // RD
	copy(out[headerLen:ans.nameEnd], query[headerLen:qs.nameEnd])
	offs := ans.ttlOffsets()
	for i := 0; i+1 < len(offs); i += 2 {
		off := binary.BigEndian.Uint16(offs[i:])
		binary.BigEndian.PutUint32(out[off:], binary.BigEndian.Uint32(out[off:])-elapsed)
	}
	s.hits.Add(1)
	return dst, true
}

// Purge drops every answer (for example after the operator flushes the
// cache or changes local data).
func (a *Answers) Purge() { a.shards.purge() }

// Stats returns the counters and the current number of answers.
func (a *Answers) Stats() Stats {
	st := a.stats.snapshot(a.shards.len(), a.shards.heldBytes())
	st.Hits += a.shards.hits()
	return st
}
