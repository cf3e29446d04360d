#!/usr/bin/env bash
# make bench: Go benchmarks of the hot paths (allocations per query for every
# front end), then load tests of Sextant, Unbound, Knot Resolver, dnsdist and
# a bare UDP responder (bench/floor, the floor), resolving through the same lab
# on loopback. For each run it prints answers per second, latency, and the
# server's CPU per answered query: user+system time of all its threads (of all
# its processes, for Knot Resolver's one kresd per core) from /proc/PID/stat,
# read before and after the run, over the answers the client counted (issue 16).
#
# The load generator shares the machine with the servers (no taskset pinning
# by default), so on a small machine it is often the ceiling for answers per
# second; CPU per answer is the figure that tells servers apart. The load
# average is printed with every run: other work on the machine skews both.
#
# The servers, each on its own loopback address of BENCH_BASE's .200 net:
#   .1 sextant  `sextant serve`, all four front ends
#   .2 unbound  num-threads 2, DoT, DoH if built with nghttp2
#   .3 floor    bench/floor, one fixed UDP answer
#   .5 kresd    Knot Resolver 5: one kresd process per core (nproc), sharing the
#               listening sockets (kresd binds them with SO_REUSEPORT) and one LMDB
#               cache, as kresd@1..N run it; Do53, DoT, DoH (its HTTP/2 'doh2' kind);
#               the local name from its hints module (static hints)
#   .6 dnsdist  dnsdist answering from its packet cache in front of one backend
#               (BENCH_DNSDIST_BACKEND); one UDP/TCP, DoT and DoH listener per core
#               (reusePort), TCP workers = cores, UDP read and answered in batches as Sextant
#               and the floor do (recvmmsg/sendmmsg); the local name from a SpoofAction rule
#   (.4 is allocserve, which counts Sextant's own allocations)
# Unbound, Knot Resolver and dnsdist are each left out, with a note, when not installed.
#
# Workloads (BENCH_SUITES, in this order by default):
#   udp        dnsperf -m udp, cache hits (names of the lab's bulk zone, warmed first):
#              sextant, unbound, kresd, dnsdist, floor
#   udp-local  the same, one question answered from local data: Sextant's co-located zone
#              (--zone), Unbound's local-data, kresd's hints, dnsdist's SpoofAction
#              (the floor answers it like any other)
#   tcp, dot   dnsperf -m tcp / -m dot, cache hits: sextant, unbound, kresd, dnsdist
#   doh-post, doh-get  h2load (HTTP/2), one cached question: sextant, unbound (if built
#              with nghttp2), kresd, dnsdist. kresd 5.6 resets some of the concurrent
#              POST streams of one connection: its lost column counts them
#   doh3, doq  bench/quicload (HTTP/3, DNS over QUIC), cache hits: sextant (Unbound has
#              neither before 1.22, Knot Resolver 5 and dnsdist 1.7 have neither)
# Any workload with "-local" appended asks the local-zone question instead.
# Runs are interleaved (sextant, unbound, kresd, dnsdist, floor, sextant, ...),
# BENCH_RUNS per server; each run and the median are printed, then a summary table.
#
# Environment knobs (defaults in brackets):
#   BENCH_SECONDS  [10]      length of each run
#   BENCH_RUNS     [3]       runs per server and workload
#   BENCH_SUITES   [udp udp-local tcp dot doh-post doh-get doh3 doq]
#   BENCH_THREADS  [2]       dnsperf -T, h2load -t
#   BENCH_CLIENTS  [16]      dnsperf -c, h2load -c, quicload -conns
#   BENCH_INFLIGHT [200]     dnsperf -q (queries outstanding in all)
#   BENCH_STREAMS  [12]      h2load -m and quicload -streams (per connection; 16 x 12 = 192 in flight)
#   BENCH_NAMES    [5000]    distinct cached names (the lab's bulk zone size)
#   BENCH_BASE     [127.60.0.0] loopback /16: the lab on port 53, the servers on .200.1-6 high ports
#   BENCH_TASKSET  []        CPU list to pin the servers to (taskset -c), empty: no pinning
#   BENCH_GOMAXPROCS []      GOMAXPROCS of the Go servers (sextant, floor, allocserve), empty: Go's default
#   BENCH_GO       [1]       0 skips the Go benchmarks
#   BENCH_GOTIME   [1s]      go test -benchtime
#   BENCH_UNBOUND  [1]       0 leaves Unbound out
#   BENCH_KRESD    [1 if kresd is installed] 0 leaves Knot Resolver out
#   BENCH_KRESD_PROCS [nproc] kresd processes (one per core is how its operators run it)
#   BENCH_DNSDIST  [1 if dnsdist is installed] 0 leaves dnsdist out
#   BENCH_DNSDIST_BACKEND [sextant] the resolver behind dnsdist's packet cache: sextant or unbound
#   BENCH_DNSDIST_UDP_VECTOR [32] datagrams per recvmmsg/sendmmsg of dnsdist's UDP threads
#                            (setUDPMultipleMessagesVectorSize; 1, dnsdist's default, is one recvmsg per query)
#   BENCH_ALLOC_SECONDS [3]  length of the one allocation-counting run per workload (bench/allocserve)
#   BENCH_PROFILE  [0]       1 adds a CPU profile of allocserve under each workload (go tool pprof -top)
#   BENCH_PROFILE_SECONDS [10]  length of each profiled run
#   BENCH_KEEP     [0]       1 keeps the work directory (logs, configs, every load generator's output)
# Needs (Debian packages): dnsperf, unbound, nghttp2-client (h2load), openssl, dnsutils (dig);
# optional: knot-resolver (kresd 5, built with nghttp2 for DoH), dnsdist (built with DoT and DoH).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

secs=${BENCH_SECONDS:-10}
runs=${BENCH_RUNS:-3}
suites=${BENCH_SUITES:-udp udp-local tcp dot doh-post doh-get doh3 doq}
threads=${BENCH_THREADS:-2}
clients=${BENCH_CLIENTS:-16}
inflight=${BENCH_INFLIGHT:-200}
streams=${BENCH_STREAMS:-12}
names=${BENCH_NAMES:-5000}
base=${BENCH_BASE:-127.60.0.0}
pin=${BENCH_TASKSET:-}
gomaxprocs=${BENCH_GOMAXPROCS:-}
with_unbound=${BENCH_UNBOUND:-1}
installed() { if command -v "$1" >/dev/null 2>&1; then echo 1; else echo 0; fi; }
with_kresd=${BENCH_KRESD:-$(installed kresd)}
kresd_procs=${BENCH_KRESD_PROCS:-$(nproc)}
with_dnsdist=${BENCH_DNSDIST:-$(installed dnsdist)}
dnsdist_backend=${BENCH_DNSDIST_BACKEND:-sextant}
dnsdist_vector=${BENCH_DNSDIST_UDP_VECTOR:-32}

die() { echo "bench: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: apt-get install -y $2"; }
need dnsperf dnsperf
need h2load nghttp2-client
need openssl openssl
need dig dnsutils
need awk mawk
[ "$with_unbound" = 0 ] || need unbound unbound
# Knot Resolver and dnsdist are comparisons, not requirements: a bench without them still runs.
if [ "$with_kresd" != 0 ] && ! command -v kresd >/dev/null 2>&1; then
  echo "bench: kresd not found (apt-get install -y knot-resolver): Knot Resolver left out" >&2
  with_kresd=0
fi
if [ "$with_dnsdist" != 0 ] && ! command -v dnsdist >/dev/null 2>&1; then
  echo "bench: dnsdist not found (apt-get install -y dnsdist): dnsdist left out" >&2
  with_dnsdist=0
fi
case $dnsdist_backend in
sextant) ;;
unbound) [ "$with_unbound" != 0 ] || [ "$with_dnsdist" = 0 ] || die "BENCH_DNSDIST_BACKEND=unbound needs BENCH_UNBOUND=1" ;;
*) die "BENCH_DNSDIST_BACKEND=$dnsdist_backend: want sextant or unbound" ;;
esac
[[ $kresd_procs =~ ^[1-9][0-9]*$ ]] || die "BENCH_KRESD_PROCS=$kresd_procs: want a positive count"
[[ $dnsdist_vector =~ ^[1-9][0-9]*$ ]] || die "BENCH_DNSDIST_UDP_VECTOR=$dnsdist_vector: want a positive count"
[[ $base =~ ^127\.([0-9]+)\.0\.0$ ]] || die "BENCH_BASE=$base: want 127.N.0.0"
net="127.${BASH_REMATCH[1]}.200"
dns_port=5300 dot_port=8853 doh_port=8443 # DoQ shares the DoT port number, on UDP
counter_port=9053                          # allocserve's allocation counters
pprof_port=6060                            # allocserve's net/http/pprof
clk_tck=$(getconf CLK_TCK)
local_name=www.local.bench

work=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: outputs kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${BENCH_GO:-1}" != 0 ]; then
  gotime=${BENCH_GOTIME:-1s}
  echo "== Go benchmarks (-benchtime $gotime): hot paths, allocations per op"
  {
    go test -run '^$' -bench . -benchmem -benchtime "$gotime" ./cache/ ./transport/ ./bench/
    # The resolver's benchmarks bind its fixed test addresses: share its lock.
    flock /tmp/sextant-resolver.lock go test -run '^$' -bench . -benchmem -benchtime "$gotime" ./resolver/
  } 2>&1 | tee "$work/gobench.txt" | grep -E '^(Benchmark|ok|FAIL|PASS|---)' || true
  if grep -q '^FAIL' "$work/gobench.txt"; then die "Go benchmarks failed (above)"; fi
  echo
  echo "== allocations per query, every front end (Go benchmarks: transport/ with a canned handler, bench/ with the"
  echo "   resolver's cache; the Go client runs in the same process, so its allocations are counted too)"
  awk '
    BEGIN {
      label["Do53UDP"] = "Do53 UDP (canned answer)"; label["Do53UDPCacheHit"] = "Do53 UDP (resolver cache hit, lab)"
      label["Do53TCP"] = "Do53 TCP"; label["DoT"] = "DoT"; label["DoHHTTP2"] = "DoH HTTP/2 POST"
      label["DoHHTTP3"] = "DoH HTTP/3 POST"; label["DoQ"] = "DoQ"
      printf "| %-36s | %10s | %9s | %9s | %12s |\n", "front end", "ns/op", "B/op", "allocs/op", "queries/s"
      printf "|%s|%s|%s|%s|%s|\n", "--------------------------------------", "------------", "-----------", "-----------", "--------------"
    }
    /^Benchmark/ {
      name = $1; sub(/^Benchmark/, "", name); sub(/-[0-9]+$/, "", name)
      if (!(name in label)) next
      ns = bop = allocs = qps = "-"
      for (i = 3; i <= NF; i++) {
        if ($i == "ns/op") ns = $(i-1); if ($i == "B/op") bop = $(i-1)
        if ($i == "allocs/op") allocs = $(i-1); if ($i == "queries/s") qps = $(i-1)
      }
      printf "| %-36s | %10s | %9s | %9s | %12s |\n", label[name], ns, bop, allocs, qps
    }' "$work/gobench.txt"
  echo
fi

echo "== building sextant, the floor responder and quicload"
go build -o "$work/sextant" ./cmd/sextant
go build -o "$work/floor" ./bench/floor
go build -o "$work/quicload" ./bench/quicload
go build -o "$work/allocserve" ./bench/allocserve

echo "== starting the lab on $base/16 ($names bulk names)"
"$work/sextant" lab --out "$work/lab" --addr-base "$base" --bulk "$names" >"$work/lab.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do [ -s "$work/lab/root.hints" ] && break; sleep 0.1; done
[ -s "$work/lab/root.hints" ] || { cat "$work/lab.log" >&2; die "the lab did not start (log above)"; }
# The lab's bulk zone holds h0.bulk.test .. h<names-1>.bulk.test (lab.BulkName).
seq 0 $((names - 1)) | sed 's/^/h/; s/$/.bulk.test A/' >"$work/hits.txt"
echo "$local_name A" >"$work/local.txt"
hit_name=h0.bulk.test

# One self-signed P-256 certificate for every TLS server, so both pay the same handshake and signature costs.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=bench" \
  -addext "subjectAltName=IP:$net.1,IP:$net.2,IP:$net.5,IP:$net.6,DNS:localhost" \
  -keyout "$work/key.pem" -out "$work/cert.pem" >"$work/openssl.log" 2>&1 ||
  { cat "$work/openssl.log" >&2; die "openssl could not make the certificate"; }

cat >"$work/local.zone" <<ZONE
\$ORIGIN local.bench.
\$TTL 3600
@ SOA ns.local.bench. hostmaster.local.bench. 1 3600 600 86400 3600
@ NS ns.local.bench.
ns A 127.0.2.53
www A 127.0.2.1
ZONE

declare -A server_pids # name -> the PIDs of all its processes, space-separated
start() { # name logfile command...: start a server process in the background, optionally pinned
  local name=$1 log=$2
  shift 2
  if [ -n "$gomaxprocs" ]; then set -- env GOMAXPROCS="$gomaxprocs" "$@"; fi
  if [ -n "$pin" ]; then set -- taskset -c "$pin" "$@"; fi
  # Appending: a server of several processes (kresd) writes them all to one log.
  "$@" >>"$log" 2>&1 &
  pids+=($!)
  server_pids[$name]+="${server_pids[$name]:+ }$!"
}

alive() { # name: fail, with its log, when any process of the server has exited
  local p
  for p in ${server_pids[$1]}; do
    kill -0 "$p" 2>/dev/null || { cat "$work/$1.log" >&2; die "$1 has exited (log above)"; }
  done
}

wait_udp() { # name addr
  for _ in $(seq 100); do
    dig +time=1 +tries=1 +short -p "$dns_port" "@$2" "$hit_name" A >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  cat "$work/$1.log" >&2
  die "$1 does not answer on $2:$dns_port (log above)"
}

listens() { # addr port: whether something accepts TCP connections there (tried for up to 10 s)
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

wait_tcp() { # name addr port
  listens "$2" "$3" && return 0
  cat "$work/$1.log" >&2
  die "$1 does not listen on TCP $2:$3 (log above)"
}

servers=(sextant)
echo "== starting sextant on $net.1 (Do53 :$dns_port, DoT and DoQ :$dot_port, DoH :$doh_port)"
# --rate-limit 0: dnsperf sends tens of thousands of queries per second from
# one address, which the default limit (1000/s per /24) is there to stop.
start sextant "$work/sextant.log" "$work/sextant" serve --root-hints "$work/lab/root.hints" \
  --trust-anchor "$work/lab/root.ds" --zone "$work/local.zone" --log-level warn --rate-limit 0 \
  --listen "$net.1:$dns_port" --dot "$net.1:$dot_port" --doq "$net.1:$dot_port" --doh "$net.1:$doh_port" \
  --tls-cert "$work/cert.pem" --tls-key "$work/key.pem"
wait_udp sextant "$net.1"
wait_tcp sextant "$net.1" "$dot_port"
wait_tcp sextant "$net.1" "$doh_port"

unbound_doh=0
if [ "$with_unbound" != 0 ]; then
  servers+=(unbound)
  unbound_version=$(unbound -V 2>&1 || true)
  if [[ $unbound_version == *nghttp2* ]]; then unbound_doh=1; fi
  {
    cat <<UB
server:
  interface: $net.2@$dns_port
  interface: $net.2@$dot_port
  port: $dns_port
  tls-port: $dot_port
  tls-service-key: "$work/key.pem"
  tls-service-pem: "$work/cert.pem"
UB
    if [ "$unbound_doh" = 1 ]; then
      printf '  interface: %s@%s\n  https-port: %s\n' "$net.2" "$doh_port" "$doh_port"
    fi
    cat <<UB
  do-daemonize: no
  use-syslog: no
  logfile: ""
  username: ""
  chroot: ""
  directory: "$work"
  pidfile: ""
  do-not-query-localhost: no
  root-hints: "$work/lab/root.hints"
  trust-anchor-file: "$work/lab/root.ds"
  # The lab lives under test., which Unbound answers locally by default (RFC 6761).
  local-zone: "test." nodefault
  local-zone: "local.bench." static
  local-data: "local.bench. 3600 IN SOA ns.local.bench. hostmaster.local.bench. 1 3600 600 86400 3600"
  local-data: "local.bench. 3600 IN NS ns.local.bench."
  local-data: "ns.local.bench. 3600 IN A 127.0.2.53"
  local-data: "$local_name. 3600 IN A 127.0.2.1"
  access-control: 127.0.0.0/8 allow
  num-threads: 2
  # dnsperf and h2load open $clients connections; the default (10 per thread) would refuse most.
  incoming-num-tcp: 1000
  msg-cache-size: 64m
  rrset-cache-size: 128m
  verbosity: 0
UB
  } >"$work/unbound.conf"
  unbound-checkconf "$work/unbound.conf" >"$work/unbound-checkconf.log" 2>&1 ||
    { cat "$work/unbound-checkconf.log" >&2; die "unbound rejects its configuration"; }
  echo "== starting unbound on $net.2 (Do53 :$dns_port, DoT :$dot_port$([ $unbound_doh = 1 ] && echo ", DoH :$doh_port"))"
  start unbound "$work/unbound.log" unbound -d -c "$work/unbound.conf"
  wait_udp unbound "$net.2"
  wait_tcp unbound "$net.2" "$dot_port"
  if [ "$unbound_doh" = 1 ]; then
    wait_tcp unbound "$net.2" "$doh_port"
  else
    echo "   (this unbound is built without nghttp2: no DoH)"
  fi
  if [[ $unbound_version != *ngtcp2* ]]; then echo "   (this unbound has no DoQ (ngtcp2): quicload measures Sextant alone)"; fi
fi

kresd_doh=0
if [ "$with_kresd" != 0 ]; then
  servers+=(kresd)
  mkdir -p "$work/kresd"
  cat >"$work/kresd/config" <<KRESD
-- Knot Resolver 5 for make bench: one of $kresd_procs kresd processes started with this
-- file. Each binds the same sockets (kresd sets SO_REUSEPORT on them), so the kernel
-- spreads the clients over the processes; all share the one LMDB cache below.
log_level('warning')
net.listen('$net.5', $dns_port, { kind = 'dns' })
net.listen('$net.5', $dot_port, { kind = 'tls' })
-- DoH over HTTP/2 (the 'doh2' kind needs kresd built with nghttp2); the bench goes on without it.
if not pcall(net.listen, '$net.5', $doh_port, { kind = 'doh2' }) then print('bench: no DoH (doh2) in this kresd') end
net.tls('$work/cert.pem', '$work/key.pem')
-- As much as Unbound's msg-cache-size and rrset-cache-size together.
cache.open(192 * MB, 'lmdb://$work/kresd/cache')
-- The lab's root DS in place of the compiled-in root key, read-only (no RFC 5011 updates).
trust_anchors.remove('.')
trust_anchors.add_file('$work/lab/root.ds', true)
modules.load('hints > iterate')
hints.root_file('$work/lab/root.hints')
-- udp-local's question, answered from static hints (kresd's equivalent of local-data).
hints.set('$local_name 127.0.2.1')
-- The lab's servers are on 127.x, which kresd refuses to query (rebinding protection)
-- unless a query carries the ALLOW_LOCAL flag.
policy.add(policy.all(policy.FLAGS({'ALLOW_LOCAL'})))
-- The lab lives under test., which kresd answers NXDOMAIN itself (RFC 6761, policy.special_names);
-- a PASS rule ends the policy walk before that list.
policy.add(policy.suffix(policy.PASS, {todname('test.')}))
KRESD
  echo "== starting Knot Resolver ($(kresd --version | sed 's/.*version //')) on $net.5 (Do53 :$dns_port, DoT :$dot_port, DoH :$doh_port), $kresd_procs kresd processes"
  for _ in $(seq "$kresd_procs"); do start kresd "$work/kresd.log" kresd -n -c "$work/kresd/config" "$work/kresd"; done
  wait_udp kresd "$net.5"
  wait_tcp kresd "$net.5" "$dot_port"
  if listens "$net.5" "$doh_port"; then kresd_doh=1; else echo "   (this kresd serves no DoH: left out of doh-post and doh-get)"; fi
fi

if [ "$with_dnsdist" != 0 ]; then
  servers+=(dnsdist)
  cores=$(nproc)
  dnsdist_backend_addr=$([ "$dnsdist_backend" = unbound ] && echo "$net.2" || echo "$net.1")
  cat >"$work/dnsdist.conf" <<DNSDIST
-- dnsdist for make bench: answers from its packet cache in front of $dnsdist_backend.
-- No security-status poll: it asks the system's resolver, and the bench stays on loopback.
setSecurityPollSuffix('')
-- One listener of each kind per core: dnsdist reads a UDP (or DoH) bind with one thread,
-- so it needs $cores identical binds (reusePort) to use $cores cores.
for i = 1, $cores do
  if i == 1 then setLocal('$net.6:$dns_port', {reusePort=true}) else addLocal('$net.6:$dns_port', {reusePort=true}) end
  addTLSLocal('$net.6:$dot_port', '$work/cert.pem', '$work/key.pem', {reusePort=true})
  addDOHLocal('$net.6:$doh_port', '$work/cert.pem', '$work/key.pem', '/dns-query', {reusePort=true})
end
-- UDP queries read, and cache hits answered, $dnsdist_vector to a system call (recvmmsg and
-- sendmmsg), as Sextant and the floor do; dnsdist's default, 1, is one recvmsg per query.
setUDPMultipleMessagesVectorSize($dnsdist_vector)
-- TCP and DoT connections are served by a pool of worker threads (10 by default): one per core.
setMaxTCPClientThreads($cores)
-- Queries in flight to the backend (only misses go there: the warm-up).
setMaxUDPOutstanding(65535)
newServer({address='$dnsdist_backend_addr:$dns_port', checkName='$hit_name.'})
getPool(''):setCache(newPacketCache($((names * 4 > 100000 ? names * 4 : 100000))))
-- udp-local's question: dnsdist has no local zone; a spoofing rule is its way to answer one itself.
addAction(QNameRule('$local_name.'), SpoofAction('127.0.2.1'))
DNSDIST
  dnsdist --check-config -C "$work/dnsdist.conf" >"$work/dnsdist-check.log" 2>&1 ||
    { cat "$work/dnsdist-check.log" >&2; die "dnsdist rejects its configuration"; }
  echo "== starting $(dnsdist --version | head -1 | cut -d' ' -f1-2) on $net.6 (Do53 :$dns_port, DoT :$dot_port, DoH :$doh_port), packet cache in front of $dnsdist_backend"
  start dnsdist "$work/dnsdist.log" dnsdist --supervised --disable-syslog -C "$work/dnsdist.conf"
  wait_udp dnsdist "$net.6"
  wait_tcp dnsdist "$net.6" "$dot_port"
  wait_tcp dnsdist "$net.6" "$doh_port"
fi

servers+=(floor)
echo "== starting the floor responder on $net.3:$dns_port"
start floor "$work/floor.log" "$work/floor" -listen "$net.3:$dns_port"
wait_udp floor "$net.3"

echo "== starting allocserve (Sextant's resolver and front ends in one Go process that reports its allocations) on $net.4"
start allocserve "$work/allocserve.log" "$work/allocserve" -root-hints "$work/lab/root.hints" \
  -trust-anchor "$work/lab/root.ds" -zone "$work/local.zone" -tls-cert "$work/cert.pem" -tls-key "$work/key.pem" \
  -listen "$net.4:$dns_port" -dot "$net.4:$dot_port" -doq "$net.4:$dot_port" -doh "$net.4:$doh_port" -counter "$net.4:$counter_port" \
  -pprof "$net.4:$pprof_port"
wait_udp allocserve "$net.4"
wait_tcp allocserve "$net.4" "$dot_port"
wait_tcp allocserve "$net.4" "$doh_port"

addr_of() {
  case $1 in
  sextant) echo "$net.1" ;; unbound) echo "$net.2" ;; floor) echo "$net.3" ;; allocserve) echo "$net.4" ;;
  kresd) echo "$net.5" ;; dnsdist) echo "$net.6" ;;
  esac
}

echo "== warming the caches ($names names) and checking the answers"
# kresd's processes share one cache, so one pass warms them all. dnsdist's packet cache
# keeps answers to TCP queries apart from UDP ones, so it is warmed over both.
for s in "${servers[@]}" allocserve; do
  [ "$s" != floor ] || continue
  for m in udp $([ "$s" = dnsdist ] && echo tcp); do
    dnsperf -m "$m" -s "$(addr_of "$s")" -p "$dns_port" -d "$work/hits.txt" -n 1 -c 4 -q 100 -t 10 >"$work/warm-$s-$m.txt" 2>&1 || true
    grep -E 'Queries completed|Response codes' "$work/warm-$s-$m.txt" | sed "s/^ */   $s warm-up ($m): /"
  done
done
for s in "${servers[@]}"; do
  for q in "$hit_name" "$local_name"; do
    a=$(dig +time=2 +tries=1 +short -p "$dns_port" "@$(addr_of "$s")" "$q" A)
    [ -n "$a" ] || die "$s gives no A record for $q"
  done
done

# A DoH query for $1 (type A, ID 0 as RFC 8484 4.1 asks) in wire format, written to $2.
pack_query() {
  local hex='\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00' label
  IFS=. read -ra labels <<<"$1"
  for label in "${labels[@]}"; do hex+=$(printf '\\x%02x' "${#label}")$label; done
  # shellcheck disable=SC2059 # the format is the query: its bytes are written as printf escapes
  printf "$hex"'\x00\x00\x01\x00\x01' >"$2"
}
pack_query "$hit_name" "$work/doh-hit.bin"
pack_query "$local_name" "$work/doh-local.bin"
b64url() { base64 -w0 <"$1" | tr '+/' '-_' | tr -d '='; }

cpu_ticks() { # user+system ticks of all threads of the processes $@ (fields 14 and 15; comm may hold spaces)
  local p
  for p in "$@"; do sed 's/^.*) //' "/proc/$p/stat"; done | awk '{ t += $12 + $13 } END { print t }'
}

# run_load suite server outfile: one load-generator run; prints "answered lost qps latency_ms note".
run_load() {
  local suite=$1 server=$2 out=$3 addr mode qfile dohbin
  addr=$(addr_of "$server")
  mode=${suite%-local}
  if [ "$mode" != "$suite" ]; then qfile=$work/local.txt dohbin=$work/doh-local.bin; else qfile=$work/hits.txt dohbin=$work/doh-hit.bin; fi
  case $mode in
  udp | tcp | dot)
    local port=$dns_port
    [ "$mode" = dot ] && port=$dot_port
    dnsperf -m "$mode" -s "$addr" -p "$port" -d "$qfile" -l "$secs" -T "$threads" -c "$clients" -q "$inflight" >"$out" 2>&1 || true
    awk '
      /Queries completed:/ { done = $3 } /Queries lost:/ { lost = $3 }
      /Queries per second:/ { qps = $4 } /Average Latency/ { lat = $4 * 1000 }
      /Response codes:/ { rc = $0; sub(/.*codes: */, "", rc); gsub(/ /, "", rc); if (rc ~ /^NOERROR[0-9]+\(100\.00%\)$/) rc = "" }
      END { if (done == "") exit 1; printf "%d %d %.1f %.3f %s\n", done, lost, qps, lat, rc }' "$out"
    ;;
  doh-post | doh-get)
    local url="https://$addr:$doh_port/dns-query" extra=()
    if [ "$mode" = doh-get ]; then url+="?dns=$(b64url "$dohbin")"; else extra=(-d "$dohbin"); fi
    h2load -D "$secs" -t "$threads" -c "$clients" -m "$streams" -H 'content-type: application/dns-message' \
      -H 'accept: application/dns-message' "${extra[@]}" "$url" >"$out" 2>&1 || true
    awk '
      function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
      /^finished in/ { t = $3; sub(/s,$/, "", t) }
      /^requests:/ { ok = $8; bad = $10 + $12 + $14 }
      /^status codes:/ { rejected = $7 + $9 }
      /^time for request:/ { lat = ms($6) }
      END { if (ok == "" || t == 0) exit 1; note = rejected ? "4xx/5xx=" rejected : ""
            printf "%d %d %.1f %.3f %s\n", ok, bad, ok / t, lat, note }' "$out"
    ;;
  doh3 | doq)
    local port=$dot_port qmode=doq
    [ "$mode" = doh3 ] && port=$doh_port qmode=doh3
    "$work/quicload" -mode "$qmode" -addr "$addr:$port" -d "$qfile" -duration "${secs}s" \
      -conns "$clients" -streams "$streams" -insecure >"$out" 2>&1 || true
    awk '
      /^quicload / { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }; found = 1 }
      END { if (!found) exit 1; note = (v["rcode_other"] + 0 == 0) ? "" : "rcode_other=" v["rcode_other"]
            printf "%d %d %.1f %.3f p99=%sms%s\n", v["answers"], v["errors"], v["qps"], v["mean_ms"], v["p99_ms"], note ? "," note : "" }' "$out"
    ;;
  *) die "unknown workload $suite" ;;
  esac
}

results=$work/results.tsv
: >"$results"
header() { printf '%-13s %-8s %-6s %11s %10s %7s %10s %11s  %-15s %s\n' workload server run answers/s answered lost cpu_us/ans latency_ms load1/5/15 note; }

echo
echo "== load tests: $runs interleaved runs of ${secs}s per server; dnsperf -T $threads -c $clients -q $inflight," \
  "h2load -t $threads -c $clients -m $streams, quicload -conns $clients -streams $streams;" \
  "$(nproc) cores, servers $([ -n "$pin" ] && echo "pinned to CPUs $pin" || echo "not pinned")$([ -n "$gomaxprocs" ] && echo ", GOMAXPROCS=$gomaxprocs")," \
  "the load generator on the same machine"
for suite in $suites; do
  mode=${suite%-local}
  case $mode in
  udp) can=(sextant unbound kresd dnsdist floor) ;;
  tcp | dot) can=(sextant unbound kresd dnsdist) ;;
  doh-post | doh-get)
    can=(sextant dnsdist)
    if [ "$unbound_doh" = 1 ]; then can+=(unbound); fi
    if [ "$kresd_doh" = 1 ]; then can+=(kresd); fi
    ;;
  doh3 | doq) can=(sextant) ;;
  *) die "unknown workload $suite (see the top of bench/run.sh)" ;;
  esac
  # The servers started, in their order, that serve this workload.
  who=()
  for s in "${servers[@]}"; do [[ " ${can[*]} " == *" $s "* ]] && who+=("$s"); done
  echo
  echo "-- $suite"
  header
  for r in $(seq "$runs"); do
    for s in "${who[@]}"; do
      alive "$s"
      read -ra spids <<<"${server_pids[$s]}"
      load=$(cut -d' ' -f1-3 /proc/loadavg)
      before=$(cpu_ticks "${spids[@]}")
      line=$(run_load "$suite" "$s" "$work/out-$suite-$s-$r.txt") ||
        { cat "$work/out-$suite-$s-$r.txt" >&2; die "$suite against $s: no result from the load generator (its output above)"; }
      after=$(cpu_ticks "${spids[@]}")
      read -r answered lost qps lat note <<<"$line"
      [ "$answered" -gt 0 ] || { cat "$work/out-$suite-$s-$r.txt" >&2; die "$suite against $s: no answers (output above)"; }
      cpu=$(awk -v t=$((after - before)) -v hz="$clk_tck" -v n="$answered" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$suite" "$s" "$r" "$qps" "$answered" "$lost" "$cpu" "$lat" "${load// //}" "${note:-}" >>"$results"
      printf '%-13s %-8s %-6s %11s %10s %7s %10s %11s  %-15s %s\n' "$suite" "$s" "$r" "$qps" "$answered" "$lost" "$cpu" "$lat" "$load" "${note:-}"
    done
  done
  for s in "${who[@]}"; do
    awk -F'\t' -v suite="$suite" -v s="$s" '
      function median(col,   n, i, j, t, v) {
        n = 0
        for (i = 1; i <= NR; i++) if (w[i] == suite && sv[i] == s) v[++n] = f[i, col]
        for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
        return v[int((n + 1) / 2)]
      }
      { w[NR] = $1; sv[NR] = $2; for (i = 4; i <= 8; i++) f[NR, i] = $i }
      END { printf "%-13s %-8s %-6s %11s %10s %7s %10s %11s\n", suite, s, "median", median(4), median(5), median(6), median(7), median(8) }' "$results"
  done
done

alloc_secs=${BENCH_ALLOC_SECONDS:-3}
echo
echo "== server allocations per answered query (allocserve: Sextant's handler and front ends in one process, counters"
echo "   from runtime/metrics before and after one ${alloc_secs}s run of the same load generators)"
printf '%-13s %11s %10s %13s %12s %10s\n' workload answers/s answered allocs/answer bytes/answer GC/s
for suite in $suites; do
  alive allocserve
  read -r objs0 bytes0 gcs0 <"/dev/tcp/$net.4/$counter_port"
  line=$(secs=$alloc_secs run_load "$suite" allocserve "$work/out-$suite-allocserve.txt") ||
    { cat "$work/out-$suite-allocserve.txt" >&2; die "$suite against allocserve: no result (output above)"; }
  read -r objs1 bytes1 gcs1 <"/dev/tcp/$net.4/$counter_port"
  read -r answered lost qps _ <<<"$line"
  [ "$answered" -gt 0 ] || die "$suite against allocserve: no answers"
  awk -v s="$suite" -v q="$qps" -v n="$answered" -v o=$((objs1 - objs0)) -v b=$((bytes1 - bytes0)) -v g=$((gcs1 - gcs0)) -v t="$alloc_secs" \
    'BEGIN { printf "%-13s %11s %10d %13.1f %12.0f %10.1f\n", s, q, n, o / n, b / n, g / t }'
done

if [ "${BENCH_PROFILE:-0}" = 1 ]; then
  prof_secs=${BENCH_PROFILE_SECONDS:-10}
  echo
  echo "== CPU profiles of allocserve, one ${prof_secs}s run per workload (flat, top 20; BENCH_KEEP=1 keeps the raw profiles)"
  for suite in $suites; do
    (sleep 1 && go tool pprof -proto "http://$net.4:$pprof_port/debug/pprof/profile?seconds=$((prof_secs - 2))" \
      >"$work/cpu-$suite.pb.gz" 2>"$work/cpu-$suite.log") &
    prof=$!
    line=$(secs=$prof_secs run_load "$suite" allocserve "$work/out-$suite-profile.txt") || true
    wait "$prof" || { cat "$work/cpu-$suite.log" >&2; die "no profile for $suite"; }
    echo "-- $suite: ${line%% *} answers"
    go tool pprof -top -nodecount=20 "$work/cpu-$suite.pb.gz" 2>/dev/null | sed -n '/^Showing\|flat%/,$p'
  done
fi

echo
echo "== summary: medians of $runs runs; server CPU (user+system, all threads) per answered query in microseconds"
awk -F'\t' '
  function median(suite, s, col,   n, i, j, t, v) {
    n = 0
    for (i = 1; i <= NR; i++) if (w[i] == suite && sv[i] == s) v[++n] = f[i, col]
    if (n == 0) return ""
    for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
    return v[int((n + 1) / 2)]
  }
  function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "-" : sprintf("%.2fx", a / b) }
  function cell(v) { return v == "" ? "-" : v }
  # CPU per answer, flagged when the server lost more than 1% of the queries (or HTTP/2 streams).
  function cpu(x, s,   c, l) {
    c = median(x, s, 7); l = median(x, s, "lost%")
    if (c == "" || l + 0 <= 1) return cell(c)
    lossy = 1
    return sprintf("%s (%.0f%% lost)", c, l)
  }
  {
    w[NR] = $1; sv[NR] = $2; f[NR, 4] = $4; f[NR, 7] = $7; f[NR, "lost%"] = ($5 + $6 > 0) ? 100 * $6 / ($5 + $6) : 0
    if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 }
  }
  END {
    n = split("unbound kresd dnsdist floor", other, " ")
    split("Unbound|Knot Resolver|dnsdist|floor", label, "|")
    head = "| workload | Sextant CPU us/answer"; rule = "|---|---"
    for (j = 1; j <= n; j++) { head = head " | " label[j]; rule = rule "|---" }
    for (j = 1; j <= n; j++) { head = head " | Sextant/" label[j]; rule = rule "|---" }
    head = head " | Sextant answers/s"; rule = rule "|---"
    for (j = 1; j <= n; j++) { head = head " | " label[j] " answers/s"; rule = rule "|---" }
    print head " |"; print rule "|"
    for (i = 1; i <= k; i++) {
      x = order[i]; cs = median(x, "sextant", 7)
      row = "| " x " | " cpu(x, "sextant")
      for (j = 1; j <= n; j++) row = row " | " cpu(x, other[j])
      for (j = 1; j <= n; j++) row = row " | " ratio(cs, median(x, other[j], 7))
      row = row " | " cell(median(x, "sextant", 4))
      for (j = 1; j <= n; j++) row = row " | " cell(median(x, other[j], 4))
      print row " |"
    }
    if (lossy) print "(N% lost): the median share of queries, or HTTP/2 streams, the load generator counted lost, failed or reset."
  }' "$results"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores"
