// Package archcheck holds no code, only the test that keeps the package
// table of ARCHITECTURE.md true: every package and whom it imports, as
// `go list` sees them.
package archcheck
