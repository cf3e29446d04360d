package transport

import (
	"context"
	"net"
	"testing"
	"time"
)

// testServer is what every front end offers to tests.
type testServer interface {
	Start() error
	Addrs() []net.Addr
	Shutdown(ctx context.Context) error
}

// serveForTest starts s, shuts it down when the test ends, and returns its
// UDP and TCP addresses ("" for a protocol it does not listen on).
func serveForTest(t testing.TB, s testServer) (udp, tcp string) {
	t.Helper()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	for _, a := range s.Addrs() {
		switch a.(type) {
		case *net.UDPAddr:
			udp = a.String()
		case *net.TCPAddr:
			tcp = a.String()
		}
	}
	return udp, tcp
}
