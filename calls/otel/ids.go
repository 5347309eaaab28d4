package otel

import (
	"context"
	"crypto/rand"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// traceIDKey carries, in the context a call's span starts from, the trace
// ID the router made for a call that came without a traceparent
// (calls.Event.TraceID), so that the span lands in the trace the store and
// the ledger name.
type traceIDKey struct{}

// withTraceID makes a root span started from ctx take the trace ID id (32
// hex digits); an invalid id leaves ctx as it is.
func withTraceID(ctx context.Context, id string) context.Context {
	tid, err := trace.TraceIDFromHex(id)
	if err != nil || !tid.IsValid() {
		return ctx
	}
	return context.WithValue(ctx, traceIDKey{}, tid)
}

// IDGenerator returns the ID generator of Start's tracer provider: random
// IDs, except that a root span takes the trace ID its context names (the
// one the router made for a call without a traceparent). A provider made
// without it still works; its root spans get trace IDs of their own.
func IDGenerator() sdktrace.IDGenerator { return callIDs{} }

type callIDs struct{}

func (callIDs) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	tid, ok := ctx.Value(traceIDKey{}).(trace.TraceID)
	for !ok || !tid.IsValid() {
		_, _ = rand.Read(tid[:])
		ok = true
	}
	return tid, newSpanID()
}

func (callIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return newSpanID() }

func newSpanID() trace.SpanID {
	var sid trace.SpanID
	for !sid.IsValid() {
		_, _ = rand.Read(sid[:])
	}
	return sid
}
