// Runs the unmodified `ollama` and `openai` npm clients against an olm
// server. The Go test in this folder starts `olm serve` and runs this
// script with OLM_TEST_HOST (http://127.0.0.1:PORT) and OLM_TEST_MODEL set.
// Every check throws on failure; the exit code tells the Go test.
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import OpenAI from 'openai';

const host = process.env.OLM_TEST_HOST;
const model = process.env.OLM_TEST_MODEL;
assert.ok(host, 'OLM_TEST_HOST is required');
assert.ok(model, 'OLM_TEST_MODEL is required');

// With OLM_TEST_API_KEY the server requires it as a bearer token.
const apiKey = process.env.OLM_TEST_API_KEY;
const ollama = new Ollama({ host, headers: apiKey ? { Authorization: `Bearer ${apiKey}` } : {} });
const openai = new OpenAI({ baseURL: `${host}/v1`, apiKey: apiKey || 'olm-test', maxRetries: 0 });
// Greedy decoding with a bound keeps the random-weight test model's
// answers short and the run deterministic.
const options = { temperature: 0, seed: 42, num_predict: 16 };

// A schema the grammar must enforce even on random weights.
const schema = {
  type: 'object',
  properties: {
    age: { type: 'integer' },
    available: { type: 'boolean' },
    color: { type: 'string', enum: ['red', 'green', 'blue'] },
  },
  required: ['age', 'available', 'color'],
  additionalProperties: false,
};

function validate(text, where) {
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: output is not JSON: ${JSON.stringify(text)}: ${e.message}`);
  }
  assert.equal(typeof v, 'object', `${where}: not an object: ${text}`);
  assert.ok(v !== null && !Array.isArray(v), `${where}: not an object: ${text}`);
  assert.deepEqual(Object.keys(v).sort(), ['age', 'available', 'color'], `${where}: keys of ${text}`);
  assert.ok(Number.isInteger(v.age), `${where}: age is not an integer: ${text}`);
  assert.equal(typeof v.available, 'boolean', `${where}: available is not a boolean: ${text}`);
  assert.ok(['red', 'green', 'blue'].includes(v.color), `${where}: color not in enum: ${text}`);
  return v;
}

function jsonMode(text, finished, where) {
  if (finished) {
    JSON.parse(text);
    return;
  }
  assert.match(text.trimStart(), /^[\[{"0-9tfn-]/, `${where}: output does not start as JSON: ${text.slice(0, 80)}`);
}

const checks = [];
function check(name, fn) {
  checks.push([name, fn]);
}

check('ollama version', async () => {
  const v = await ollama.version();
  assert.equal(typeof v.version, 'string');
  assert.ok(v.version.length > 0);
});

check('ollama list', async () => {
  const l = await ollama.list();
  const m = l.models.find((x) => x.name === `${model}:latest` || x.name === model);
  assert.ok(m, `model ${model} not in ${JSON.stringify(l.models.map((x) => x.name))}`);
  assert.equal(m.details.format, 'gguf');
  assert.match(m.digest, /^[0-9a-f]{64}$/);
  assert.ok(m.size > 0);
});

check('ollama show', async () => {
  const s = await ollama.show({ model });
  assert.equal(s.details.family, 'llama');
  assert.ok(s.model_info['general.architecture'] === 'llama', JSON.stringify(s.model_info).slice(0, 200));
  assert.ok(s.capabilities.includes('completion'));
  assert.match(s.modelfile, /FROM /);
});

check('ollama generate (no stream)', async () => {
  const r = await ollama.generate({ model, prompt: 'Why is the sky blue?', stream: false, options });
  assert.equal(r.done, true);
  assert.equal(typeof r.response, 'string');
  assert.ok(r.response.length > 0, 'empty response');
  assert.ok(r.eval_count > 0 && r.eval_count <= 16, `eval_count ${r.eval_count}`);
  assert.ok(r.eval_duration > 0 && r.total_duration >= r.eval_duration);
  assert.ok(Array.isArray(r.context) && r.context.length > 0);
  assert.ok(['stop', 'length'].includes(r.done_reason));
});

check('ollama generate (stream) matches no-stream', async () => {
  const whole = await ollama.generate({ model, prompt: 'Tell me a story.', stream: false, options });
  const it = await ollama.generate({ model, prompt: 'Tell me a story.', stream: true, options });
  let text = '';
  let chunks = 0;
  let final;
  for await (const part of it) {
    chunks++;
    text += part.response;
    if (part.done) final = part;
  }
  assert.ok(chunks > 2, `only ${chunks} chunks`);
  assert.ok(final && final.eval_count > 0);
  assert.equal(text, whole.response, 'greedy streamed text differs from the non-streamed text');
});

check('ollama chat (no stream)', async () => {
  const r = await ollama.chat({
    model,
    stream: false,
    options,
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Hello!' },
    ],
  });
  assert.equal(r.done, true);
  assert.equal(r.message.role, 'assistant');
  assert.ok(r.message.content.length > 0);
  assert.ok(r.eval_count > 0);
});

check('ollama chat (stream)', async () => {
  const it = await ollama.chat({ model, stream: true, options, messages: [{ role: 'user', content: 'Count to three.' }] });
  let text = '';
  let done = false;
  for await (const part of it) {
    assert.equal(part.message.role, 'assistant');
    text += part.message.content;
    if (part.done) done = true;
  }
  assert.ok(done);
  assert.ok(text.length > 0);
});

check('ollama embed', async () => {
  const one = await ollama.embed({ model, input: 'Why is the sky blue?' });
  assert.equal(one.embeddings.length, 1);
  const dim = one.embeddings[0].length;
  assert.ok(dim > 0);
  const norm = Math.sqrt(one.embeddings[0].reduce((s, x) => s + x * x, 0));
  assert.ok(Math.abs(norm - 1) < 1e-3, `embedding norm ${norm}`);
  const two = await ollama.embed({ model, input: ['Why is the sky blue?', 'Why is the grass green?'] });
  assert.equal(two.embeddings.length, 2);
  assert.equal(two.embeddings[1].length, dim);
  for (let i = 0; i < dim; i++) assert.ok(Math.abs(two.embeddings[0][i] - one.embeddings[0][i]) < 1e-4);
  const legacy = await ollama.embeddings({ model, prompt: 'Why is the sky blue?' });
  assert.equal(legacy.embedding.length, dim);
});

check('ollama ps', async () => {
  const p = await ollama.ps();
  const m = p.models.find((x) => x.name.startsWith(model));
  assert.ok(m, `model not loaded: ${JSON.stringify(p)}`);
  assert.ok(new Date(m.expires_at).getTime() > Date.now());
});

check('ollama JSON schema (generate and chat)', async () => {
  const so = { temperature: 0, seed: 42, num_predict: 512 };
  const g = await ollama.generate({ model, prompt: 'Describe a person as JSON.', format: schema, stream: false, options: so });
  validate(g.response, 'generate');
  const c = await ollama.chat({ model, messages: [{ role: 'user', content: 'JSON please' }], format: schema, stream: false, options: so });
  validate(c.message.content, 'chat');
  // Any-JSON mode bounds nothing (a random model may write one endless
  // string), so a finished answer must parse and a cut one must have
  // started as JSON.
  const j = await ollama.generate({ model, prompt: 'JSON:', format: 'json', stream: false, options: so });
  jsonMode(j.response, j.done_reason === 'stop', 'json mode');
});

check('ollama errors', async () => {
  await assert.rejects(ollama.generate({ model: 'no-such-model', prompt: 'x', stream: false }), (e) => {
    assert.equal(e.status_code, 404);
    assert.match(e.error, /not found/);
    return true;
  });
});

check('openai chat.completions (no stream)', async () => {
  const r = await openai.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Say hello.' }],
    max_tokens: 16,
    temperature: 0,
    seed: 42,
  });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.ok(r.choices[0].message.content.length > 0);
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.completion_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

check('openai chat.completions (stream)', async () => {
  const stream = await openai.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Say hello.' }],
    max_tokens: 16,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.delta.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(text.length > 0);
  assert.ok(finish);
  assert.ok(usage && usage.completion_tokens > 0);
});

check('openai response_format json_schema and json_object', async () => {
  const r = await openai.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Describe a person.' }],
    temperature: 0,
    seed: 42,
    max_tokens: 512,
    response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } },
  });
  validate(r.choices[0].message.content, 'openai json_schema');
  const o = await openai.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'JSON.' }],
    temperature: 0,
    max_tokens: 512,
    response_format: { type: 'json_object' },
  });
  jsonMode(o.choices[0].message.content, o.choices[0].finish_reason === 'stop', 'openai json_object');
});

check('openai completions', async () => {
  const r = await openai.completions.create({ model, prompt: 'Once upon a time', max_tokens: 8, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(typeof r.choices[0].text, 'string');
  assert.ok(r.usage.completion_tokens > 0);
});

check('openai embeddings (base64 default and float)', async () => {
  const b = await openai.embeddings.create({ model, input: ['hello', 'world'] });
  assert.equal(b.data.length, 2);
  const f = await openai.embeddings.create({ model, input: ['hello', 'world'], encoding_format: 'float' });
  assert.equal(f.data[0].embedding.length, b.data[0].embedding.length);
  for (let i = 0; i < f.data[0].embedding.length; i++) {
    assert.ok(Math.abs(f.data[0].embedding[i] - b.data[0].embedding[i]) < 1e-6);
  }
});

check('openai models', async () => {
  const list = await openai.models.list();
  const ids = [];
  for await (const m of list) ids.push(m.id);
  assert.ok(ids.some((id) => id.startsWith(model)), JSON.stringify(ids));
  const m = await openai.models.retrieve(`${model}:latest`);
  assert.equal(m.object, 'model');
  await assert.rejects(openai.models.retrieve('no-such-model'), (e) => e.status === 404);
});

if (apiKey) {
  check('API key required', async () => {
    const anon = new Ollama({ host });
    await assert.rejects(anon.list(), (e) => e.status_code === 401);
    const wrong = new OpenAI({ baseURL: `${host}/v1`, apiKey: 'wrong', maxRetries: 0 });
    await assert.rejects(wrong.models.list(), (e) => e.status === 401);
  });
}

let failed = 0;
for (const [name, fn] of checks) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.stack || e}`);
  }
}
console.log(`${checks.length - failed}/${checks.length} checks passed`);
process.exit(failed ? 1 : 0);
