// Package do53test serves a transport.Handler over Do53 for a test. It is
// its own package, importing only transport, so that the tests of
// authority and its subpackages can use it too (labtest imports lab, which
// imports authority), and apart from dnstest, which transport's own tests
// import. Only tests import it.
package do53test

import (
	"context"
	"testing"
	"time"

	"github.com/sextant-dns/sextant/transport"
)

// shutdownTimeout bounds the shutdown at the end of the test.
const shutdownTimeout = 5 * time.Second

// Start serves h over UDP and TCP on addr ("host:port"; port 0 takes a
// free one, see the server's Addrs) until the test ends, and fails the
// test when the server does not start or does not shut down cleanly.
func Start(t testing.TB, addr string, h transport.Handler) *transport.Do53 {
	t.Helper()
	srv, err := transport.NewDo53(transport.Do53Config{ListenerConfig: transport.ListenerConfig{Addrs: []string{addr}, Handler: h}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Do53 server on %s: shutdown: %v", addr, err)
		}
	})
	return srv
}
