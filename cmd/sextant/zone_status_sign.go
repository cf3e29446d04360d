package main

import (
	"fmt"
	"io"
	"time"

	"github.com/sextant-dns/sextant/authority/signer"
)

// printSigningStatus shows what the online signer of a zone last did, with
// the DS records to hand to a registrar that does not read CDS.
func printSigningStatus(w io.Writer, st signer.Status, now time.Time) {
	fmt.Fprintf(w, "  signing:         %s\n", st.Policy)
	for _, k := range st.Keys {
		fmt.Fprintf(w, "  key:             %s tag %d algorithm %d (%s), created %s\n", k.Role, k.Tag, k.Algorithm, k.File, k.Created.UTC().Format(time.RFC3339))
	}
	for _, ds := range st.DS {
		fmt.Fprintf(w, "  DS for parent:   %s\n", ds)
	}
	if !st.LastSigned.IsZero() {
		fmt.Fprintf(w, "  signed serial:   %d (unsigned %d)\n", st.Serial, st.UnsignedSer)
		fmt.Fprintf(w, "  last signed:     %s: %d RRsets signed, %d kept, in %s\n", when(st.LastSigned, now), st.SignedRRsets, st.ReusedRRsets, st.Took)
		fmt.Fprintf(w, "  next re-signing: %s\n", st.NextRefresh.UTC().Format(time.RFC3339))
	} else {
		fmt.Fprintf(w, "  last signed:     never\n")
	}
	if st.LastError != "" {
		fmt.Fprintf(w, "  signing error:   %s\n", st.LastError)
	}
}
