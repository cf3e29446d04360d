#!/usr/bin/env bash
# Memory per cached name, measured through `sextant serve` (not part of
# `make test` or `make bench`; run by hand):
#
#   bash bench/memory.sh            # 1,000,000 NXDOMAIN names, then 1,000,000 A names
#   MEM_NAMES=200000 MEM_KINDS=nxdomain bash bench/memory.sh
#
# A second `sextant serve` is the authoritative side: it serves a tiny
# unsigned root zone (--zone) in which every name below neg. is NXDOMAIN and
# every name below pos. has one A record (a wildcard). The resolver under
# test resolves N unique names against it (every query a cache miss, every
# answer one cached name), and the script reads VmRSS from /proc before and
# after, and the live heap and cache entry counts that SIGUSR1 logs.
#
# Environment knobs: MEM_NAMES (default 1000000), MEM_KINDS ("nxdomain a"),
# MEM_BASE (loopback /24 prefix, default 127.75.0), MEM_CACHE_SIZE and
# MEM_CACHE_BYTES (the resolver's --cache-size and --cache-max-bytes, large
# enough by default for every name to stay cached), MEM_QPS (dnsperf -Q,
# default 4000: faster loses answers on a shared 2-core machine), MEM_PROFILE_DIR (keep heap profiles there), MEM_EXTRA
# (more flags for the resolver), MEM_OUTSTANDING (dnsperf -q per client,
# default 20), MEM_BIN (a prebuilt sextant instead of building this tree).
#
# Reading the figures: `sextant serve` sets the Go memory limit to
# --cache-max-bytes plus 128 MiB. While twice the live heap (GOGC=100) is
# above that limit, the collector holds RSS near the limit, so RSS per name
# then tells the limit, not the cache; the live heap per name is what the
# cache costs, and the smallest MEM_CACHE_BYTES that still keeps every name
# (entries +N below) is the RSS a million names need.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

names=${MEM_NAMES:-1000000}
kinds=${MEM_KINDS:-nxdomain a}
base=${MEM_BASE:-127.75.0}
cache_size=${MEM_CACHE_SIZE:-$((4 * names + 1000))}
cache_bytes=${MEM_CACHE_BYTES:-$((4 << 30))}
qps=${MEM_QPS:-4000}
auth_addr="$base.1"
res_addr="$base.2"

command -v dnsperf >/dev/null 2>&1 || { echo "memory: dnsperf not found; apt-get install -y dnsperf" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if [ -n "${MEM_BIN:-}" ]; then cp "$MEM_BIN" "$work/sextant"; else go build -o "$work/sextant" ./cmd/sextant; fi

cat >"$work/root.zone" <<ZONE
\$ORIGIN .
\$TTL 86400
@       SOA   a.root. hostmaster.root. 1 3600 600 604800 3600
@       NS    a.root.
a.root. A     $auth_addr
neg     TXT   "every name below neg. is NXDOMAIN"
*.pos   A     192.0.2.1
ZONE
printf '. 3600000 NS a.root.\na.root. 3600000 A %s\n' "$auth_addr" >"$work/root.hints"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# memory_line PID LOG: ask the resolver for its heap figures, print the line.
memory_line() {
  local before
  before=$(grep -c 'msg=memory' "$2" || true)
  kill -USR1 "$1"
  for _ in $(seq 100); do
    [ "$(grep -c 'msg=memory' "$2" || true)" -gt "$before" ] && break
    sleep 0.1
  done
  grep 'msg=memory' "$2" | tail -1
}
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }

echo "== authoritative side on $auth_addr:53"
"$work/sextant" serve --zone "$work/root.zone" --root-hints "$work/root.hints" --no-dnssec \
  --listen "$auth_addr:53" --log-level warn >"$work/auth.log" 2>&1 &
pids+=($!)
sleep 1

for kind in $kinds; do
  case $kind in
  nxdomain) zone=neg qtype=A want=NXDOMAIN ;;
  a) zone=pos qtype=A want=NOERROR ;;
  *) echo "memory: unknown kind $kind" >&2; exit 1 ;;
  esac
  seq 0 $((names - 1)) | sed "s/^/n/; s/\$/.$zone. $qtype/" >"$work/queries.txt"

  log="$work/resolver-$kind.log"
  # SIGUSR1 writes heap profiles $MEM_PROFILE_DIR/heap-KIND.1 (before) and .2 (after).
  export SEXTANT_HEAP_PROFILE=${MEM_PROFILE_DIR:+$MEM_PROFILE_DIR/heap-$kind}
  # dnsperf is the only client: the per-/24 rate limit (1000 answers/s by
  # default) would drop most of its queries.
  # shellcheck disable=SC2086
  "$work/sextant" serve --root-hints "$work/root.hints" --no-dnssec --listen "$res_addr:53" --rate-limit 0 \
    --cache-size "$cache_size" --cache-max-bytes "$cache_bytes" --log-level warn ${MEM_EXTRA:-} >"$log" 2>&1 &
  pid=$!
  pids+=($pid)
  sleep 1
  # Warm up: priming, the zone's own names, the runtime's first allocations.
  printf 'warm%d.%s. %s\n' 1 "$zone" "$qtype" 2 "$zone" "$qtype" 3 "$zone" "$qtype" >"$work/warm.txt"
  dnsperf -s "$res_addr" -d "$work/warm.txt" -n 20 -c 1 >/dev/null 2>&1 || true
  sleep 1
  line0=$(memory_line "$pid" "$log")
  rss0=$(rss_kib "$pid")

  echo "== $kind: $names unique names, dnsperf -n 1 -Q $qps"
  # Under load some resolutions time out (SERVFAIL, cached for 5 s as a
  # failure entry); later passes resolve those again and are cache hits for
  # the rest, until (nearly) every name is cached.
  for pass in 1 2 3; do
    out=$(dnsperf -s "$res_addr" -d "$work/queries.txt" -n 1 -c 2 -q "${MEM_OUTSTANDING:-20}" -Q "$qps" -t 10 2>&1)
    echo "$out" | grep -E 'Queries (completed|lost)|Response codes|Queries per second' | sed "s/^ */   pass $pass: /"
    answered=$(echo "$out" | sed -n "s/.*$want \([0-9]*\).*/\1/p")
    [ "${answered:-0}" -ge $((names * 995 / 1000)) ] && break
    sleep 6
  done
  sleep 2
  rss1=$(rss_kib "$pid")
  line1=$(memory_line "$pid" "$log")
  rss2=$(rss_kib "$pid")

  heap0=$(echo "$line0" | field heap_alloc) heap1=$(echo "$line1" | field heap_alloc)
  e0=$(echo "$line0" | field rrset_entries) e1=$(echo "$line1" | field rrset_entries)
  a0=$(echo "$line0" | field answer_entries) a1=$(echo "$line1" | field answer_entries)
  limit=$((cache_bytes + (128 << 20)))
  awk -v k="$kind" -v n="${answered:-0}" -v lim="$limit" -v r0="$rss0" -v r1="$rss1" -v r2="$rss2" -v h0="$heap0" -v h1="$heap1" \
    -v e0="$e0" -v e1="$e1" -v a0="$a0" -v a1="$a1" 'BEGIN {
      if (n == 0) { print k ": no answers counted"; exit 1 }
      printf "%s: %d names answered (%s); rrset entries +%d, ready answers +%d\n", k, n, k, e1 - e0, a1 - a0
      printf "%s: RSS %.1f MiB -> %.1f MiB (%.1f MiB after a forced GC)\n", k, r0 / 1024, r1 / 1024, r2 / 1024
      printf "%s: RSS per cached name %.0f B; live heap per cached name %.0f B\n", k, (r1 - r0) * 1024 / n, (h1 - h0) / n
      printf "%s: Go memory limit %.0f MiB, %.0f B per name (unless GOMEMLIMIT is set)\n", k, lim / 1048576, lim / n
    }'
  kill "$pid"
  wait "$pid" 2>/dev/null || true
done
