package security

import "testing"

func TestWorse(t *testing.T) {
	order := []Status{Secure, Insecure, Indeterminate, Bogus}
	for i, a := range order {
		for j, b := range order {
			if got, want := a.Worse(b), i > j; got != want {
				t.Errorf("%v.Worse(%v) = %v, want %v", a, b, got, want)
			}
		}
	}
}
