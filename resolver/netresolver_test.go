package resolver

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
)

// TestNetResolver: a net.Resolver from NetResolver resolves through the
// resolver (addresses, TXT, and NXDOMAIN as IsNotFound) for Go code that
// only knows the standard library.
func TestNetResolver(t *testing.T) {
	h := memHierarchy(t, `www.example.test. TXT "hello"`)
	r := h.resolver(t, nil)
	nr := r.NetResolver()
	ctx := ctxT(t)

	addrs, err := nr.LookupHost(ctx, "www.example.test.")
	if err != nil || !slices.Equal(addrs, []string{"192.0.2.80"}) {
		t.Fatalf("LookupHost: %v, %v", addrs, err)
	}
	txt, err := nr.LookupTXT(ctx, "www.example.test.")
	if err != nil || !slices.Equal(txt, []string{"hello"}) {
		t.Fatalf("LookupTXT: %v, %v", txt, err)
	}
	_, err = nr.LookupHost(ctx, "nx.example.test.")
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsNotFound {
		t.Fatalf("LookupHost(nx): %v, want a not-found DNSError", err)
	}
	if h.zone.count() == 0 {
		t.Fatal("the zone's server was never asked")
	}
}

// TestNetResolverCancelled: a cancelled lookup returns promptly and the
// in-process connection goroutines end.
func TestNetResolverCancelled(t *testing.T) {
	h := memHierarchy(t)
	r := h.resolver(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.NetResolver().LookupHost(ctx, "www.example.test."); err == nil {
		t.Fatal("lookup with a cancelled context succeeded")
	}
}
