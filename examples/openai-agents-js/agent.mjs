#!/usr/bin/env node
// An OpenAI Agents SDK agent whose tools come from membrane: the sandboxed
// sh and python_run, and every model your Ollama holds.
//
//   node agent.mjs stdio "What is 2**100? Use python_run."
//   MEMBRANE_TOKEN=... node agent.mjs http "List /workspace with sh."
//
// stdio launches membrane itself (MEMBRANE_BIN, default `membrane` on PATH);
// http reaches a running one (MEMBRANE_URL, default
// http://127.0.0.1:8765/mcp) with MEMBRANE_TOKEN as its bearer token.
//
// The model is AGENT_MODEL (default qwen3:8b) behind an OpenAI-compatible
// Chat Completions API: OPENAI_BASE_URL if set, else Ollama's /v1 at
// OLLAMA_HOST. It prints the agent's final answer on stdout.
import {
  Agent,
  MCPServerStdio,
  MCPServerStreamableHttp,
  OpenAIChatCompletionsModel,
  run,
  setTracingDisabled,
} from '@openai/agents';
import OpenAI from 'openai';

const usage = 'usage: node agent.mjs stdio|http [question]';
const transport = process.argv[2] ?? 'stdio';
const question =
  process.argv[3] ?? 'Run `echo hello` with the sh tool and tell me what it printed.';

// OLLAMA_HOST as Ollama reads it: "host", "host:port" or a URL; no scheme
// and no port means port 11434.
function ollamaURL(host = process.env.OLLAMA_HOST || '127.0.0.1:11434') {
  const hasScheme = /^https?:\/\//.test(host);
  const url = new URL(hasScheme ? host : `http://${host}`);
  if (!hasScheme && url.port === '') url.port = '11434';
  return url.origin + url.pathname.replace(/\/$/, '');
}

function membraneServer() {
  if (transport === 'stdio') {
    // The MCP SDK gives the child only the variables in env: pass what
    // membrane reads.
    const env = { NO_COLOR: '1' };
    for (const [k, v] of Object.entries(process.env)) {
      if (['PATH', 'HOME', 'TMPDIR', 'OLLAMA_HOST'].includes(k) || k.startsWith('MEMBRANE_')) {
        env[k] = v;
      }
    }
    return new MCPServerStdio({
      name: 'membrane',
      command: process.env.MEMBRANE_BIN || 'membrane',
      args: [],
      env,
    });
  }
  if (transport === 'http') {
    const token = process.env.MEMBRANE_TOKEN;
    return new MCPServerStreamableHttp({
      name: 'membrane',
      url: process.env.MEMBRANE_URL || 'http://127.0.0.1:8765/mcp',
      requestInit: token ? { headers: { Authorization: `Bearer ${token}` } } : undefined,
    });
  }
  console.error(usage);
  process.exit(2);
}

const baseURL = process.env.OPENAI_BASE_URL || `${ollamaURL()}/v1`;
const client = new OpenAI({ baseURL, apiKey: process.env.OPENAI_API_KEY || 'ollama' });
// Traces go to OpenAI's platform; a local model has nowhere to send them.
if (!process.env.OPENAI_BASE_URL) setTracingDisabled(true);

const server = membraneServer();
await server.connect();
try {
  const agent = new Agent({
    name: 'membrane agent',
    instructions:
      'You have tools from membrane: sh and python_run run code in a sandbox with no network, ' +
      'and the other tools are local models. Use a tool when it helps, then answer briefly.',
    mcpServers: [server],
    model: new OpenAIChatCompletionsModel(client, process.env.AGENT_MODEL || 'qwen3:8b'),
  });
  const result = await run(agent, question, { maxTurns: 8 });
  // What the agent did, on stderr; the answer alone on stdout.
  for (const item of result.newItems) {
    if (item.type === 'tool_call_item') {
      console.error(`tool call: ${item.rawItem.name} ${item.rawItem.arguments ?? ''}`);
    } else if (item.type === 'tool_call_output_item') {
      const out = typeof item.output === 'string' ? item.output : JSON.stringify(item.output);
      console.error(`tool output: ${out.length > 500 ? out.slice(0, 500) + '…' : out}`);
    }
  }
  console.log(result.finalOutput);
} finally {
  await server.close();
}
