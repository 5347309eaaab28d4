// Package ollamatest runs a real, pinned Ollama server for tests, and makes
// tiny models for it without downloading anything.
//
// The server is Ollama v0.6.5 built from the Go module proxy with
// `go install` into the user cache dir (about two minutes once; see
// [EnsureBinary]), or the binary named by $MEMBRANE_TEST_OLLAMA. [Start]
// runs it on a free loopback port with its own model store and stops it,
// runners included, when the test ends. Models are GGUF files written by
// the gguf subpackage and imported through /api/create in milliseconds:
//
//   - [ChatModel]: random weights, gibberish answers; [completion].
//   - [EmbedModel]: vectors of a chosen size; [embedding].
//   - [VisionModel]: reports [completion vision]; text only in practice.
//   - [ScriptedModel]: deterministic tool calls, then a deterministic
//     answer once tool results come back; [completion tools].
//
// A scripted model is the one to drive a tool-calling loop end to end:
//
//	func TestLoop(t *testing.T) {
//		srv := ollamatest.Start(t)
//		srv.Create(t, "scripted", ollamatest.ScriptedModel(ollamatest.Script{
//			Calls: []ollamatest.ToolCall{
//				{Name: "sh", Args: `{"cmd":"echo hello"}`},
//				{Name: "python_run", Args: `{"code":"print(2+2)"}`}, // a second, parallel call
//			},
//			Answer: " Both tools ran.",
//		}))
//		// Point the code under test at srv.URL (or OLLAMA_HOST=srv.Host).
//		// A chat with tools gets both calls in one assistant message; after
//		// the tool messages it gets " Both tools ran.". Script{} is the
//		// default script: sh {"cmd":"echo hello"}, then
//		// " The command printed hello.".
//	}
//
// Script.Then adds further calling turns, each made after the previous
// turn's tool results (a multi-step exchange); Script.Loop makes the model
// call again after every tool result instead of answering, for step-limit
// tests. Arguments must be JSON objects; a script with a nested object that
// itself has "name" and "arguments" keys would be parsed by Ollama as an
// extra call. [Server.Kill] and [Server.Restart]
// (same port, same models) serve fault tests.
//
// Tests that need the server fail when $MEMBRANE_REQUIRE_E2E is 1 and the
// binary cannot be found or built, and skip with the reason otherwise;
// -short skips rather than build. The functions without a testing.TB
// ([StartServer], [Server.CreateModel], [Server.KillServer], …) return
// errors, for programs such as a demo.
//
// What v0.6.5 does that newer releases may not (code under test must cope
// with both): capabilities are only in /api/show, not /api/tags; a streamed
// /api/chat with tools holds content back until the reply is done and sends
// each parsed tool call in its own chunk (over /v1, with indexes 0, 1, …,
// then finish_reason "tool_calls"); without tools, content streams token by
// token.
//
// Costs, measured on 2 busy cores (go test -bench . ./ollama/ollamatest):
// a server starts in under 0.1 s, a model is created in about 20 ms, a
// scripted reply takes about 15 ms once loaded and about 0.3 s cold.
package ollamatest
