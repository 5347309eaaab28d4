#!/usr/bin/env node
// The official openai package against `orchestrator serve`: models.list,
// then chat.completions.create without and with stream. Prints one JSON
// object on stdout: what each call gave.
//
//   SERVE_URL=http://127.0.0.1:8766/v1 SERVE_TOKEN=... node serve-openai.mjs AGENT
import OpenAI from 'openai';

const agent = process.argv[2] ?? 'coder';
const client = new OpenAI({
  baseURL: process.env.SERVE_URL,
  apiKey: process.env.SERVE_TOKEN || 'none',
  maxRetries: 0,
});
const messages = [{ role: 'user', content: 'Run `echo hello` with sh and say what it printed.' }];

const models = await client.models.list();
const ids = [];
for await (const m of models) ids.push(m.id);

const plain = await client.chat.completions.create({ model: agent, messages });

const stream = await client.chat.completions.create({
  model: agent,
  messages,
  stream: true,
  stream_options: { include_usage: true },
});
let content = '';
let reasoning = '';
let usage = null;
let finish = null;
let chunks = 0;
for await (const chunk of stream) {
  chunks++;
  for (const c of chunk.choices) {
    content += c.delta?.content ?? '';
    reasoning += c.delta?.reasoning_content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
  if (chunk.usage) usage = chunk.usage;
}

let unknown = null;
try {
  await client.chat.completions.create({ model: 'no-such-agent', messages });
} catch (e) {
  unknown = { status: e.status, code: e.code, message: e.message };
}

console.log(
  JSON.stringify({
    models: ids,
    plain: { content: plain.choices[0].message.content, usage: plain.usage, finish: plain.choices[0].finish_reason },
    stream: { content, reasoning, usage, finish, chunks },
    unknown,
  }),
);
