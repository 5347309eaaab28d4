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
		return fmt.Sprintf("HTTP %d: %s", se.StatusCode, se.ErrorMessage)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "unknown host " + dnsErr.Name
	}
	return err.Error()
}

// explain turns an error from a model call into a sentence the calling model
// can act on.
func explain(err error, modelName, hostName string, ctxLen int) string {
	var se api.StatusError
	if errors.As(err, &se) {
		msg := se.ErrorMessage
		low := strings.ToLower(msg)
		switch {
		case se.StatusCode == http.StatusNotFound || strings.Contains(low, "not found"):
			return fmt.Sprintf("model %s is no longer on %s (it was deleted or renamed); call ollama_models for the current list", modelName, hostName)
		case strings.Contains(low, "context") && (strings.Contains(low, "length") || strings.Contains(low, "exceed") || strings.Contains(low, "too long") || strings.Contains(low, "limit")):
			if ctxLen > 0 {
				return fmt.Sprintf("the input is too long for %s's context window of %d tokens (%s); shorten it, or send fewer messages", modelName, ctxLen, msg)
			}
			return fmt.Sprintf("the input is too long for %s's context window (%s); shorten it, or send fewer messages", modelName, msg)
		case strings.Contains(low, "does not support") || strings.Contains(low, "not support"):
			return fmt.Sprintf("%s cannot do that: %s", modelName, msg)
		case strings.Contains(low, "memory"):
			return fmt.Sprintf("model %s failed to load on %s: %s; try a smaller model, or again once other models are unloaded", modelName, hostName, msg)
		case strings.Contains(low, "load") || strings.Contains(low, "runner") ||
			strings.Contains(low, "terminated") || strings.Contains(low, "llama"):
			return fmt.Sprintf("model %s failed to load on %s: %s; the model file may be damaged or need a newer Ollama (`ollama run %s` on that host shows the same); use another model", modelName, hostName, msg, modelName)
		case se.StatusCode == http.StatusBadRequest:
			return fmt.Sprintf("Ollama rejected the request to %s: %s", modelName, msg)
		case se.StatusCode == http.StatusTooManyRequests || se.StatusCode == http.StatusServiceUnavailable:
			return fmt.Sprintf("Ollama on %s is overloaded (%s); wait a little and try again", hostName, msg)
		}
		if msg == "" {
			msg = se.Status
		}
		return fmt.Sprintf("Ollama on %s failed (HTTP %d): %s", hostName, se.StatusCode, msg)
	}
	if errors.Is(err, errCutStream) {
		return fmt.Sprintf("Ollama on %s stopped in the middle of the answer (it may have crashed or restarted); try again", hostName)
	}
	if unreachable(err) {
		return fmt.Sprintf("Ollama on %s cannot be reached (%s); membrane will pick the model up again when the host is back", hostName, describeHostErr(err))
	}
	low := strings.ToLower(err.Error())
	// api.Client returns a line it cannot parse as the error text itself.
	if t := strings.TrimSpace(err.Error()); strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[") ||
		strings.Contains(low, "invalid character") || strings.Contains(low, "unexpected end of json") || strings.Contains(low, "cannot unmarshal") {
		return fmt.Sprintf("Ollama on %s sent a malformed reply (%v); try again, and check the host's Ollama version", hostName, err)
	}
	// An {"error": ...} line in the middle of a stream, or a stray line.
	return fmt.Sprintf("Ollama on %s failed during the answer of %s: %v", hostName, modelName, err)
}
