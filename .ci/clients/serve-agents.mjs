#!/usr/bin/env node
// The OpenAI Agents SDK for JavaScript with `orchestrator serve` as its
// model endpoint: OpenAIChatCompletionsModel with baseURL at the server.
// The served agent runs its own tools; this agent has none. Prints the
// final output on stdout.
//
//   SERVE_URL=http://127.0.0.1:8766/v1 SERVE_TOKEN=... node serve-agents.mjs AGENT [stream]
import { Agent, OpenAIChatCompletionsModel, run, setTracingDisabled } from '@openai/agents';
import OpenAI from 'openai';

setTracingDisabled(true);
const name = process.argv[2] ?? 'coder';
const stream = process.argv[3] === 'stream';
const client = new OpenAI({ baseURL: process.env.SERVE_URL, apiKey: process.env.SERVE_TOKEN || 'none', maxRetries: 0 });
const agent = new Agent({
  name: 'front desk',
  instructions: 'Answer briefly.',
  model: new OpenAIChatCompletionsModel(client, name),
});
const question = 'Run `echo hello` with sh and say what it printed.';
if (stream) {
  const result = await run(agent, question, { stream: true });
  let text = '';
  for await (const ev of result.toTextStream()) text += ev;
  await result.completed;
  console.log(JSON.stringify({ finalOutput: result.finalOutput, streamed: text }));
} else {
  const result = await run(agent, question);
  console.log(JSON.stringify({ finalOutput: result.finalOutput }));
}
