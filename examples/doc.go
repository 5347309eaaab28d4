// Package examples holds no library code: its tests check that every
// example beside it works as its README says. They validate compose.yaml
// with compose-spec's own loader and the image's Dockerfile against the
// repository, launch the Claude Desktop config entry as written, build and
// run the Go client, and compile the Python agent.
//
// The TestClients tests run real MCP clients from npm against a built
// membrane: the MCP Inspector CLI, the official conformance suite and the
// OpenAI Agents SDK for JavaScript (examples/openai-agents-js) driving the
// scripted model in a real test Ollama. They need the pinned clients that
// .ci/clients.sh installs (make test-clients), which sets MEMBRANE_CLIENTS=1;
// without it they skip.
package examples
