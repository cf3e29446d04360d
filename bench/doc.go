// Package bench measures Sextant end to end: Go benchmarks of the whole
// client path (a UDP packet in, the ready-to-send answer out) against the lab,
// and run.sh, which `make bench` runs to compare Sextant with Unbound and a
// bare responder under dnsperf, h2load and quicload, reporting server CPU per
// answered query (issue 16). Its commands, used only by run.sh:
//
//   - floor: a bare recvmmsg/sendmmsg UDP responder, the CPU floor;
//   - quicload: a load client for DoQ and DoH over HTTP/3;
//   - allocserve: Sextant's handler and front ends in one process that
//     reports its heap allocation counters, for allocations per answer of
//     the server alone.
//
// No production code imports this package.
package bench
