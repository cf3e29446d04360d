package resolver

// AnswerReady is the front ends' fast path (transport.ReadyAnswerer): a
// repeated question answered from the ready-to-send answer cache straight
// from the raw query, before the query is parsed. Local zones need no check
// first: their answers never enter the answer cache (and the command purges
// it when zones are reloaded).
func (h *Handler) AnswerReady(dst, query []byte, maxSize int) ([]byte, bool) {
	return h.answers.WriteSized(dst, query, maxSize)
}
