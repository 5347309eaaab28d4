package mcp_test

import (
	"runtime"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// TestSDKDecodeAllocates32KiB pins what sets the floor of an MCP call in
// this module (README, "What a call through a backend costs"): go-sdk
// v1.8.0 decodes JSON through a fresh segmentio Decoder over the bytes
// (internal/json.Unmarshal), and each one allocates a 32 KiB buffer,
// whatever the size of the message (DecodeMessage makes two: the message,
// then its method). A no-op tools/call round trip over the in-memory
// transport makes eleven such decodes, 360 KiB of its 386 KB; with them on
// segmentio's json.Parse, which needs no buffer, the same round trip took
// 62-67 µs instead of 150-215 µs (a patched copy of the SDK, 5,000 calls,
// load 4-6). When
// this fails, the SDK has changed how it decodes: measure the round trip
// again and update the README.
func TestSDKDecodeAllocates32KiB(t *testing.T) {
	msg := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"noop","arguments":{}}}`)
	if _, err := jsonrpc.DecodeMessage(msg); err != nil {
		t.Fatal(err)
	}
	const n = 100
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		if _, err := jsonrpc.DecodeMessage(msg); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / n
	if per < 32<<10 {
		t.Errorf("decoding a %d-byte message allocated %d bytes; go-sdk no longer allocates a 32 KiB buffer per decode", len(msg), per)
	}
	t.Logf("decoding a %d-byte message allocated %d bytes", len(msg), per)
}
