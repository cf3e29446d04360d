package cache

// Rank is the RFC 2181 section 5.4.1 trust ranking of cached data: higher is
// more trusted. A lower-ranked RRset never replaces an unexpired
// higher-ranked one, so glue cannot overwrite authoritative data.
type Rank uint8

// Ranks, lowest first.
const (
	// RankAdditional: additional section of any reply.
	RankAdditional Rank = iota + 1
	// RankGlue: authority-section NS and glue addresses of a referral
	// (non-authoritative data).
	RankGlue
	// RankAnswerNonAuth: answer section of a reply without AA.
	RankAnswerNonAuth
	// RankAuthorityAuth: authority section of an authoritative (AA) reply.
	RankAuthorityAuth
	// RankAnswerAuth: answer section of an authoritative (AA) reply.
	RankAnswerAuth
	// RankLocal: configured data (root hints, trust anchors, local zones).
	RankLocal
)

// String names the rank for logs.
func (r Rank) String() string {
	switch r {
	case RankAdditional:
		return "additional"
	case RankGlue:
		return "glue"
	case RankAnswerNonAuth:
		return "answer-nonauth"
	case RankAuthorityAuth:
		return "authority-auth"
	case RankAnswerAuth:
		return "answer-auth"
	case RankLocal:
		return "local"
	}
	return "unranked"
}
