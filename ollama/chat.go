package ollama

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ollama/ollama/api"

	"github.com/membrane-mcp/membrane/calls"
)

// Progress pacing: at most one token report per progressEvery, and a
// heartbeat every progressHeartbeat while the model loads or the call
// waits, so that clients with a fixed timeout (often 60 s) keep waiting.
const (
	progressEvery = 200 * time.Millisecond
	progressTail  = 160 // characters of partial text in a progress message
)

// progressHeartbeat is a variable so that tests can shorten it.
var progressHeartbeat = 5 * time.Second

// chatCall is the call for a chat tool: a model's own (spec nil) or a
// logical tool bound to it.
func (m *Models) chatCall(name string, mod *model, spec *ToolSpec) calls.Call {
	flags := schemaFlags{
		vision:  mod.has(capVision),
		think:   mod.has(capThinking),
		levels:  mod.has(capThinking) && mod.ThinkLevels,
		system:  spec == nil || spec.System == "",
		numCtx:  mod.ContextLength,
		backend: mod.backend != "",
	}
	var desc strings.Builder
	if spec != nil && spec.Description != "" {
		fmt.Fprintf(&desc, "%s (runs the %s %s: %s.)", spec.Description, mod.where(), mod.displayName(), mod.summary())
	} else {
		fmt.Fprintf(&desc, "Chat with the %s %s (%s).", mod.where(), mod.displayName(), mod.summary())
	}
	desc.WriteString(" Give a prompt, or messages for a conversation")
	if flags.system {
		desc.WriteString(", an optional system prompt")
	}
	desc.WriteString(", options such as temperature, and format for JSON output (\"json\" or a JSON schema). Returns the model's answer.")
	if flags.vision {
		desc.WriteString(" It sees images: pass them in images, as base64 or as paths in the session workspace.")
	}
	if flags.think {
		desc.WriteString(" It reasons before answering (think false turns that off")
		if flags.levels {
			desc.WriteString(", \"low\"/\"medium\"/\"high\" sets the effort")
		}
		desc.WriteString("); the reasoning comes back apart from the answer.")
	}
	key := mod.key()
	return calls.Call{
		Name:         name,
		Title:        "Chat: " + mod.displayName(),
		Description:  strings.Clone(desc.String()), // exactly its size: the builder grew by doubling, and there is one per model
		InputSchema:  chatSchema(flags),
		OutputSchema: chatOutputSchema,
		Kind:         calls.KindModel,
		Group:        Group,
		Timeout:      m.timeoutFor(spec),
		Concurrency:  -1, // the model's gate queues instead
		ReadOnly:     true,
		Handler: calls.HandlerFunc(func(ctx context.Context, req *calls.Request) (*calls.Result, error) {
			a, err := decodeChat(req.Arguments, false, spec != nil && spec.System != "")
			if err != nil {
				return calls.Errorf("%v", err), nil
			}
			mod, ok := m.lookup(key)
			if !ok {
				return calls.Errorf("model %s is gone: no host has it any more; call ollama_models for the current list", name), nil
			}
			return m.runChat(ctx, req, mod, spec, a)
		}),
	}
}

// runChat checks a decoded chat request against mod, then streams it from
// the least busy host that has the model.
func (m *Models) runChat(ctx context.Context, req *calls.Request, mod *model, spec *ToolSpec, a *chatArgs) (*calls.Result, error) {
	if !mod.canChat() {
		return calls.Errorf("%s is not a chat model (capabilities: %s); use ollama_embed for embedding models", mod.Name, strings.Join(mod.Capabilities, ", ")), nil
	}
	creq, err := m.buildChat(ctx, req, mod, spec, a)
	if err != nil {
		return calls.Errorf("%v", err), nil
	}
	req = monotonic(req)
	queued := time.Now()
	release, busy, err := m.acquire(ctx, req, mod)
	if busy != nil || err != nil {
		return busy, err
	}
	defer release()
	// The queue wait is the model's gate and then the call's turn on the
	// host (hostsched.go, where calls wait when the host's ordering is on):
	// everything from the call being ready until its request went out.
	gateWait := time.Since(queued)

	var (
		tried []*host
		last  *calls.Result
	)
	for {
		h := mod.pick(tried, m.cfg.ModelConcurrency)
		if h == nil {
			if last != nil {
				return last, nil
			}
			return calls.Errorf("model %s is on no host that is up right now (%s); try again shortly", mod.Name, mod.downReasons()), nil
		}
		turnStart := time.Now()
		h, turn, err := m.hostTurn(ctx, req, h, mod, tried)
		if err != nil {
			return nil, err
		}
		res, retry, err := m.chatOn(ctx, req, h, mod, creq)
		turn()
		if !retry {
			if res != nil && res.Info != nil && res.Info.Model != nil {
				mi := res.Info.Model
				mi.QueueWait = gateWait
				if !mi.Began.IsZero() {
					mi.QueueWait += mi.Began.Sub(turnStart)
				}
			}
			return res, err
		}
		tried, last = append(tried, h), res
	}
}

// buildChat turns checked arguments into an Ollama chat request.
func (m *Models) buildChat(ctx context.Context, req *calls.Request, mod *model, spec *ToolSpec, a *chatArgs) (*api.ChatRequest, error) {
	vision := mod.has(capVision)
	if !vision && len(a.Images) > 0 {
		return nil, fmt.Errorf("%s does not take images (it has no vision capability); drop \"images\" or choose a vision model", mod.Name)
	}
	think, err := checkThink(a.Think, mod)
	if err != nil {
		return nil, err
	}
	var opts map[string]any
	if spec != nil && len(spec.Options) > 0 {
		o, err := checkOptions(spec.Options, mod)
		if err != nil {
			return nil, fmt.Errorf("the configured options of this tool are wrong: %v", err)
		}
		opts = o
	}
	caller, err := checkOptions(a.Options, mod)
	if err != nil {
		return nil, fmt.Errorf("invalid arguments: %v", err)
	}
	if mod.backend != "" {
		if err := refuseBackendTruncate(a.Truncate); err != nil {
			return nil, err
		}
		if err := checkBackendOptions(caller); err != nil {
			return nil, fmt.Errorf("invalid arguments: %v", err)
		}
		if err := checkBackendOptions(opts); err != nil {
			return nil, fmt.Errorf("the configured options of this tool are wrong: %v", err)
		}
	}
	if len(caller) > 0 && opts == nil {
		opts = map[string]any{}
	}
	for k, v := range caller {
		opts[k] = v
	}

	ws, release, err := imageWorkspace(req, a.Workspace)
	if err != nil {
		return nil, err
	}
	defer release()
	var size int64
	images := 0
	load := func(where string, list []string) ([]api.ImageData, error) {
		var out []api.ImageData
		for i, s := range list {
			if images++; images > maxImages {
				return nil, fmt.Errorf("too many images: at most %d per call", maxImages)
			}
			b, err := loadImage(ctx, ws, s)
			if err != nil {
				return nil, fmt.Errorf("%s[%d] %v", where, i, err)
			}
			size += int64(len(b))
			out = append(out, b)
		}
		return out, nil
	}

	system := a.System
	if spec != nil && spec.System != "" {
		system = spec.System
	}
	var msgs []api.Message
	if system != "" {
		msgs = append(msgs, api.Message{Role: "system", Content: system})
		size += int64(len(system))
	}
	for i, msg := range a.Messages {
		if len(msg.Images) > 0 && !vision {
			return nil, fmt.Errorf("%s does not take images (it has no vision capability)", mod.Name)
		}
		imgs, err := load(fmt.Sprintf("messages[%d].images", i), msg.Images)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, api.Message{Role: msg.Role, Content: msg.Content, Images: imgs})
		size += int64(len(msg.Content))
	}
	if a.Prompt != "" {
		msgs = append(msgs, api.Message{Role: "user", Content: a.Prompt})
		size += int64(len(a.Prompt))
	}
	if len(a.Images) > 0 {
		imgs, err := load("images", a.Images)
		if err != nil {
			return nil, err
		}
		last := -1
		for i := range msgs {
			if msgs[i].Role == "user" {
				last = i
			}
		}
		if last < 0 {
			return nil, errors.New("images need a user message to go with: give a prompt")
		}
		msgs[last].Images = append(msgs[last].Images, imgs...)
	}
	if m.cfg.MaxPromptBytes > 0 && size > m.cfg.MaxPromptBytes {
		return nil, fmt.Errorf("the input is %d bytes, more than the limit of %d; shorten it or send fewer images", size, m.cfg.MaxPromptBytes)
	}
	// Ask Ollama to fail rather than silently drop the start of the input
	// (servers before the truncate field ignore it and truncate anyway;
	// chatResult warns when it looks like they did).
	truncate := a.Truncate != nil && *a.Truncate
	creq := &api.ChatRequest{Model: mod.Name, Messages: msgs, Options: opts, Truncate: &truncate}
	if len(a.Format) > 0 {
		creq.Format = a.Format
	}
	creq.Think = think
	return creq, nil
}

// info is what observers learn about the call: the model, the host, the
// tokens and the timings. Called with st.mu held.
func (st *chatStream) info(mod *model, h *host) *calls.Info {
	mi := &calls.ModelInfo{Model: mod.Name, Host: h.name, FirstToken: st.firstToken, TokensOut: st.tokens, Began: st.began, Took: st.took}
	if st.done {
		mi.TokensIn, mi.TokensOut, mi.Generation = st.final.PromptEvalCount, st.final.EvalCount, st.final.EvalDuration
	}
	return &calls.Info{Model: mi}
}

// chatStream is the state of one streamed answer.
type chatStream struct {
	mu        sync.Mutex
	content   strings.Builder
	thinking  strings.Builder
	tokens    int
	done      bool
	final     api.ChatResponse
	truncated bool
	lastSent  time.Time
	// firstToken is the time from the request to the first token.
	firstToken time.Duration
	// estimate is the input's estimated tokens; numCtx the num_ctx
	// membrane chose for the call (0: none sent).
	estimate, numCtx int
	// began is when the request was sent; took how long until it ended.
	began time.Time
	took  time.Duration
}

// heartbeat runs beat every d until stop is called, on a timer rather than
// a goroutine of its own: most calls end before the first beat, and a
// goroutine to start and then wake to stop cost each of them a scheduler
// hand-off. No beat runs after stop has returned.
func heartbeat(d time.Duration, beat func()) (stop func()) {
	var (
		mu      sync.Mutex
		stopped bool
		t       *time.Timer
	)
	mu.Lock()
	defer mu.Unlock()
	t = time.AfterFunc(d, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		beat()
		t.Reset(d)
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}

// chatOn streams creq from h. retry reports that h could not be reached
// before anything came back, so another host may be tried.
func (m *Models) chatOn(ctx context.Context, req *calls.Request, h *host, mod *model, creq *api.ChatRequest) (res *calls.Result, retry bool, err error) {
	h.inflight.Add(1)
	defer h.inflight.Add(-1)

	st := &chatStream{estimate: estimateTokens(creq)}
	if n := m.chooseNumCtx(creq, mod, h, st.estimate); n > 0 {
		creq = withNumCtx(creq, n)
		st.numCtx = n
	}
	total := 0.0
	if n, ok := number(creq.Options["num_predict"]); ok && n > 0 {
		total = n
	}
	start := time.Now()
	warm := h.isLoaded(mod.key(), start)

	// A heartbeat while the model loads and until the first token.
	stopHB := heartbeat(progressHeartbeat, func() {
		st.mu.Lock()
		n := st.tokens
		st.mu.Unlock()
		if n == 0 {
			msg := fmt.Sprintf("%s on %s: loading, %s so far", mod.Name, h.name, time.Since(start).Round(time.Second))
			if !warm {
				if d := m.loadTime(mod.key()); d > 0 {
					msg += fmt.Sprintf(" (it took %s to load last time)", d.Round(100*time.Millisecond))
				}
			}
			req.Progress.Report(ctx, 0, total, msg)
		}
	})
	defer stopHB()

	limit := m.cfg.MaxResponseBytes
	err = h.chat(ctx, creq, func(r api.ChatResponse) error {
		st.mu.Lock()
		st.content.WriteString(r.Message.Content)
		st.thinking.WriteString(r.Message.Thinking)
		if r.Message.Content != "" || r.Message.Thinking != "" {
			st.tokens++
			if st.tokens == 1 {
				st.firstToken = time.Since(start)
			}
		}
		if r.Done {
			st.done = true
			st.final = r
		}
		n := st.tokens
		over := limit > 0 && int64(st.content.Len()+st.thinking.Len()) > limit
		report := n > 0 && !r.Done && (n == 1 || time.Since(st.lastSent) >= progressEvery)
		var msg string
		if report {
			st.lastSent = time.Now()
			msg = fmt.Sprintf("%d tokens: %s", n, tail(st.content.String(), st.thinking.String()))
		}
		if over {
			st.truncated = true
		}
		st.mu.Unlock()
		if report {
			req.Progress.Report(ctx, float64(n), total, msg)
		}
		if over {
			return errResponseCap
		}
		return nil
	})
	stopHB()

	st.mu.Lock()
	defer st.mu.Unlock()
	st.began, st.took = start, time.Since(start)
	if ctxErr := ctx.Err(); ctxErr != nil {
		timed := req.Call != nil && req.Call.Timeout > 0
		if errors.Is(ctxErr, context.DeadlineExceeded) && (st.tokens > 0 || timed) {
			limit := "its time limit"
			if timed {
				limit = req.Call.Timeout.String()
			}
			var r *calls.Result
			if st.tokens > 0 {
				r = calls.Errorf("timeout: %s did not finish within %s; %d tokens came back before it stopped:\n%s", mod.Name, limit, st.tokens, st.content.String())
			} else {
				// Nothing came: the server was loading the model, or busy.
				r = calls.Errorf("timeout: %s on %s sent no token within %s (it was still loading the model, or busy with other requests); try again later, or pick a model that is loaded there (ollama_models shows them)", mod.Name, h.name, limit)
			}
			r.Structured = map[string]any{"model": mod.Name, "host": h.name, "error": "timeout after " + limit, "tokens": st.tokens}
			return r, false, nil
		}
		return nil, false, fmt.Errorf("ollama: chat %s: %w", mod.Name, ctxErr)
	}
	if err == nil && !st.done {
		err = errCutStream
	}
	if err != nil && !errors.Is(err, errResponseCap) {
		if unreachable(err) && st.tokens == 0 && !errors.Is(err, errCutStream) {
			h.markDown(err)
			m.kickRefresh()
			m.log.Warn("model host unreachable during a call", "host", h.name, "model", mod.Name, "err", err)
			return calls.Errorf("%s", explainOn(err, mod, h)), true, nil
		}
		if unreachable(err) {
			m.kickRefresh()
		}
		var se api.StatusError
		if errors.As(err, &se) && se.StatusCode == 404 {
			m.kickRefresh()
		}
		text := explainOn(err, mod, h)
		if st.tokens > 0 {
			text += fmt.Sprintf("\n%d tokens came back before it failed:\n%s", st.tokens, st.content.String())
		}
		r := calls.Errorf("%s", text)
		r.Structured = map[string]any{"model": mod.Name, "host": h.name, "error": text, "tokens": st.tokens}
		r.Info = st.info(mod, h)
		return r, false, nil
	}
	h.markLoaded(mod.key(), mod.Name, st.numCtx)
	if !warm {
		m.recordLoad(mod.key(), st.final.LoadDuration)
	}
	return m.chatResult(mod, h, creq, st), false, nil
}

// structuredAnswerBytes is the longest answer (and reasoning) the
// structured content repeats beside the text.
const structuredAnswerBytes = 16 << 10

// chatResult is the result of a finished (or capped) answer.
func (m *Models) chatResult(mod *model, h *host, creq *api.ChatRequest, st *chatStream) *calls.Result {
	answer := st.content.String()
	out := map[string]any{
		"model":       mod.Name,
		"host":        h.name,
		"done_reason": st.final.DoneReason,
	}
	// The text carries the answer; the structured content repeats it only
	// when it is small.
	if len(answer) <= structuredAnswerBytes {
		out["answer"] = calls.ValidUTF8(answer)
	} else {
		out["answer_in_text"] = true
	}
	if st.final.EvalCount > 0 {
		out["eval_count"] = st.final.EvalCount
		out["prompt_eval_count"] = st.final.PromptEvalCount
		out["total_duration_ms"] = st.final.TotalDuration.Milliseconds()
		out["load_duration_ms"] = st.final.LoadDuration.Milliseconds()
		out["prompt_eval_duration_ms"] = st.final.PromptEvalDuration.Milliseconds()
		out["eval_duration_ms"] = st.final.EvalDuration.Milliseconds()
	}
	var notes []string
	if st.truncated {
		out["truncated"] = true
		out["done_reason"] = "response_limit"
		notes = append(notes, fmt.Sprintf("[truncated: the answer passed the limit of %d bytes and generation was stopped]", m.cfg.MaxResponseBytes))
	}
	if st.numCtx > 0 {
		out["num_ctx"] = st.numCtx
	}
	cut, why := looksTruncated(creq, st.final.PromptEvalCount, mod.ContextLength)
	if !cut {
		window := st.numCtx
		if window == 0 {
			window = mod.ContextLength
		}
		why = estimateNote(st.estimate, st.final.PromptEvalCount, window)
		cut = why != ""
	}
	if cut && h.oa == nil && !(creq.Truncate != nil && *creq.Truncate) {
		notes = append(notes, "[warning: "+why+", so Ollama probably cut the beginning of the input; "+cutAdvice(creq, st.numCtx, st.final.PromptEvalCount, mod.ContextLength)+"]")
		out["context_full"] = true
	}
	if st.final.DoneReason == "length" {
		notes = append(notes, "[note: generation stopped at the token limit (num_predict or the context window)]")
	}
	res := &calls.Result{Structured: out, Info: st.info(mod, h)}
	res.Content = append(res.Content, calls.Content{Type: calls.ContentText, Text: calls.ValidUTF8(answer)})
	if th := st.thinking.String(); th != "" {
		if len(th) <= structuredAnswerBytes {
			out["thinking"] = calls.ValidUTF8(th)
		} else {
			out["thinking_in_text"] = true
		}
		res.Content = append(res.Content, calls.Content{Type: calls.ContentText, Text: "Reasoning:\n" + calls.ValidUTF8(th)})
	}
	for _, n := range notes {
		res.Content = append(res.Content, calls.Content{Type: calls.ContentText, Text: n})
	}
	if len(creq.Format) > 0 {
		var v any
		if json.Unmarshal([]byte(answer), &v) != nil && !st.truncated {
			res.Content = append(res.Content, calls.Content{Type: calls.ContentText, Text: "[warning: a JSON answer was asked for, but this is not valid JSON]"})
		}
	}
	return res
}

// looksTruncated guesses whether a server that does not know the truncate
// field cut the input. Such a server reports a cut prompt as exactly the
// window it kept, so the prompt filled the window: the num_ctx the caller
// set, the model's context length, or with neither, one of the window
// sizes Ollama versions use by default. Or whole messages were dropped:
// the prompt was counted as far fewer tokens than its text could make (no
// tokenizer packs more than 8 bytes of text into a token on average).
func looksTruncated(creq *api.ChatRequest, promptTokens, modelCtx int) (bool, string) {
	if promptTokens <= 0 {
		return false, ""
	}
	n, explicit := number(creq.Options["num_ctx"])
	switch {
	case explicit && promptTokens >= int(n):
		return true, fmt.Sprintf("the input filled the whole context window of %d tokens", int(n))
	case modelCtx > 0 && promptTokens >= modelCtx:
		return true, fmt.Sprintf("the input filled the model's whole context window of %d tokens", modelCtx)
	case !explicit && (promptTokens == 2048 || promptTokens == 4096 || promptTokens == 8192):
		return true, fmt.Sprintf("the input filled Ollama's default context window of %d tokens", promptTokens)
	}
	var text int
	for _, msg := range creq.Messages {
		text += len(msg.Content)
	}
	if text > 8*promptTokens+4096 {
		return true, fmt.Sprintf("the %d bytes of input were read as only %d tokens", text, promptTokens)
	}
	return false, ""
}

// tail is the end of the partial answer for a progress message.
func tail(content, thinking string) string {
	s := content
	if s == "" && thinking != "" {
		s = "(thinking) " + thinking
	}
	if len(s) > progressTail {
		i := len(s) - progressTail
		for i < len(s) && !utf8.RuneStart(s[i]) {
			i++
		}
		s = "…" + s[i:]
	}
	return calls.ValidUTF8(strings.ReplaceAll(s, "\n", " "))
}
