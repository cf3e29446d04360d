package main

import (
	"context"
	"io"

	"github.com/sextant-dns/sextant/lab"
)

// labMain is `sextant lab`: the simulated internet, until interrupted.
func labMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return lab.Main(ctx, args, stdout)
}
