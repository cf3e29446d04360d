package secondary

// serialNewer reports whether serial b is newer than a in RFC 1982
// sequence-space arithmetic (SERIAL_BITS 32): b is newer when it is ahead
// of a by 1 to 2^31-1. At a distance of exactly 2^31 the comparison is
// undefined, and a primary that jumps by that much is not followed.
func serialNewer(b, a uint32) bool {
	d := b - a
	return d != 0 && d < 1<<31
}
