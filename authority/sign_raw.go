package authority

import (
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"strings"

	"github.com/miekg/dns"
	"github.com/sextant-dns/sextant/internal/dnsname"
	"github.com/sextant-dns/sextant/internal/sigdata"
)

// This file signs RRsets for algorithms miekg/dns cannot sign with (ED448,
// RFC 8080): it builds the signed data of RFC 4034 3.1.8.1 itself and
// hands it to the key as it is (EdDSA signs the message, not a hash).

// signRaw fills in sig's covered type, labels and original TTL and signs
// rrset with k.
func signRaw(sig *dns.RRSIG, k crypto.Signer, rrset []dns.RR) error {
	h := rrset[0].Header()
	sig.Hdr.Rrtype = dns.TypeRRSIG
	sig.Hdr.Name = h.Name
	sig.Hdr.Class = h.Class
	if sig.OrigTtl == 0 {
		sig.OrigTtl = h.Ttl
	}
	sig.TypeCovered = h.Rrtype
	sig.Labels = signLabelCount(h.Name)
	data, err := sigdata.Build(rrset, sig)
	if err != nil {
		return err
	}
	raw, err := k.Sign(rand.Reader, data, crypto.Hash(0))
	if err != nil {
		return err
	}
	sig.Signature = base64.StdEncoding.EncodeToString(raw)
	return nil
}

// signLabelCount is the RRSIG Labels field for owner: its label count, less
// one for a leading "*" label (RFC 4034 3.1.3).
func signLabelCount(owner string) uint8 {
	n := dnsname.CountLabels(owner)
	if owner == "*" || strings.HasPrefix(owner, "*.") {
		n--
	}
	return uint8(n)
}
