#!/usr/bin/env bash
# make bench: Go benchmarks of the hot paths (allocations per query for every
# front end), then load tests of Sextant, Unbound and a bare UDP responder
# (bench/floor, the floor) resolving through the same lab on loopback. For
# each run it prints answers per second, latency, and the server's CPU per
# answered query: user+system time of all its threads from /proc/PID/stat,
# read before and after the run, over the answers the client counted (issue 16).
#
# The load generator shares the machine with the servers (no taskset pinning
# by default), so on a small machine it is often the ceiling for answers per
# second; CPU per answer is the figure that tells servers apart. The load
# average is printed with every run: other work on the machine skews both.
#
# Workloads (BENCH_SUITES, in this order by default):
#   udp        dnsperf -m udp, cache hits (names of the lab's bulk zone, warmed first): sextant, unbound, floor
#   udp-local  the same, one question answered from Sextant's co-located zone (--zone)
#              and from Unbound's local-data (the floor answers it like any other)
#   tcp, dot   dnsperf -m tcp / -m dot, cache hits: sextant, unbound
#   doh-post, doh-get  h2load (HTTP/2), one cached question: sextant, unbound (if built with nghttp2)
#   doh3, doq  bench/quicload (HTTP/3, DNS over QUIC), cache hits: sextant (Unbound has neither before 1.22)
# Any workload with "-local" appended asks the local-zone question instead.
# Runs are interleaved (sextant, unbound, floor, sextant, ...), BENCH_RUNS per
# server; each run and the median are printed, then a summary table.
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
#   BENCH_BASE     [127.60.0.0] loopback /16: the lab on port 53, the servers on .200.1-3 high ports
#   BENCH_TASKSET  []        CPU list to pin the servers to (taskset -c), empty: no pinning
#   BENCH_GOMAXPROCS []      GOMAXPROCS of the Go servers (sextant, floor, allocserve), empty: Go's default
#   BENCH_GO       [1]       0 skips the Go benchmarks
#   BENCH_GOTIME   [1s]      go test -benchtime
#   BENCH_UNBOUND  [1]       0 leaves Unbound out
#   BENCH_ALLOC_SECONDS [3]  length of the one allocation-counting run per workload (bench/allocserve)
#   BENCH_PROFILE  [0]       1 adds a CPU profile of allocserve under each workload (go tool pprof -top)
#   BENCH_PROFILE_SECONDS [10]  length of each profiled run
#   BENCH_KEEP     [0]       1 keeps the work directory (logs, every load generator's output)
# Needs (Debian packages): dnsperf, unbound, nghttp2-client (h2load), openssl, dnsutils (dig).
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

die() { echo "bench: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: apt-get install -y $2"; }
need dnsperf dnsperf
need h2load nghttp2-client
need openssl openssl
need dig dnsutils
need awk mawk
[ "$with_unbound" = 0 ] || need unbound unbound
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
  -addext "subjectAltName=IP:$net.1,IP:$net.2,DNS:localhost" \
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

start() { # name logfile command...: start a server in the background, optionally pinned
  local name=$1 log=$2
  shift 2
  if [ -n "$gomaxprocs" ]; then set -- env GOMAXPROCS="$gomaxprocs" "$@"; fi
  if [ -n "$pin" ]; then set -- taskset -c "$pin" "$@"; fi
  "$@" >"$log" 2>&1 &
  pids+=($!)
  eval "pid_$name=$!"
}

wait_udp() { # name addr
  for _ in $(seq 100); do
    dig +time=1 +tries=1 +short -p "$dns_port" "@$2" "$hit_name" A >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  cat "$work/$1.log" >&2
  die "$1 does not answer on $2:$dns_port (log above)"
}

wait_tcp() { # name addr port
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/$2/$3") 2>/dev/null && return 0
    sleep 0.1
  done
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

addr_of() { case $1 in sextant) echo "$net.1" ;; unbound) echo "$net.2" ;; floor) echo "$net.3" ;; allocserve) echo "$net.4" ;; esac; }

echo "== warming the caches ($names names) and checking the answers"
for s in sextant unbound allocserve; do
  if [ "$s" = unbound ] && [ "$with_unbound" = 0 ]; then continue; fi
  dnsperf -s "$(addr_of $s)" -p "$dns_port" -d "$work/hits.txt" -n 1 -c 4 -q 100 -t 10 >"$work/warm-$s.txt" 2>&1 || true
  grep -E 'Queries completed|Response codes' "$work/warm-$s.txt" | sed "s/^ */   $s warm-up: /"
done
for s in "${servers[@]}"; do
  for q in "$hit_name" "$local_name"; do
    a=$(dig +time=2 +tries=1 +short -p "$dns_port" "@$(addr_of $s)" "$q" A)
    [ -n "$a" ] || die "$s gives no A record for $q"
  done
done

# A DoH query for $1 (type A, ID 0 as RFC 8484 4.1 asks) in wire format, written to $2.
pack_query() {
  local hex='\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00' label
  IFS=. read -ra labels <<<"$1"
  for label in "${labels[@]}"; do hex+=$(printf '\\x%02x' "${#label}")$label; done
  printf "$hex"'\x00\x00\x01\x00\x01' >"$2"
}
pack_query "$hit_name" "$work/doh-hit.bin"
pack_query "$local_name" "$work/doh-local.bin"
b64url() { base64 -w0 <"$1" | tr '+/' '-_' | tr -d '='; }

cpu_ticks() { # user+system ticks of all threads of process $1 (fields 14 and 15; comm may hold spaces)
  sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
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
  udp) who=(sextant unbound floor) ;;
  tcp | dot) who=(sextant unbound) ;;
  doh-post | doh-get) who=(sextant) && if [ "$unbound_doh" = 1 ]; then who+=(unbound); fi ;;
  doh3 | doq) who=(sextant) ;;
  *) die "unknown workload $suite (see the top of bench/run.sh)" ;;
  esac
  if [ "$with_unbound" = 0 ]; then who=("${who[@]/unbound/}"); fi
  echo
  echo "-- $suite"
  header
  for r in $(seq "$runs"); do
    for s in "${who[@]}"; do
      [ -n "$s" ] || continue
      pid_var=pid_$s
      pid=${!pid_var}
      kill -0 "$pid" 2>/dev/null || { cat "$work/$s.log" >&2; die "$s has exited (log above)"; }
      load=$(cut -d' ' -f1-3 /proc/loadavg)
      before=$(cpu_ticks "$pid")
      line=$(run_load "$suite" "$s" "$work/out-$suite-$s-$r.txt") ||
        { cat "$work/out-$suite-$s-$r.txt" >&2; die "$suite against $s: no result from the load generator (its output above)"; }
      after=$(cpu_ticks "$pid")
      read -r answered lost qps lat note <<<"$line"
      [ "$answered" -gt 0 ] || { cat "$work/out-$suite-$s-$r.txt" >&2; die "$suite against $s: no answers (output above)"; }
      cpu=$(awk -v t=$((after - before)) -v hz="$clk_tck" -v n="$answered" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$suite" "$s" "$r" "$qps" "$answered" "$lost" "$cpu" "$lat" "${load// //}" "${note:-}" >>"$results"
      printf '%-13s %-8s %-6s %11s %10s %7s %10s %11s  %-15s %s\n' "$suite" "$s" "$r" "$qps" "$answered" "$lost" "$cpu" "$lat" "$load" "${note:-}"
    done
  done
  for s in "${who[@]}"; do
    [ -n "$s" ] || continue
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
  kill -0 "$pid_allocserve" 2>/dev/null || { cat "$work/allocserve.log" >&2; die "allocserve has exited (log above)"; }
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
  { w[NR] = $1; sv[NR] = $2; f[NR, 4] = $4; f[NR, 7] = $7; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
  END {
    print "| workload | Sextant CPU us/answer | Unbound | floor | Sextant/Unbound | Sextant/floor | Sextant answers/s | Unbound answers/s | floor answers/s |"
    print "|---|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= k; i++) {
      x = order[i]
      cs = median(x, "sextant", 7); cu = median(x, "unbound", 7); cf = median(x, "floor", 7)
      printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", x, cell(cs), cell(cu), cell(cf), ratio(cs, cu), ratio(cs, cf),
        cell(median(x, "sextant", 4)), cell(median(x, "unbound", 4)), cell(median(x, "floor", 4))
    }
  }' "$results"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores"
