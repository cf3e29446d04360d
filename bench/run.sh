#!/usr/bin/env bash
# make bench: Go benchmarks of the hot paths, then dnsperf against Sextant and
# (if installed) Unbound, both resolving through the same lab on loopback.
#
# Environment knobs: BENCH_SECONDS (dnsperf run length, default 15),
# BENCH_CLIENTS (dnsperf -c, default 8), BENCH_BASE (lab address block,
# default 127.60.0.0), BENCH_NAMES (distinct query names, default 5000).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

secs=${BENCH_SECONDS:-15}
clients=${BENCH_CLIENTS:-8}
base=${BENCH_BASE:-127.60.0.0}
names=${BENCH_NAMES:-5000}
sextant_port=5300
unbound_port=5301

need() { command -v "$1" >/dev/null 2>&1 || { echo "bench: $1 not found; apt-get install -y $2" >&2; exit 1; }; }
need dnsperf dnsperf

echo "== Go benchmarks (cache-hit paths, allocations per op)"
go test -run '^$' -bench . -benchmem -benchtime 2s ./cache/ ./transport/ ./resolver/ ./bench/ 2>&1 | grep -E '^(Benchmark|ok|FAIL|PASS)' || true

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/sextant" ./cmd/sextant

echo "== starting the lab on $base"
"$work/sextant" lab --out "$work/lab" --addr-base "$base" --bulk "$names" >"$work/lab.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/lab/root.hints" ] && break; sleep 0.1; done
[ -s "$work/lab/root.hints" ] || { echo "lab did not start:"; cat "$work/lab.log"; exit 1; }
# The lab's bulk zone holds h0.bulk.test .. h<names-1>.bulk.test (lab.BulkName).
seq 0 $((names - 1)) | sed 's/^/h/; s/$/.bulk.test A/' >"$work/queries.txt"

echo "== starting sextant on 127.0.0.1:$sextant_port"
"$work/sextant" serve --root-hints "$work/lab/root.hints" --trust-anchor "$work/lab/root.ds" \
  --listen "127.0.0.1:$sextant_port" --log-level warn >"$work/sextant.log" 2>&1 &
pids+=($!)
sleep 1

run_dnsperf() { # name port
  echo "-- $1: warming the cache"
  dnsperf -s 127.0.0.1 -p "$2" -d "$work/queries.txt" -n 1 -c 4 -q 200 >/dev/null 2>&1 || true
  echo "-- $1: dnsperf -c $clients -l $secs (cache hits)"
  dnsperf -s 127.0.0.1 -p "$2" -d "$work/queries.txt" -l "$secs" -c "$clients" -q 500 -T 2 2>&1 |
    grep -E 'Queries sent|Queries completed|Queries lost|Response codes|Queries per second|Average Latency|Latency StdDev' | sed "s/^/$1: /"
}
run_dnsperf sextant "$sextant_port"

if command -v unbound >/dev/null 2>&1; then
  cat >"$work/unbound.conf" <<UB
server:
  interface: 127.0.0.1@$unbound_port
  port: $unbound_port
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
  access-control: 127.0.0.0/8 allow
  num-threads: 2
  msg-cache-size: 64m
  rrset-cache-size: 128m
  verbosity: 0
UB
  echo "== starting unbound on 127.0.0.1:$unbound_port"
  unbound -d -c "$work/unbound.conf" >"$work/unbound.log" 2>&1 &
  pids+=($!)
  sleep 1
  run_dnsperf unbound "$unbound_port"
else
  echo "unbound not installed (apt-get install -y unbound): skipping the comparison"
fi
