package ollama

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/ollama/ollama/api"

	"github.com/membrane-mcp/membrane/calls"
)

// errCutStream means a stream ended without its final "done" message: the
// connection closed early. api.Client's stream returns nil in that case, so
// the handlers check for it themselves.
var errCutStream = errors.New("the stream ended before Ollama said it was done")

// errResponseCap stops a stream whose answer reached MaxResponseBytes.
var errResponseCap = errors.New("response size limit reached")

// unreachable reports whether err means the host could not be reached or
// dropped the connection, as opposed to an answer from Ollama.
func unreachable(err error) bool {
	if err == nil {
		return false
	}
	var se api.StatusError
	if errors.As(err, &se) {
		return se.StatusCode == http.StatusBadGateway || se.StatusCode == http.StatusServiceUnavailable && strings.Contains(se.ErrorMessage, "proxy")
	}
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &oe) || errors.As(err, &ne) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, errCutStream)
}

// describeHostErr says in a few words why a host could not be listed.
func describeHostErr(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (is `ollama serve` running?)"
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer within " + listTimeout.String()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return "the connection was closed (did Ollama stop or restart?)"
	}
	var se api.StatusError
	if errors.As(err, &se) {
		return fmt.Sprintf("HTTP %d: %s", se.StatusCode, plainReply(se.ErrorMessage))
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "unknown host " + dnsErr.Name
	}
	return err.Error()
}

// errNotModelList means a backend's GET /models answered 200 with
// something that is not an OpenAI model list (a web page, another API's
// JSON): the URL points at another kind of server.
var errNotModelList = errors.New("the reply is not an OpenAI model list")

// backendFault is why an OpenAI-compatible backend could not be listed,
// as far as the fix differs.
type backendFault int

const (
	faultOther       backendFault = iota
	faultUnreachable              // nothing answers at the URL
	faultAuth                     // the server wants a key, or another one
	faultNotOpenAI                // something answers, but not an OpenAI-compatible API
)

// backendFaultOf classifies a backend listing error.
func backendFaultOf(err error) backendFault {
	var se api.StatusError
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, errNotModelList):
		return faultNotOpenAI
	case errors.As(err, &se):
		switch se.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return faultAuth
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			return faultNotOpenAI
		}
	case errors.Is(err, syscall.ECONNREFUSED), errors.As(err, &dnsErr), errors.Is(err, context.DeadlineExceeded):
		return faultUnreachable
	}
	return faultOther
}

// describeErr is describeHostErr in the words of h's kind of server.
func (h *host) describeErr(err error) string {
	if h.oa == nil {
		return describeHostErr(err)
	}
	return describeBackendErr(err, h.oa.key != "")
}

// describeBackendErr says in a few words why an OpenAI-compatible backend
// could not be listed; keySent says whether a key was configured.
func describeBackendErr(err error, keySent bool) string {
	var se api.StatusError
	errors.As(err, &se)
	switch backendFaultOf(err) {
	case faultAuth:
		if !keySent {
			return fmt.Sprintf("HTTP %d (%s): the server wants an API key, and none is set for this backend", se.StatusCode, plainReply(se.ErrorMessage))
		}
		return fmt.Sprintf("HTTP %d (%s): the server refused the API key set for this backend", se.StatusCode, plainReply(se.ErrorMessage))
	case faultNotOpenAI:
		if se.StatusCode != 0 {
			return fmt.Sprintf("HTTP %d (%s) for GET models: no OpenAI-compatible API at this URL", se.StatusCode, plainReply(se.ErrorMessage))
		}
		return err.Error() + ": no OpenAI-compatible API at this URL"
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (is the server running, and on this port?)"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return "the connection was closed (did the server stop or restart?)"
	}
	return describeHostErr(err)
}

// plainReply is an error body as a message shows it: an HTML page (a web
// server's or a proxy's error page) becomes its title; any other text
// stays as it is (statusError already bounds it).
func plainReply(msg string) string {
	title, page := calls.HTMLPage(msg)
	switch {
	case !page:
		return msg
	case title == "":
		return "an HTML page"
	}
	return "an HTML page: " + truncateString(title, 80)
}

// failure is the kind of failure an Ollama error reply reports.
type failure int

const (
	failOther        failure = iota
	failModelMissing         // the model is not on the host
	failInputTooLong         // the input does not fit the context window
	failUnsupported          // the model lacks what the request needs
	failBadRequest           // Ollama refused the request itself
	failNoMemory             // too little memory to load the model
	failModelLoad            // the model file could not be loaded
	failRunner               // the host's runner could not start, or died
	failBusy                 // the host's queue is full
	failServer               // any other failure inside Ollama
	failAuth                 // the server (or a proxy before it) refused the credentials
)

// replyPattern is a piece of an Ollama error text that tells one failure
// from another within a status class. Text is matched only where the
// status code alone cannot tell (Ollama answers 400 for several kinds of
// refusal, and 500 for everything from a bad option to a broken install),
// and only here. seen says on which Ollama versions each text was seen:
// "recorded" ones come from a real server in the tests or testdata
// (errors_e2e_test.go, testdata/errors/), "source" ones from reading that
// version's server code.
type replyPattern struct {
	server bool // a 5xx pattern; else a 4xx one
	text   string
	kind   failure
	seen   string
}

var replyPatterns = []replyPattern{
	// 4xx: what the request asked for.
	{false, "exceeds maximum context length", failInputTooLong, `v0.6.5 /api/embed "input length exceeds maximum context length" (recorded); v0.17.4 /api/embed "input exceeds maximum context length and cannot be truncated further" (source)`},
	{false, "exceeds the context length", failInputTooLong, `v0.17.4 /api/chat and /api/embed with truncate:false "the input length exceeds the context length" (recorded)`},
	{false, "does not support", failUnsupported, `v0.6.5 "\"m\" does not support chat", "m does not support tools", "does not support generate" (recorded, v0.6.5 and v0.17.4); v0.17.4 "does not support thinking" (source)`},
	{false, "is not supported for this model", failUnsupported, `v0.17.4 "think value \"x\" is not supported for this model" (source)`},
	// 5xx: a refused request first, then memory, the model file, the runner.
	{true, "invalid format", failBadRequest, `v0.6.5, v0.17.4 HTTP 500 "invalid format: ...; expected \"json\" or a valid JSON Schema object" (recorded)`},
	{true, "must be of type", failBadRequest, `v0.6.5, v0.17.4 HTTP 500 "option \"temperature\" must be of type float32" (recorded)`},
	{true, "memory", failNoMemory, `v0.6.5, v0.17.4 "model requires more system memory (X) than is available (Y)"; v0.17.4 "failed to allocate memory for model" (source)`},
	{true, "error loading model", failModelLoad, `v0.6.5, v0.17.4 "llama runner process has terminated: error loading model: ..." (recorded)`},
	{true, "failed to load model", failModelLoad, `v0.6.5 "... llama_model_load_from_file_impl: failed to load model" (recorded)`},
	{true, "model failed to load", failModelLoad, `v0.17.4 "model failed to load, this may be due to resource limitations or an internal error, check ollama server logs for details" for a model file llama.cpp refuses (recorded)`},
	{true, "unable to load model", failModelLoad, `v0.6.5, v0.17.4 llama.cpp "unable to load model" (source)`},
	{true, "error starting", failRunner, `v0.33 "error starting llama-server: llama-server binary not found" (reported in issue 18); v0.17.4 "error starting runner" (source)`},
	{true, "runner process", failRunner, `v0.6.5, v0.17.4 "llama runner process has terminated|no longer running" (source)`},
	{true, "runner has unexpectedly stopped", failRunner, `v0.17.4 "model runner has unexpectedly stopped, ..." (source)`},
	{true, "waiting for llama runner", failRunner, `v0.6.5, v0.17.4 "timed out waiting for llama runner to start" (source)`},
}

// classify says what an Ollama error reply is: by its status code first,
// by its text (replyPatterns) only within a status class.
func classify(se api.StatusError) failure {
	code := se.StatusCode
	switch {
	case code == http.StatusNotFound:
		// /api/chat, /api/generate and /api/embed answer 404 for a model
		// the host does not have, and for nothing else (v0.6.5 recorded,
		// v0.17.4 source).
		return failModelMissing
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		return failBusy
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		// Ollama itself has no authentication: a proxy before it, or an
		// OpenAI-compatible server's API key check.
		return failAuth
	case code >= 400 && code < 500:
		if k := matchReply(se.ErrorMessage, false); k != failOther {
			return k
		}
		return failBadRequest
	case code >= 500:
		if k := matchReply(se.ErrorMessage, true); k != failOther {
			return k
		}
		return failServer
	}
	return failOther
}

func matchReply(msg string, server bool) failure {
	low := strings.ToLower(msg)
	for _, p := range replyPatterns {
		if p.server == server && strings.Contains(low, p.text) {
			return p.kind
		}
	}
	return failOther
}

// explain turns an error from a model call into a sentence the calling model
// can act on.
func explain(err error, modelName, hostName string, ctxLen int) string {
	return explainFrom("Ollama", err, modelName, hostName, ctxLen)
}

// explainOn is explain for a call of mod on h, naming h's kind of server.
func explainOn(err error, mod *model, h *host) string {
	return explainFrom(h.server(), err, mod.Name, h.name, mod.ContextLength)
}

// explainFrom is explain with server ("Ollama", or another kind of server)
// as the one that answered.
func explainFrom(server string, err error, modelName, hostName string, ctxLen int) string {
	var se api.StatusError
	if errors.As(err, &se) {
		msg := plainReply(se.ErrorMessage)
		if msg == "" {
			msg = se.Status
		}
		switch classify(se) {
		case failModelMissing:
			return fmt.Sprintf("model %s is no longer on %s (it was deleted or renamed); call ollama_models for the current list", modelName, hostName)
		case failInputTooLong:
			if ctxLen > 0 {
				return fmt.Sprintf("the input is too long for %s's context window of %d tokens (%s); shorten it, or send fewer messages", modelName, ctxLen, msg)
			}
			return fmt.Sprintf("the input is too long for %s's context window (%s); shorten it, or send fewer messages", modelName, msg)
		case failUnsupported:
			return fmt.Sprintf("%s cannot do that: %s", modelName, msg)
		case failBadRequest:
			return fmt.Sprintf("%s rejected the request to %s: %s", server, modelName, msg)
		case failNoMemory:
			return fmt.Sprintf("model %s failed to load on %s: %s; try a smaller model, or again once other models are unloaded", modelName, hostName, msg)
		case failModelLoad:
			if server != "Ollama" {
				return fmt.Sprintf("model %s failed to load on %s: %s; use another model", modelName, hostName, msg)
			}
			return fmt.Sprintf("model %s failed to load on %s: %s; the model file may be damaged or need a newer Ollama (`ollama run %s` on that host shows the same); use another model", modelName, hostName, msg, modelName)
		case failRunner:
			return fmt.Sprintf("%s on %s could not run model %s: %s; the host's installation or its model runner is broken (its server log says why), not the model; use another host or model, or try again later", server, hostName, modelName, msg)
		case failBusy:
			return fmt.Sprintf("%s on %s is overloaded (%s); wait a little and try again", server, hostName, msg)
		case failAuth:
			return fmt.Sprintf("%s on %s refused the credentials membrane sent (HTTP %d: %s); the key or password configured for that host is missing or wrong", server, hostName, se.StatusCode, msg)
		}
		return fmt.Sprintf("%s on %s failed (HTTP %d): %s", server, hostName, se.StatusCode, msg)
	}
	if errors.Is(err, errCutStream) {
		return fmt.Sprintf("%s on %s stopped in the middle of the answer (it may have crashed or restarted); try again", server, hostName)
	}
	if unreachable(err) {
		why := describeHostErr(err)
		if server != "Ollama" {
			why = describeBackendErr(err, true)
		}
		return fmt.Sprintf("%s on %s cannot be reached (%s); membrane will pick the model up again when the host is back", server, hostName, why)
	}
	low := strings.ToLower(err.Error())
	// api.Client returns a line it cannot parse as the error text itself.
	if t := strings.TrimSpace(err.Error()); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") ||
		strings.Contains(low, "invalid character") || strings.Contains(low, "unexpected end of json") || strings.Contains(low, "cannot unmarshal") {
		return fmt.Sprintf("%s on %s sent a malformed reply (%v); try again, and check the server's version", server, hostName, err)
	}
	// An {"error": ...} line in the middle of a stream, or a stray line.
	return fmt.Sprintf("%s on %s failed during the answer of %s: %v", server, hostName, modelName, err)
}
