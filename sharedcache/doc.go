// Package sharedcache is the fleet's second cache tier (resolver.SharedCache)
// on Redis or Valkey: answers one instance validated are there for the
// others, so that a question costs the walk from the root once per fleet,
// not once per instance (as Unbound's cachedb module does).
//
// What whoever can write to Redis cannot do: make an instance accept an
// entry it did not write itself or another instance with the fleet key.
// Every entry carries an HMAC-SHA256 under that key over its Redis key and
// content; a missing or wrong MAC is a miss (and counted). Instances only
// share answers they validated (or, with validation off, any answer, taken
// as unvalidated by the others), never bogus or stale ones.
//
// Redis is on the question's path, so it is given little: a lookup has a
// deadline of a few milliseconds, writes happen in the background with a
// bound on how many are in flight, and after a run of failures a circuit
// breaker stops asking for a while and then lets one probe through. With
// Redis slow or gone, instances resolve as they would alone.
package sharedcache
