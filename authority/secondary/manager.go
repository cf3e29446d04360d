package secondary

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/sextant-dns/sextant/authority"
	"github.com/sextant-dns/sextant/clock"
	"github.com/sextant-dns/sextant/internal/dnsname"
)

// Timing defaults.
const (
	// DefaultTimeout bounds each network step (dial, each read) of a
	// query or transfer: a stalled primary costs this much, not a hang.
	DefaultTimeout = 5 * time.Second
	// DefaultFirstRetry is the longest wait between tries of a zone that
	// has never been transferred (it has no SOA to take a retry from);
	// the waits start at firstBackoff and double up to it, so that a
	// primary starting beside us is caught quickly.
	DefaultFirstRetry = 60 * time.Second
	firstBackoff      = time.Second
	// DefaultMinInterval is the floor for the SOA refresh and retry
	// timers, so that a primary's SOA of refresh 0 cannot make us spin.
	DefaultMinInterval = time.Second
	// maxInterval caps the timers: a wait beyond a week is a typo.
	maxInterval = 7 * 24 * time.Hour
)

// Options configure a Manager.
type Options struct {
	Server *authority.Server // where the zones are served
	Clock  clock.Clock       // DNS time: when a zone expires
	Log    *slog.Logger
	// StateDir keeps each transferred zone as a zone file, served at the
	// next start before the first refresh; "" keeps nothing.
	StateDir    string
	Limits      Limits
	Timeout     time.Duration
	FirstRetry  time.Duration
	MinInterval time.Duration
	// OnNewVersion, when set, is called after a transferred version is
	// served (e.g. to NOTIFY this server's own secondaries).
	OnNewVersion func(origin string)
}

// Manager keeps a set of secondary zones current.
type Manager struct {
	opts  Options
	zones map[string]*secondaryZone // by origin
	keys  map[string]*Key           // every zone's key, by name (NOTIFY checks)
	// refusedLog limits the log lines of refused NOTIFYs (all are counted
	// in Status).
	refusedLog RateLog
	statusMu   sync.Mutex // serialises status file writes
	// running counts the zones' refresh loops, so that Wait can tell when
	// nothing writes to the state directory any more.
	running sync.WaitGroup
}

// refusedLogInterval: at most one line a second about refused NOTIFYs.
const refusedLogInterval = time.Second

// Status is what is known about one secondary zone.
type Status struct {
	Zone      string           `json:"zone"`
	Primaries []netip.AddrPort `json:"primaries"`
	Serial    uint32           `json:"serial"`  // of the version held
	Loaded    bool             `json:"loaded"`  // a version is held (served unless Expired)
	Expired   bool             `json:"expired"` // SOA expire passed without a successful refresh
	// LastAttempt and LastSuccess are DNS-clock times of the last
	// refresh tried and the last one that succeeded (SOA checked or
	// zone transferred); LastTransfer of the last new version.
	LastAttempt     time.Time `json:"last_attempt"`
	LastSuccess     time.Time `json:"last_success"`
	LastTransfer    time.Time `json:"last_transfer"`
	ExpiresAt       time.Time `json:"expires_at"` // zero until loaded
	LastError       string    `json:"last_error"` // "" after a success
	NotifiesRefused uint64    `json:"notifies_refused"`
	Transfers       uint64    `json:"transfers"`
}

// secondaryZone is one zone's state and refresh loop.
type secondaryZone struct {
	m      *Manager
	cfg    *Zone
	client *client
	wake   chan struct{} // NOTIFY: refresh now (capacity 1: bursts coalesce)

	mu       sync.Mutex
	failures int             // refreshes failed in a row
	data     *authority.Zone // the last good version (nil: never had one)
	status   Status
}

// New prepares the zones: each is served at once, from its state file
// when there is a good one, else as unavailable (SERVFAIL) until the first
// transfer. Start runs the refreshes.
func New(zones []*Zone, o Options) (*Manager, error) {
	if o.Server == nil {
		return nil, fmt.Errorf("secondary: no server")
	}
	if o.Clock == nil {
		o.Clock = clock.System{}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Limits.MaxRecords <= 0 {
		o.Limits.MaxRecords = DefaultLimits.MaxRecords
	}
	if o.Limits.MaxBytes <= 0 {
		o.Limits.MaxBytes = DefaultLimits.MaxBytes
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.FirstRetry <= 0 {
		o.FirstRetry = DefaultFirstRetry
	}
	if o.MinInterval <= 0 {
		o.MinInterval = DefaultMinInterval
	}
	m := &Manager{opts: o, zones: make(map[string]*secondaryZone), keys: make(map[string]*Key),
		refusedLog: RateLog{Interval: refusedLogInterval}}
	for _, cfg := range zones {
		if m.zones[cfg.Origin] != nil {
			return nil, fmt.Errorf("secondary zone %s declared twice", cfg.Origin)
		}
		if cfg.Key != nil {
			if k := m.keys[cfg.Key.Name]; k != nil && *k != *cfg.Key {
				return nil, fmt.Errorf("TSIG key %s declared twice with different secrets", cfg.Key.Name)
			}
			m.keys[cfg.Key.Name] = cfg.Key
		}
		z := &secondaryZone{
			m:      m,
			cfg:    cfg,
			client: &client{zone: cfg, limits: o.Limits, timeout: o.Timeout},
			wake:   make(chan struct{}, 1),
		}
		z.status.Zone, z.status.Primaries = cfg.Origin, cfg.Primaries
		m.zones[cfg.Origin] = z
		z.restore()
	}
	return m, nil
}

// Start runs each zone's refresh loop until ctx ends: a refresh at once,
// then on the SOA timers and on NOTIFY. Wait waits for the loops to end.
func (m *Manager) Start(ctx context.Context) {
	for _, z := range m.zones {
		m.running.Add(1)
		go func() {
			defer m.running.Done()
			z.run(ctx)
		}()
	}
}

// Wait returns when every refresh loop Start began has ended (after its
// context ended), so that the state directory is no longer written.
func (m *Manager) Wait() { m.running.Wait() }

// Status reports every zone, by name.
func (m *Manager) Status() []Status {
	out := make([]Status, 0, len(m.zones))
	for _, z := range m.zones {
		z.mu.Lock()
		out = append(out, z.status)
		z.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Zone < out[j].Zone })
	return out
}

// Refresh asks for a refresh of zone soon, as a NOTIFY does; it reports
// whether the zone is a secondary zone here.
func (m *Manager) Refresh(zone string) bool {
	z := m.zones[dnsname.Canonical(zone)]
	if z == nil {
		return false
	}
	z.poke()
	return true
}

func (z *secondaryZone) poke() {
	select {
	case z.wake <- struct{}{}:
	default: // one refresh is already pending: this NOTIFY joins it
	}
}

func (z *secondaryZone) run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-z.wake:
		}
		next := z.refresh(ctx)
		if ctx.Err() != nil {
			return
		}
		z.m.writeStatus()
		timer.Stop()
		select { // drop a tick that fired meanwhile
		case <-timer.C:
		default:
		}
		timer.Reset(next)
	}
}

// refresh checks the primaries for a newer serial and transfers it; it
// returns how long to wait for the next refresh.
func (z *secondaryZone) refresh(ctx context.Context) time.Duration {
	now := z.m.opts.Clock.Now()
	z.mu.Lock()
	z.status.LastAttempt = now
	z.mu.Unlock()

	var errs []string
	for _, primary := range z.cfg.Primaries {
		err := z.refreshFrom(ctx, primary)
		if ctx.Err() != nil {
			return 0
		}
		if err == nil {
			return z.succeeded()
		}
		msg := fmt.Sprintf("zone %s: %s", z.cfg.Origin, describe(primary, err))
		z.m.opts.Log.Error("secondary zone refresh failed", "zone", z.cfg.Origin, "primary", primary.String(), "err", msg)
		errs = append(errs, msg)
	}
	return z.failed(errs)
}

// refreshFrom asks primary for the SOA and transfers when it is newer.
func (z *secondaryZone) refreshFrom(ctx context.Context, primary netip.AddrPort) error {
	soa, err := z.client.querySOA(ctx, primary)
	if err != nil {
		return err
	}
	z.mu.Lock()
	have := z.data
	z.mu.Unlock()
	var haveSOA *dns.SOA
	if have != nil {
		haveSOA = have.SOA()
		if !serialNewer(soa.Serial, haveSOA.Serial) {
			z.m.opts.Log.Debug("secondary zone is current", "zone", z.cfg.Origin, "primary", primary.String(), "serial", haveSOA.Serial)
			return nil
		}
	}
	start := time.Now()
	var haveRRs []dns.RR
	if have != nil {
		// A copy for applying IXFR differences: the zone's own records
		// stay shared with queries, and no second copy is kept between
		// refreshes (it would double the memory of a served record).
		haveRRs = have.Records()
	}
	res, err := z.client.transfer(ctx, primary, haveRRs, haveSOA)
	if err != nil && haveSOA != nil && ctx.Err() == nil && !isTSIG(err) {
		// RFC 1995 4 and common practice: when IXFR fails, AXFR.
		z.m.opts.Log.Warn("IXFR failed; trying AXFR", "zone", z.cfg.Origin, "err", describe(primary, err))
		res, err = z.client.transfer(ctx, primary, nil, nil)
	}
	if err != nil {
		return err
	}
	if res.upToDate {
		return nil
	}
	return z.install(primary, res, time.Since(start))
}

func isTSIG(err error) bool {
	_, ok := err.(*tsigError)
	return ok
}

// install checks a transferred version like a zone file and serves it.
func (z *secondaryZone) install(primary netip.AddrPort, res *transferResult, took time.Duration) error {
	start := time.Now()
	nz, err := authority.NewZoneWith(z.cfg.Origin, res.rrs, z.cfg.Options)
	if err != nil {
		return fmt.Errorf("the transferred zone fails the zone checks: %w", err)
	}
	if s := nz.SOA(); s.Serial != res.soa.Serial {
		return fmt.Errorf("the transferred zone's SOA serial %d differs from the announced %d", s.Serial, res.soa.Serial)
	}
	now := z.m.opts.Clock.Now()
	z.mu.Lock()
	z.data = nz
	z.status.LastTransfer = now
	z.status.Transfers++
	z.mu.Unlock()
	z.m.opts.Server.Set(nz)
	kind := "AXFR"
	if res.incremental {
		kind = "IXFR"
	}
	z.m.opts.Log.Info("secondary zone transferred", "zone", z.cfg.Origin, "primary", primary.String(),
		"serial", res.soa.Serial, "kind", kind, "records", len(res.rrs), "received_records", res.records,
		"bytes", res.bytes, "took", took.Round(time.Millisecond), "checked_in", time.Since(start).Round(time.Millisecond))
	if f := z.m.opts.OnNewVersion; f != nil {
		f(z.cfg.Origin)
	}
	if err := z.save(nz, primary, now); err != nil {
		z.m.opts.Log.Error("secondary zone not saved; it is served but a restart will transfer it again", "zone", z.cfg.Origin, "err", err)
	}
	return nil
}

// succeeded records a successful refresh and returns the refresh interval.
func (z *secondaryZone) succeeded() time.Duration {
	now := z.m.opts.Clock.Now()
	z.mu.Lock()
	defer z.mu.Unlock()
	z.status.LastSuccess = now
	z.status.LastError = ""
	z.failures = 0
	if z.data == nil {
		return z.m.opts.FirstRetry
	}
	soa := z.data.SOA()
	z.status.Loaded, z.status.Serial = true, soa.Serial
	z.status.ExpiresAt = now.Add(seconds(soa.Expire))
	if z.status.Expired {
		z.status.Expired = false
		z.m.opts.Server.Set(z.data)
		z.m.opts.Log.Info("secondary zone served again after a successful refresh", "zone", z.cfg.Origin)
	}
	z.saveRefreshTime(now)
	return z.clamp(seconds(soa.Refresh))
}

// failed records a failed refresh, expires the zone when its time is up
// (RFC 1035 3.3.13), and returns the retry interval.
func (z *secondaryZone) failed(errs []string) time.Duration {
	now := z.m.opts.Clock.Now()
	z.mu.Lock()
	defer z.mu.Unlock()
	z.status.LastError = joinErrors(errs)
	z.failures++
	if z.data == nil {
		z.m.opts.Server.Set(authority.UnavailableZone(z.cfg.Origin, dns.ExtendedErrorCodeNotReady,
			"secondary zone not yet transferred: "+z.status.LastError))
		return min(firstBackoff<<min(z.failures-1, 16), z.m.opts.FirstRetry)
	}
	soa := z.data.SOA()
	wait := z.clamp(seconds(soa.Retry))
	if z.status.ExpiresAt.IsZero() {
		return wait
	}
	left := z.status.ExpiresAt.Sub(now)
	if left <= 0 {
		if !z.status.Expired {
			z.status.Expired = true
			why := fmt.Sprintf("secondary zone expired: no successful refresh since %s (SOA expire %d s); last error: %s",
				z.status.LastSuccess.UTC().Format(time.RFC3339), soa.Expire, z.status.LastError)
			z.m.opts.Server.Set(authority.UnavailableZone(z.cfg.Origin, dns.ExtendedErrorCodeNotReady, why))
			z.m.opts.Log.Error("secondary zone expired: answering SERVFAIL until a refresh succeeds", "zone", z.cfg.Origin, "err", why)
		}
		return wait
	}
	return min(wait, max(left, z.m.opts.MinInterval))
}

func joinErrors(errs []string) string {
	if len(errs) == 1 {
		return errs[0]
	}
	s := ""
	for i, e := range errs {
		if i > 0 {
			s += "; "
		}
		s += e
	}
	return s
}

func seconds(n uint32) time.Duration { return time.Duration(n) * time.Second }

func (z *secondaryZone) clamp(d time.Duration) time.Duration {
	return min(max(d, z.m.opts.MinInterval), maxInterval)
}
