package mcp

import "strings"

// go-sdk answers some failures with a message and no error type or
// JSON-RPC code: plain-text HTTP errors, and code 0 for a request sent
// before initialize. membrane turns them into JSON-RPC errors with codes,
// and this file is the one place that reads the SDK's words to do it.
// Each pattern names the go-sdk version it was read from;
// TestSDKErrorTexts sends the bare SDK each failure and fails when an
// upgrade changes a text, so that a change shows up as a failing test
// instead of a wrong code. An unknown text still gets a generic code.

// sdkTextsCheckedWith is the go-sdk version whose texts sdkFailureOf knows.
const sdkTextsCheckedWith = "v1.8.0"

// sdkFailure is what an SDK error message says went wrong.
type sdkFailure int

const (
	sdkFailureOther sdkFailure = iota
	// sdkFailureUnknownMethod: "JSON RPC not handled: "x" unsupported"
	// (v1.8.0, HTTP 400 for a method without a session).
	sdkFailureUnknownMethod
	// sdkFailureMalformed: "malformed payload: unmarshaling jsonrpc
	// message: …" (v1.8.0, HTTP 400).
	sdkFailureMalformed
	// sdkFailureBeforeInit: "method "x" is invalid during session
	// initialization" (v1.8.0, code 0 on stdio and HTTP).
	sdkFailureBeforeInit
)

// sdkFailureOf classifies an SDK error message.
func sdkFailureOf(msg string) sdkFailure {
	switch {
	case strings.HasPrefix(msg, "JSON RPC not handled"):
		return sdkFailureUnknownMethod
	case strings.HasPrefix(msg, "malformed payload"):
		return sdkFailureMalformed
	case strings.Contains(msg, "during session initialization"):
		return sdkFailureBeforeInit
	}
	return sdkFailureOther
}
