package validator

import (
	"encoding/base64"
	"fmt"

	"github.com/miekg/dns"
)

// signatureBytes decodes the RRSIG signature field.
func signatureBytes(sig *dns.RRSIG) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(sig.Signature)
	if err != nil {
		return nil, fmt.Errorf("RRSIG signature base64: %w", err)
	}
	return b, nil
}
