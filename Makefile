# Sextant: a DNSSEC-validating recursive DNS resolver.
GO      ?= go
export PATH := /usr/local/go/bin:$(PATH)

.PHONY: run test bench lint build lab

# Serve on the embedded default: built-in IANA root hints and trust anchors,
# listening on 127.0.0.1:53 and [::1]:53 (port 53 needs root or CAP_NET_BIND_SERVICE).
run:
	$(GO) run ./cmd/sextant serve

# Vet, then every test with the race detector. The tests mostly wait on
# real sockets and timers (about a third of the wall time is CPU), and each
# package has loopback addresses of its own (ARCHITECTURE.md), so four
# packages run at once rather than one per core.
test:
	$(GO) vet ./...
	$(GO) test -race -p 4 -timeout 8m ./...

build:
	$(GO) build -o bin/sextant ./cmd/sextant

# Start the lab (a simulated DNSSEC-signed internet on loopback) and keep it running.
lab: build
	./bin/sextant lab --out lab-out

# Go benchmarks of the hot paths (allocations per query of every front end), then
# load tests of Sextant, Unbound and a bare UDP responder on the lab: answers/s,
# latency and server CPU per answer over UDP, TCP, DoT, DoH (HTTP/2 and 3) and DoQ.
# Knobs (BENCH_SECONDS, BENCH_RUNS, BENCH_SUITES, ...) are listed at the top of bench/run.sh.
bench: build
	bash bench/run.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
