package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

const (
	// maxAnswer is the largest DNS message (RFC 1035 4.2.2 length field).
	maxAnswer = 65535
	// dnsMessage is the DoH media type (RFC 8484 6).
	dnsMessage = "application/dns-message"
)

// exchanger sends one query on one of the run's connections and returns the
// answer, read into buf.
type exchanger interface {
	exchange(ctx context.Context, query int, buf []byte) ([]byte, error)
	close()
}

// result sums what the workers saw.
type result struct {
	elapsed    time.Duration
	answers    uint64 // answers received, whatever their rcode
	errors     uint64 // queries without a usable answer (timeouts, resets, bad status)
	rcodeOther uint64 // answers whose rcode is not NOERROR
	firstErr   error
	latency    time.Duration // sum over answers, for the mean
	hist       histogram
}

// run drives cfg.conns connections with cfg.streams workers each until
// cfg.duration has passed.
func run(parent context.Context, cfg config) (*result, error) {
	conns := make([]exchanger, 0, cfg.conns)
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	for range cfg.conns {
		c, err := newExchanger(parent, cfg)
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
	}
	ctx, cancel := context.WithTimeout(parent, cfg.duration)
	defer cancel()
	results := make([]result, cfg.conns*cfg.streams)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range results {
		wg.Go(func() { work(ctx, cfg, conns[i%cfg.conns], i, &results[i]) })
	}
	wg.Wait()
	total := &result{elapsed: time.Since(start)}
	for i := range results {
		total.add(&results[i])
	}
	return total, nil
}

// work asks queries one after another, starting at its own offset in the list.
func work(ctx context.Context, cfg config, c exchanger, id int, r *result) {
	buf := make([]byte, maxAnswer)
	n := len(cfg.queries)
	end, _ := ctx.Deadline()
	for q := id * 7919 % n; ctx.Err() == nil; q = (q + 1) % n {
		qctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		t0 := time.Now()
		ans, err := c.exchange(qctx, q, buf)
		cancel()
		switch {
		case ctx.Err() != nil || !time.Now().Before(end):
			// The run ended under this query (a stream deadline can fire
			// before the context's timer): neither answer nor error.
			return
		case err == nil && len(ans) < 12:
			err = fmt.Errorf("answer of %d bytes", len(ans))
		case err == nil && ans[2]&0x80 == 0:
			err = errors.New("answer without the QR bit")
		}
		if err != nil {
			r.errors++
			if r.firstErr == nil {
				r.firstErr = err
			}
			continue
		}
		took := time.Since(t0)
		r.latency += took
		r.hist.record(took)
		r.answers++
		if ans[3]&0x0f != 0 {
			r.rcodeOther++
		}
	}
}

func (r *result) add(o *result) {
	r.answers += o.answers
	r.errors += o.errors
	r.rcodeOther += o.rcodeOther
	r.latency += o.latency
	if r.firstErr == nil {
		r.firstErr = o.firstErr
	}
	for i := range r.hist {
		r.hist[i] += o.hist[i]
	}
}

// line is the one-line summary run.sh parses (key=value, times in ms).
func (r *result) line(cfg config) string {
	secs := r.elapsed.Seconds()
	var sb strings.Builder
	fmt.Fprintf(&sb, "quicload mode=%s conns=%d streams=%d seconds=%.2f answers=%d errors=%d rcode_other=%d qps=%.1f",
		cfg.mode, cfg.conns, cfg.streams, secs, r.answers, r.errors, r.rcodeOther, float64(r.answers)/secs)
	mean := 0.0
	if r.answers > 0 {
		mean = r.latency.Seconds() * 1000 / float64(r.answers)
	}
	fmt.Fprintf(&sb, " mean_ms=%.3f", mean)
	for _, p := range []float64{50, 90, 99, 99.9} {
		fmt.Fprintf(&sb, " p%g_ms=%.3f", p, r.hist.percentile(p).Seconds()*1000)
	}
	fmt.Fprintf(&sb, " max_ms=%.3f", r.hist.percentile(100).Seconds()*1000)
	if r.firstErr != nil {
		fmt.Fprintf(&sb, " first_error=%q", r.firstErr.Error())
	}
	return sb.String()
}

func newExchanger(ctx context.Context, cfg config) (exchanger, error) {
	if cfg.mode == "doq" {
		d := &doqConn{cfg: cfg}
		if _, err := d.conn(ctx); err != nil { // fail fast before the clock starts
			return nil, err
		}
		return d, nil
	}
	return newDoH3(ctx, cfg)
}

// doqConn is one DNS over QUIC connection, redialled if it dies; every
// query goes on a stream of its own (RFC 9250 4.2).
type doqConn struct {
	cfg config
	mu  sync.Mutex
	c   *quic.Conn
}

func (d *doqConn) conn(ctx context.Context) (*quic.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c != nil && d.c.Context().Err() == nil {
		return d.c, nil
	}
	conf := d.cfg.tls.Clone()
	conf.NextProtos = []string{"doq"} // RFC 9250 4.1.1
	c, err := quic.DialAddr(ctx, d.cfg.addr, conf, &quic.Config{})
	if err != nil {
		return nil, fmt.Errorf("dial doq %s: %w", d.cfg.addr, err)
	}
	d.c = c
	return c, nil
}

func (d *doqConn) exchange(ctx context.Context, query int, buf []byte) ([]byte, error) {
	c, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("open stream: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	q := d.cfg.queries[query]
	framed := binary.BigEndian.AppendUint16(buf[:0], uint16(len(q)))
	if _, err := st.Write(append(framed, q...)); err != nil {
		st.CancelRead(0)
		return nil, fmt.Errorf("write: %w", err)
	}
	st.Close() // FIN: the query is complete (RFC 9250 4.2)
	if _, err := io.ReadFull(st, buf[:2]); err != nil {
		st.CancelRead(0)
		return nil, fmt.Errorf("read length: %w", err)
	}
	n := int(binary.BigEndian.Uint16(buf))
	if _, err := io.ReadFull(st, buf[:n]); err != nil {
		st.CancelRead(0)
		return nil, fmt.Errorf("read answer: %w", err)
	}
	var one [1]byte
	if _, err := st.Read(one[:]); err != io.EOF {
		st.CancelRead(0) // more than one message, or no FIN yet: stop reading
	}
	return buf[:n], nil
}

func (d *doqConn) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.c != nil {
		d.c.CloseWithError(0, "")
	}
}

// doh3 is one HTTP/3 connection (an http3.Transport holds one per host).
type doh3 struct {
	cfg    config
	tr     *http3.Transport
	client *http.Client
	url    string
	gets   []string // GET URLs with ?dns= (RFC 8484 4.1), for -method get
}

func newDoH3(ctx context.Context, cfg config) (*doh3, error) {
	tr := &http3.Transport{TLSClientConfig: cfg.tls.Clone()}
	d := &doh3{cfg: cfg, tr: tr, client: &http.Client{Transport: tr}, url: "https://" + cfg.addr + cfg.path}
	if cfg.method == "get" {
		d.gets = make([]string, len(cfg.queries))
		for i, q := range cfg.queries {
			d.gets[i] = d.url + "?dns=" + base64.RawURLEncoding.EncodeToString(q)
		}
	}
	// One query before the clock starts: dials, and fails fast.
	if _, err := d.exchange(ctx, 0, make([]byte, maxAnswer)); err != nil {
		tr.Close()
		return nil, err
	}
	return d, nil
}

func (d *doh3) exchange(ctx context.Context, query int, buf []byte) ([]byte, error) {
	var req *http.Request
	var err error
	if d.gets != nil {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, d.gets[query], nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.cfg.queries[query]))
		if err == nil {
			req.Header.Set("Content-Type", dnsMessage)
		}
	}
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", dnsMessage)
	resp, err := d.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	n, err := io.ReadFull(resp.Body, buf)
	if err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("read body: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	return buf[:n], nil
}

func (d *doh3) close() { d.tr.Close() }

// histogram counts latencies in log-linear microsecond buckets: exact below
// 16 us, then 16 buckets per power of two (within 6.25%), no allocation per
// sample.
type histogram [64 * 16]uint64

const subBuckets = 16

func (h *histogram) record(d time.Duration) {
	us := uint64(d.Microseconds())
	h[min(bucketOf(us), len(h)-1)]++
}

func bucketOf(us uint64) int {
	if us < subBuckets {
		return int(us)
	}
	shift := bits.Len64(us) - 5 // us>>shift is in [16, 32)
	return subBuckets*(shift+1) + int(us>>shift) - subBuckets
}

// lowerBound is the smallest value in bucket i, the inverse of bucketOf.
func lowerBound(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	shift := i/subBuckets - 1
	return uint64(i%subBuckets+subBuckets) << shift
}

// percentile returns the lower bound of the bucket holding the p-th
// percentile sample (p=100: the largest).
func (h *histogram) percentile(p float64) time.Duration {
	var total uint64
	for _, c := range h {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := uint64(p / 100 * float64(total))
	rank = max(min(rank, total), 1)
	var seen uint64
	for i, c := range h {
		if seen += c; seen >= rank {
			return time.Duration(lowerBound(i)) * time.Microsecond
		}
	}
	return 0
}
