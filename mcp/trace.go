package mcp

import "github.com/membrane-mcp/membrane/calls"

// maxTraceState bounds the W3C tracestate taken from a request (the W3C
// limit is 32 members of at most 256 bytes; 512 bytes keeps what matters).
const maxTraceState = 512

// traceContext reads the W3C trace context a client sent in a request's
// _meta: "traceparent" and "tracestate", as SEP-414 of the 2026-07-28
// protocol carries them. Older protocol versions carry _meta too, so the
// keys are read whatever the version. A malformed traceparent is ignored
// (the call is traced as a new trace), and so is the tracestate with it.
func traceContext(meta map[string]any) (traceparent, tracestate string) {
	tp, _ := meta["traceparent"].(string)
	if !calls.ValidTraceParent(tp) {
		return "", ""
	}
	ts, _ := meta["tracestate"].(string)
	if len(ts) > maxTraceState {
		ts = ""
	}
	for i := 0; i < len(ts); i++ {
		if ts[i] < 0x20 || ts[i] > 0x7e {
			ts = ""
			break
		}
	}
	return tp, ts
}
