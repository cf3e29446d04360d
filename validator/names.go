package validator

// wildcardOf returns the wildcard name directly below ce.
func wildcardOf(ce string) string {
	if ce == "." {
		return "*."
	}
	return "*." + ce
}
