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
	if st.Unsigned {
		fmt.Fprintf(w, "  signing off:     served unsigned since signing was turned off\n")
	}
	for _, k := range st.Keys {
		state := string(k.State)
		if state == "" {
			state = string(signer.StateActive)
		}
		fmt.Fprintf(w, "  key:             %s tag %d algorithm %d, %s", k.Role, k.Tag, k.Algorithm, state)
		for _, t := range []struct {
			what string
			at   time.Time
		}{{"published", k.Published}, {"active", k.Active}, {"retired", k.Retired}} {
			if !t.at.IsZero() {
				fmt.Fprintf(w, ", %s %s", t.what, t.at.UTC().Format(time.RFC3339))
			}
		}
		fmt.Fprintf(w, " (%s)\n", k.File)
	}
	if st.Roll != "" {
		fmt.Fprintf(w, "  key rollover:    %s\n", st.Roll)
	}
	for _, k := range st.Imported {
		fmt.Fprintf(w, "  imported key:    %s (another provider's)\n", k)
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
