#!/usr/bin/env bash
# A random-subdomain ("water torture") flood through `sextant serve`, with a
# second client asking cached names meanwhile (not part of `make test` or
# `make bench`; run by hand):
#
#   bash bench/flood.sh                       # 30 s, defaults
#   FLOOD_SECONDS=10 FLOOD_EXTRA="--rate-limit 0" bash bench/flood.sh
#
# A second `sextant serve` is the authoritative side: a tiny root zone in
# which every name below flood. has an A record (a wildcard), so every
# flood query is a cache miss that costs an upstream query. dnsperf sends
# unique names from 127.76.1.1 as fast as it can; bench/floodvictim asks
# ten cached names 200 times a second from 127.76.2.1 (another /24) and
# reports the share answered and its latency percentiles. The script also
# reports the resolver's RSS against its cache bound, and what the limits
# (rate limiting, --max-recursions-per-network) refused.
#
# Knobs: FLOOD_SECONDS (30), FLOOD_NAMES (2000000 unique names),
# FLOOD_CACHE_BYTES (resolver --cache-max-bytes, default 64 MiB: small, so
# the flood fills it), FLOOD_EXTRA (more resolver flags), FLOOD_DNSPERF
# (more dnsperf flags, e.g. "-Q 1" for a baseline without the flood),
# FLOOD_BASE (loopback /16 prefix, default 127.76).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

secs=${FLOOD_SECONDS:-30}
names=${FLOOD_NAMES:-2000000}
cache_bytes=${FLOOD_CACHE_BYTES:-$((64 << 20))}
base=${FLOOD_BASE:-127.76}
auth_addr="$base.0.1" res_addr="$base.0.2" flooder="$base.1.1" victim="$base.2.1"

command -v dnsperf >/dev/null 2>&1 || { echo "flood: dnsperf not found; apt-get install -y dnsperf" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/sextant" ./cmd/sextant
go build -o "$work/victim" ./bench/floodvictim
cat >"$work/root.zone" <<ZONE
\$ORIGIN .
\$TTL 86400
@       SOA   a.root. hostmaster.root. 1 3600 600 604800 3600
@       NS    a.root.
a.root. A     $auth_addr
*.flood A     127.0.0.1
*.cached A    127.0.0.2
ZONE
printf '. 3600000 NS a.root.\na.root. 3600000 A %s\n' "$auth_addr" >"$work/root.hints"
seq 0 $((names - 1)) | sed 's/^/r/; s/$/.flood. A/' >"$work/flood.txt"

"$work/sextant" serve --zone "$work/root.zone" --root-hints "$work/root.hints" --no-dnssec \
  --listen "$auth_addr:53" --rate-limit 0 --allow 127.0.0.0/8 --log-level warn >"$work/auth.log" 2>&1 &
pids+=($!)
# shellcheck disable=SC2086
"$work/sextant" serve --root-hints "$work/root.hints" --no-dnssec --listen "$res_addr:53" \
  --allow "$base.0.0/16" --cache-max-bytes "$cache_bytes" --control-socket "$work/ctl.sock" \
  --log-level warn ${FLOOD_EXTRA:-} >"$work/resolver.log" 2>&1 &
pid=$!
pids+=($pid)
sleep 1
cached=()
for i in $(seq 0 9); do cached+=("c$i.cached."); done
# Warm the victim's names into the cache.
"$work/victim" -server "$res_addr:53" -local "$victim" -rate 50 -duration 1s "${cached[@]}" >/dev/null

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# cpu_ticks: user+system clock ticks of a process, all threads.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
auth_pid=${pids[0]}
rss0=$(rss_kib "$pid")
res_cpu0=$(cpu_ticks "$pid") auth_cpu0=$(cpu_ticks "$auth_pid")
load0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== flood: unique names from $flooder for ${secs}s; victim asks cached names from $victim"
dnsperf -s "$res_addr" -a "$flooder" -d "$work/flood.txt" -l "$secs" -c 4 -q 500 -t 2 ${FLOOD_DNSPERF:-} >"$work/dnsperf.txt" 2>&1 &
flood=$!
"$work/victim" -server "$res_addr:53" -local "$victim" -rate 200 -duration "${secs}s" "${cached[@]}" >"$work/victim.json"
wait "$flood" || true
rss1=$(rss_kib "$pid")
res_cpu1=$(cpu_ticks "$pid") auth_cpu1=$(cpu_ticks "$auth_pid")
grep -E 'Queries (sent|completed|lost)|Response codes|Queries per second' "$work/dnsperf.txt" | sed 's/^ */   flood: /'
echo "   victim: $(cat "$work/victim.json")"
awk -v r0="$rss0" -v r1="$rss1" -v cb="$cache_bytes" 'BEGIN {
  printf "   resolver RSS %.1f MiB -> %.1f MiB (cache bound %.0f MiB; Go memory limit %.0f MiB)\n", r0/1024, r1/1024, cb/1048576, cb/1048576 + 128 }'
hz=$(getconf CLK_TCK)
awk -v r="$((res_cpu1 - res_cpu0))" -v a="$((auth_cpu1 - auth_cpu0))" -v hz="$hz" -v s="$secs" 'BEGIN {
  printf "   CPU: resolver %.0f%%, authoritative side %.0f%% of one core (load average before: %s)\n", 100*r/hz/s, 100*a/hz/s, "'"$load0"'" }'
"$work/sextant" ctl --socket "$work/ctl.sock" stats 2>/dev/null | grep -E 'ratelimit|cache\.(rrset|answer)' | sed 's/^/   /' || true
