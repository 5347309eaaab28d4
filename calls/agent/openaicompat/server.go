package openaicompat

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/membrane-mcp/membrane/calls"
	"github.com/membrane-mcp/membrane/calls/agent"
	"github.com/membrane-mcp/membrane/calls/agent/agents"
)

// Defaults used where ServerOptions leaves a field zero.
const (
	DefaultTurnTimeout      = 5 * time.Minute
	DefaultMaxRequestBytes  = 4 << 20
	DefaultTurnsPerToken    = 4
	DefaultMaxTurns         = 64
	DefaultKeepAlive        = 10 * time.Second
	DefaultWriteStall       = 30 * time.Second
	DefaultConversationSize = 1 << 20
)

// Backend is what one turn of an agent runs on: its model and its tools.
type Backend struct {
	Model agent.Model
	// Tools are the agent's tools, already narrowed to its selection. Nil
	// means none.
	Tools agent.Tools
	// ExtractTextCalls runs tool calls the model writes as text.
	ExtractTextCalls bool
}

// Conversations keeps the histories of conversations a client names by id.
// Owner is the client's identity (its token's user), so that one client
// never reads another's conversation. Load returns nil for an unknown or
// expired conversation.
type Conversations interface {
	Load(ctx context.Context, owner, agent, id string) ([]agent.Message, error)
	Save(ctx context.Context, owner, agent, id string, msgs []agent.Message) error
}

// ServerOptions configures NewServer. Agents and Backend are needed; the
// zero value of every other field is a safe default.
type ServerOptions struct {
	// Agents are the agents served, by name. The set may change while the
	// server runs (a reload); each turn uses the agent as it was when the
	// turn began.
	Agents *agents.Catalog
	// Backend returns the model and tools of a turn of spec.
	Backend func(spec agents.Spec) (*Backend, error)
	// TurnTimeout is the time budget of a turn whose agent sets none. Zero
	// means DefaultTurnTimeout.
	TurnTimeout time.Duration
	// MaxRequestBytes caps a request body (413 past it). Zero means
	// DefaultMaxRequestBytes.
	MaxRequestBytes int64
	// TurnsPerToken bounds the turns one identity runs at once (429 past
	// it). Zero means DefaultTurnsPerToken; negative means no bound.
	TurnsPerToken int
	// MaxTurns bounds the turns running at once, all identities together
	// (503 past it). Zero means DefaultMaxTurns; negative means no bound.
	MaxTurns int
	// Identity names the client of a request for TurnsPerToken and for
	// conversations (a token's user). Nil means one identity per
	// Authorization header value.
	Identity func(r *http.Request) string
	// Conversations, when set, keeps the history of requests that carry a
	// conversation_id. Nil refuses such requests.
	Conversations Conversations
	// MaxConversationBytes bounds a kept conversation's history (its
	// messages as JSON); older messages are dropped past it. Zero means
	// DefaultConversationSize.
	MaxConversationBytes int
	// KeepAlive is how often an SSE comment is sent while a stream is
	// quiet (a long tool call), so that proxies keep it open. Zero means
	// DefaultKeepAlive; negative means none.
	KeepAlive time.Duration
	// WriteStall bounds one write to a client that stops reading; the
	// turn is then cancelled. Zero means DefaultWriteStall.
	WriteStall time.Duration
	// Logger receives one record per turn and per refused request. Nil
	// discards.
	Logger *slog.Logger
}

// Server serves agents behind the OpenAI chat-completions API:
//
//	POST /v1/chat/completions       the agent named by "model"; stream or not
//	GET  /v1/models                 the agents, as models
//	GET  /v1/agents                 the agents, with their settings
//	GET  /v1/agents/{name}          one agent
//	POST /v1/agents/{name}/chat     a turn, with the step trace on request
//
// The agent's tools run in the server; the client sees the answer, and in a
// stream, tool progress as reasoning text (delta.reasoning_content), which
// clients that know only the standard fields ignore. Usage counts every
// model call of the turn. A client that goes away cancels its turn and the
// tool calls it is running. Every refusal is an OpenAI error object.
//
// The Server checks neither Host, Origin nor tokens: put it behind the
// program's HTTP security layer.
type Server struct {
	opts ServerOptions
	log  *slog.Logger
	mux  *http.ServeMux

	mu      sync.Mutex
	running int
	byOwner map[string]int
}

// NewServer returns a server of opts.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.Agents == nil || opts.Backend == nil {
		return nil, errors.New("openaicompat: a server needs Agents and Backend")
	}
	s := &Server{opts: opts, log: opts.Logger, byOwner: map[string]int{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	o := &s.opts
	if o.TurnTimeout == 0 {
		o.TurnTimeout = DefaultTurnTimeout
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.TurnsPerToken == 0 {
		o.TurnsPerToken = DefaultTurnsPerToken
	}
	if o.MaxTurns == 0 {
		o.MaxTurns = DefaultMaxTurns
	}
	if o.MaxConversationBytes <= 0 {
		o.MaxConversationBytes = DefaultConversationSize
	}
	if o.KeepAlive == 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.WriteStall <= 0 {
		o.WriteStall = DefaultWriteStall
	}
	if o.Identity == nil {
		o.Identity = func(r *http.Request) string { return r.Header.Get("Authorization") }
	}
	m := http.NewServeMux()
	m.HandleFunc("POST /v1/chat/completions", s.chatCompletions)
	m.HandleFunc("GET /v1/models", s.models)
	m.HandleFunc("GET /v1/models/{name}", s.model)
	m.HandleFunc("GET /v1/agents", s.listAgents)
	m.HandleFunc("GET /v1/agents/{name}", s.getAgent)
	m.HandleFunc("POST /v1/agents/{name}/chat", s.agentChat)
	m.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &RequestError{Status: 404, Type: typeNotFound, Code: "unknown_url",
			Msg: fmt.Sprintf("no route %s %s; the routes are POST /v1/chat/completions, GET /v1/models, GET /v1/agents, GET /v1/agents/{name}, POST /v1/agents/{name}/chat", r.Method, clip(r.URL.Path, 128))})
	})
	s.mux = m
	return s, nil
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
			writeError(w, &RequestError{Status: 415, Type: typeInvalid, Code: "unsupported_media_type",
				Msg: fmt.Sprintf("Content-Type %q: send application/json", clip(ct, 64))})
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// Running returns how many turns are running.
func (s *Server) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

func writeError(w http.ResponseWriter, e *RequestError) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	switch e.Status {
	case 429, 503:
		h.Set("Retry-After", "1")
	default:
		if e.NoRetry || e.Status >= 500 || e.Status == 408 || e.Status == 409 {
			h.Set("X-Should-Retry", "false")
		}
	}
	w.WriteHeader(e.Status)
	json.NewEncoder(w).Encode(errorBody(e))
}

func errorBody(e *RequestError) map[string]any {
	var param, code any
	if e.Param != "" {
		param = e.Param
	}
	if e.Code != "" {
		code = e.Code
	}
	return map[string]any{"error": map[string]any{"message": e.Msg, "type": e.Type, "param": param, "code": code}}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// readBody reads a request body within the size bound.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *RequestError) {
	if r.ContentLength > s.opts.MaxRequestBytes {
		return nil, s.tooLarge()
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxRequestBytes))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, s.tooLarge()
		}
		return nil, &RequestError{Status: 400, Type: typeInvalid, Code: "body_unreadable", Msg: "could not read the request body: " + err.Error()}
	}
	return b, nil
}

func (s *Server) tooLarge() *RequestError {
	return &RequestError{Status: 413, Type: typeInvalid, Code: "request_too_large",
		Msg: fmt.Sprintf("the request body is larger than %d bytes: send a shorter conversation", s.opts.MaxRequestBytes)}
}

func (s *Server) unknownAgent(name, param string) *RequestError {
	names := s.opts.Agents.Names()
	msg := fmt.Sprintf("there is no agent %q", clip(name, 64))
	if len(names) > 0 {
		msg += "; the agents are: " + strings.Join(names, ", ")
	} else {
		msg += "; none are configured"
	}
	return &RequestError{Status: 404, Type: typeInvalid, Code: "model_not_found", Param: param, Msg: msg}
}

type modelEntry struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	data := []modelEntry{}
	for _, n := range s.opts.Agents.Names() {
		data = append(data, modelEntry{ID: n, Object: "model", OwnedBy: "membrane"})
	}
	writeJSON(w, map[string]any{"object": "list", "data": data})
}

func (s *Server) model(w http.ResponseWriter, r *http.Request) {
	spec, ok := s.opts.Agents.Get(r.PathValue("name"))
	if !ok {
		writeError(w, s.unknownAgent(r.PathValue("name"), "model"))
		return
	}
	writeJSON(w, modelEntry{ID: spec.Name, Object: "model", OwnedBy: "membrane"})
}

// AgentInfo is an agent as /v1/agents shows it: what a client may know,
// never its endpoint's key or its servers' commands.
type AgentInfo struct {
	Name           string   `json:"name"`
	Description    string   `json:"description"`
	Model          string   `json:"model"`
	Tools          []string `json:"tools"`
	ExcludeTools   []string `json:"exclude_tools,omitempty"`
	Approve        []string `json:"approve,omitempty"`
	Unattended     string   `json:"unattended"`
	MaxSteps       int      `json:"max_steps"`
	TimeoutSeconds float64  `json:"timeout_seconds"`
}

func (s *Server) info(spec agents.Spec) AgentInfo {
	tools := spec.Tools
	if len(tools) == 0 {
		tools = []string{"*"}
	}
	un := string(spec.Unattended)
	if un == "" {
		un = string(agents.Refuse)
	}
	return AgentInfo{Name: spec.Name, Description: spec.Description, Model: spec.Model, Tools: tools,
		ExcludeTools: spec.ExcludeTools, Approve: spec.Approve, Unattended: un,
		MaxSteps: spec.Steps(), TimeoutSeconds: s.budget(spec).Seconds()}
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request) {
	out := []AgentInfo{}
	for _, spec := range s.opts.Agents.List() {
		out = append(out, s.info(spec))
	}
	writeJSON(w, map[string]any{"agents": out})
}

func (s *Server) getAgent(w http.ResponseWriter, r *http.Request) {
	spec, ok := s.opts.Agents.Get(r.PathValue("name"))
	if !ok {
		writeError(w, s.unknownAgent(r.PathValue("name"), ""))
		return
	}
	writeJSON(w, s.info(spec))
}

func (s *Server) budget(spec agents.Spec) time.Duration {
	if spec.Timeout > 0 {
		return time.Duration(spec.Timeout)
	}
	return s.opts.TurnTimeout
}

// admit counts a turn of owner in, or says why not.
func (s *Server) admit(owner string) (func(), *RequestError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.MaxTurns > 0 && s.running >= s.opts.MaxTurns {
		return nil, &RequestError{Status: 503, Type: typeServer, Code: "server_busy",
			Msg: fmt.Sprintf("the server runs %d turns already, its limit; retry shortly", s.running)}
	}
	if s.opts.TurnsPerToken > 0 && s.byOwner[owner] >= s.opts.TurnsPerToken {
		return nil, &RequestError{Status: 429, Type: typeRateLimit, Code: "too_many_concurrent_turns",
			Msg: fmt.Sprintf("this client runs %d turns at once already, its limit; wait for one to finish", s.byOwner[owner])}
	}
	s.running++
	s.byOwner[owner]++
	return func() {
		s.mu.Lock()
		s.running--
		if s.byOwner[owner]--; s.byOwner[owner] <= 0 {
			delete(s.byOwner, owner)
		}
		s.mu.Unlock()
	}, nil
}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	body, rerr := s.readBody(w, r)
	if rerr != nil {
		s.refuse(w, r, rerr)
		return
	}
	req, rerr := DecodeChatRequest(body, true)
	if rerr != nil {
		s.refuse(w, r, rerr)
		return
	}
	spec, ok := s.opts.Agents.Get(req.Model)
	if !ok {
		s.refuse(w, r, s.unknownAgent(req.Model, "model"))
		return
	}
	s.serveTurn(w, r, spec, req, false)
}

func (s *Server) agentChat(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	spec, ok := s.opts.Agents.Get(name)
	if !ok {
		s.refuse(w, r, s.unknownAgent(name, ""))
		return
	}
	body, rerr := s.readBody(w, r)
	if rerr != nil {
		s.refuse(w, r, rerr)
		return
	}
	req, rerr := DecodeChatRequest(body, false)
	if rerr != nil {
		s.refuse(w, r, rerr)
		return
	}
	if req.Model != "" && !strings.EqualFold(req.Model, spec.Name) {
		s.refuse(w, r, badRequest("model", "model %q differs from the agent %q the path names; leave model out", clip(req.Model, 64), spec.Name))
		return
	}
	s.serveTurn(w, r, spec, req, true)
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, e *RequestError) {
	s.log.Info("request refused", "path", r.URL.Path, "status", e.Status, "code", e.Code, "err", e.Msg)
	writeError(w, e)
}

// serveTurn runs one turn of spec for req and writes the answer: as a
// chat completion (or its stream), or in the /v1/agents shape.
func (s *Server) serveTurn(w http.ResponseWriter, r *http.Request, spec agents.Spec, req *ChatRequest, agentShape bool) {
	owner := s.opts.Identity(r)
	if req.ConversationID != "" && s.opts.Conversations == nil {
		s.refuse(w, r, badRequest("conversation_id", "this server keeps no conversations: send the whole conversation in messages, without conversation_id"))
		return
	}
	done, rerr := s.admit(owner)
	if rerr != nil {
		s.refuse(w, r, rerr)
		return
	}
	defer done()

	budget := s.budget(spec)
	ctx, cancel := context.WithTimeoutCause(r.Context(), budget, &budgetError{budget: budget})
	defer cancel()

	history := req.Messages[:len(req.Messages)-1]
	prompt := req.Messages[len(req.Messages)-1].Content
	if req.ConversationID != "" {
		kept, err := s.opts.Conversations.Load(ctx, owner, spec.Name, req.ConversationID)
		if err != nil {
			s.refuse(w, r, &RequestError{Status: 500, Type: typeServer, Code: "conversation_unavailable", Msg: "the conversation could not be read: " + err.Error()})
			return
		}
		history = append(kept, history...)
	}

	be, err := s.opts.Backend(spec)
	if err != nil {
		s.refuse(w, r, &RequestError{Status: 500, Type: typeServer, Code: "agent_unavailable", NoRetry: true,
			Msg: fmt.Sprintf("agent %s cannot run: %v", spec.Name, err)})
		return
	}
	t := &turnWriter{s: s, w: w, rc: http.NewResponseController(w), spec: spec, req: req, agentShape: agentShape,
		id: "chatcmpl-" + strings.ToLower(rand.Text()[:20]), created: time.Now().Unix(), cancel: cancel}
	opts := &agent.Options{
		Model:            spec.Model,
		System:           spec.System,
		MaxSteps:         spec.Steps(),
		MaxParallel:      spec.Parallel,
		ExtractTextCalls: be.ExtractTextCalls,
		History:          history,
		Session:          calls.NewSession(""),
		Logger:           s.log,
	}
	if len(spec.Approve) > 0 {
		opts.Approve = func(_ context.Context, c agent.ToolCall) (bool, error) {
			// Nobody is there to approve over HTTP: the agent's rule for
			// unattended calls decides.
			return !spec.NeedsApproval(c.Name) || spec.AllowUnattended(), nil
		}
	}
	if req.Stream && !agentShape {
		opts.OnEvent = t.event
		t.startStream()
		if s.opts.KeepAlive > 0 {
			stop := t.keepAlive(s.opts.KeepAlive)
			defer stop()
		}
	}
	ag := agent.New(be.Model, be.Tools, opts)
	turn, err := ag.Ask(ctx, prompt)
	if err == nil && req.ConversationID != "" {
		kept := trimHistory(ag.History(), s.opts.MaxConversationBytes)
		if serr := s.opts.Conversations.Save(context.WithoutCancel(ctx), owner, spec.Name, req.ConversationID, kept); serr != nil {
			s.log.Error("conversation not saved", "agent", spec.Name, "err", serr)
		}
	}
	s.log.Info("turn", "agent", spec.Name, "steps", turn.Steps, "tool_calls", len(turn.Calls),
		"prompt_tokens", turn.Usage.PromptTokens, "completion_tokens", turn.Usage.CompletionTokens,
		"dur", turn.Duration, "err", err)
	if r.Context().Err() != nil {
		return // the client left; the turn and its tools were cancelled
	}
	var te *RequestError
	if err != nil {
		te = turnError(spec, err, ctx)
	}
	t.finish(turn, te)
}

// budgetError is the cause of a turn's context when its budget ran out.
type budgetError struct{ budget time.Duration }

func (e *budgetError) Error() string {
	return fmt.Sprintf("the turn ran past its time budget of %s", e.budget)
}

// turnError turns a failed turn into the error object the client gets.
func turnError(spec agents.Spec, err error, ctx context.Context) *RequestError {
	var be *budgetError
	if errors.As(context.Cause(ctx), &be) {
		return &RequestError{Status: 504, Type: typeTimeout, Code: "turn_budget_exceeded", NoRetry: true,
			Msg: fmt.Sprintf("agent %s: %s; ask for less, or raise the agent's timeout", spec.Name, be.Error())}
	}
	if errors.Is(err, agent.ErrMaxSteps) {
		return &RequestError{Status: 500, Type: typeServer, Code: "max_steps_reached", NoRetry: true,
			Msg: fmt.Sprintf("agent %s: %v", spec.Name, err)}
	}
	var oe *Error
	if errors.As(err, &oe) {
		return &RequestError{Status: 502, Type: typeServer, Code: "model_error", NoRetry: true,
			Msg: fmt.Sprintf("agent %s: its model failed: %v", spec.Name, err)}
	}
	return &RequestError{Status: 500, Type: typeServer, Code: "turn_failed", NoRetry: true,
		Msg: fmt.Sprintf("agent %s: %v", spec.Name, err)}
}

// trimHistory drops the oldest messages until the rest fit in limit bytes
// of JSON, keeping the first message a user's one (a tool message cut from
// its call would be refused on the next turn).
func trimHistory(msgs []agent.Message, limit int) []agent.Message {
	sizes := make([]int, len(msgs))
	total := 0
	for i := range msgs {
		b, _ := json.Marshal(EncodeMessages(msgs[i : i+1]))
		sizes[i] = len(b)
		total += sizes[i]
	}
	for len(msgs) > 0 && (total > limit || len(msgs) > MaxMessages-1 || msgs[0].Role != agent.RoleUser) {
		total -= sizes[0]
		msgs, sizes = msgs[1:], sizes[1:]
	}
	return msgs
}

// WriteRefusal writes a refusal of a layer in front of the Server (a
// Host, Origin, token or size check) as an OpenAI error object, so that
// clients show its message.
func WriteRefusal(w http.ResponseWriter, _ *http.Request, status int, msg string) {
	e := &RequestError{Status: status, Type: typeInvalid, Msg: msg}
	switch status {
	case 401:
		e.Type, e.Code = typeAuth, "invalid_api_key"
	case 403:
		e.Type, e.Code = "permission_error", "forbidden"
	case 408:
		e.Code = "request_timeout"
	case 413:
		e.Code = "request_too_large"
	case 429:
		e.Type, e.Code = typeRateLimit, "rate_limited"
	}
	if status >= 500 {
		e.Type = typeServer
	}
	writeError(w, e)
}
