#!/usr/bin/env bash
# Figures of the fleet's shared cache (issue 14), measured on the lab (not
# part of `make test` or `make bench`; run by hand, as root: the instances
# listen on port 53 of 127.104.10-12.x, the lab on 127.105/16):
#
#   bash bench/fleet.sh              # 2000 names
#   FLEET_NAMES=10000 bash bench/fleet.sh
#
# It runs cmd/sextant's TestFleetFigures with Debian's redis-server (or
# Valkey's, installed as redis-server), which reports:
#   (a) the latency a client sees (median / p99 over the names, asked one
#       at a time over UDP) of an answer from the instance's own cache (L1),
#       from Redis after an L1 miss (L2: another instance resolved it), and
#       of a full resolution on the lab with a shared-cache miss first and
#       with no shared cache;
#   (b) upstream queries (counted by the lab's servers) of three fresh
#       instances asked 3 x FLEET_NAMES questions, names drawn at random
#       from FLEET_NAMES, round-robin, with and without --shared-cache;
#   (c) Redis memory per shared entry: INFO memory used_memory after the
#       entries minus before, over DBSIZE; and one entry's MEMORY USAGE.
# The lab's servers answer in microseconds, so a full resolution here is far
# cheaper than on the internet (tens of milliseconds): compare the L2 cost
# with real resolution times, not with the lab's.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
SEXTANT_FLEET_FIGURES="${FLEET_NAMES:-2000}" go test -run '^TestFleetFigures$' -count=1 -v ./cmd/sextant/ |
  grep -E 'fleetfigures_test|^(---|ok|FAIL)'
