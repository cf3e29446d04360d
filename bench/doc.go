// Package bench measures Sextant end to end: Go benchmarks of the whole
// client path (a UDP packet in, the ready-to-send answer out) against the lab,
// and run.sh, which `make bench` runs to compare Sextant with Unbound under
// dnsperf. No production code imports this package.
package bench
