#!/usr/bin/env bash
# What observability costs on the cache-hit path (issue 11), measured through
# `sextant serve` in one run (not part of `make test`; run by hand):
#
#   bash bench/observe.sh
#   OBS_SECONDS=5 OBS_RUNS=1 bash bench/observe.sh
#
# Three serves resolve through one lab: plain; with --metrics-listen (a
# scrape every second during the run); with --query-log --query-log-sample
# 100 (the log written to a file). dnsperf asks cached names of the lab's
# bulk zone, the three in turn, OBS_RUNS times; each run prints answers per
# second and the server's CPU per answer (user+system of all its threads,
# from /proc), then the medians.
#
# Knobs: OBS_SECONDS (10), OBS_RUNS (3), OBS_NAMES (2000 cached names),
# OBS_BASE (loopback /16, default 127.108.0.0), OBS_SAMPLE (100).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

secs=${OBS_SECONDS:-10}
runs=${OBS_RUNS:-3}
names=${OBS_NAMES:-2000}
base=${OBS_BASE:-127.108.0.0}
sample=${OBS_SAMPLE:-100}
net=${base%.*.*}.200
port=5300

command -v dnsperf >/dev/null 2>&1 || { echo "observe: dnsperf not found; apt-get install -y dnsperf" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/sextant" ./cmd/sextant
"$work/sextant" lab --out "$work/lab" --addr-base "$base" --bulk "$names" >"$work/lab.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do [ -s "$work/lab/root.hints" ] && break; sleep 0.1; done
[ -s "$work/lab/root.hints" ] || { cat "$work/lab.log" >&2; exit 1; }
seq 0 $((names - 1)) | sed 's/^/h/; s/$/.bulk.test A/' >"$work/hits.txt"

variants=(plain metrics querylog)
declare -A addr pid
i=1
for v in "${variants[@]}"; do
  addr[$v]=$net.$i
  extra=()
  case $v in
  metrics) extra=(--metrics-listen "$net.$i:9153") ;;
  querylog) extra=(--query-log --query-log-sample "$sample") ;;
  esac
  "$work/sextant" serve --root-hints "$work/lab/root.hints" --trust-anchor "$work/lab/root.ds" --log-level warn \
    --rate-limit 0 --listen "$net.$i:$port" "${extra[@]}" >"$work/$v.log" 2>&1 &
  pid[$v]=$!
  pids+=($!)
  i=$((i + 1))
done
for v in "${variants[@]}"; do
  for _ in $(seq 100); do dig +time=1 +tries=1 +short -p "$port" "@${addr[$v]}" h0.bulk.test A >/dev/null 2>&1 && break; sleep 0.2; done
  dnsperf -s "${addr[$v]}" -p "$port" -d "$work/hits.txt" -n 1 -c 4 -q 100 >/dev/null 2>&1 || true
done

ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
hz=$(getconf CLK_TCK)
printf '%-9s %-4s %12s %12s  %s\n' variant run answers/s cpu_us/ans load1
for r in $(seq "$runs"); do
  for v in "${variants[@]}"; do
    scraper=""
    if [ "$v" = metrics ]; then
      (while :; do curl -s "http://${addr[$v]}:9153/metrics" >/dev/null 2>&1 || true; sleep 1; done) &
      scraper=$!
    fi
    t0=$(ticks "${pid[$v]}")
    out=$(dnsperf -s "${addr[$v]}" -p "$port" -d "$work/hits.txt" -l "$secs" -T 2 -c 16 -q 200 2>&1 || true)
    t1=$(ticks "${pid[$v]}")
    [ -n "$scraper" ] && kill "$scraper" 2>/dev/null && wait "$scraper" 2>/dev/null || true
    done_q=$(echo "$out" | awk '/Queries completed:/ { print $3 }')
    qps=$(echo "$out" | awk '/Queries per second:/ { print $4 }')
    cpu=$(awk -v t="$((t1 - t0))" -v hz="$hz" -v n="${done_q:-0}" 'BEGIN { if (n == 0) print "-"; else printf "%.2f", t / hz * 1e6 / n }')
    printf '%-9s %-4s %12.0f %12s  %s\n' "$v" "$r" "${qps:-0}" "$cpu" "$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$work/results.txt"
  done
done
echo "== medians"
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
for v in "${variants[@]}"; do
  q=$(awk -v v="$v" '$1 == v { print $3 }' "$work/results.txt" | median)
  c=$(awk -v v="$v" '$1 == v { print $4 }' "$work/results.txt" | median)
  printf '%-9s %12s answers/s %8s us CPU per answer\n' "$v" "$q" "$c"
done
echo "   (query log lines written: $(grep -c 'msg=query' "$work/querylog.log" || true))"
