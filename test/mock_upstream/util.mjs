// Helpers shared by the mock upstream's wire formats (OpenAI, OpenAI Responses, Anthropic).
import crypto from 'node:crypto';

export function openaiError(message, type = 'invalid_request_error', code = null, param = null) {
  return { error: { message, type, param, code } };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const CREATED = 1700000000; // fixed so that responses are deterministic

// Rough, deterministic token estimate (~4 chars per token), enough for usage accounting tests.
export function countTokens(value) {
  if (value == null) return 0;
  if (typeof value === 'string') return Math.max(1, Math.ceil(value.length / 4));
  if (typeof value === 'number') return 1;
  if (Array.isArray(value)) return value.reduce((n, v) => n + countTokens(v), 0);
  if (typeof value === 'object') return countTokens(value.content ?? value.text ?? '') + 3;
  return 0;
}

// Content pieces streamed as deltas; the non-stream content is their concatenation, so
// stream and non-stream answers to the same request carry the same text.
export function contentPieces(mock) {
  const n = Math.max(0, mock.chunks ?? 3);
  if (typeof mock.content !== 'string') return Array.from({ length: n }, (_, i) => (i ? ' ' : '') + `word${i + 1}`);
  const cps = [...mock.content]; // split on code points, never inside a character
  const size = Math.ceil(cps.length / Math.max(1, n));
  const out = [];
  for (let i = 0; i < cps.length; i += size) out.push(cps.slice(i, i + size).join(''));
  return out;
}

// Token numbers of one answer: computed defaults, overridden field by field by the `usage`
// mock option. Names of every format are accepted and mapped verbatim (no arithmetic):
// input_tokens|prompt_tokens, output_tokens|completion_tokens,
// cached_tokens|cache_read_input_tokens, cache_creation_input_tokens, reasoning_tokens,
// total_tokens (default input + output).
export function usageNumbers(mock, input, output) {
  const u = mock.usage && typeof mock.usage === 'object' ? mock.usage : {};
  const pick = (...keys) => {
    for (const k of keys) if (typeof u[k] === 'number') return u[k];
    return undefined;
  };
  const n = {
    input: pick('input_tokens', 'prompt_tokens') ?? input,
    output: pick('output_tokens', 'completion_tokens') ?? output,
    cached: pick('cached_tokens', 'cache_read_input_tokens') ?? 0,
    cacheCreation: pick('cache_creation_input_tokens') ?? 0,
    reasoning: pick('reasoning_tokens') ?? 0,
  };
  n.total = pick('total_tokens') ?? n.input + n.output;
  return n;
}

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
export const base58 = (n) => Array.from(crypto.randomBytes(n), (b) => B58[b % 58]).join('');
export const hexId = (prefix, bytes = 24) => prefix + crypto.randomBytes(bytes).toString('hex');

// One named server-sent event, as OpenAI (Responses) and Anthropic write them.
export const sseEvent = (name, obj) => `event: ${name}\ndata: ${JSON.stringify(obj)}\n\n`;
// One unnamed server-sent event (OpenAI chat/completions).
export const sseData = (obj) => `data: ${typeof obj === 'string' ? obj : JSON.stringify(obj)}\n\n`;

// obj = build(text) with text padded so that the JSON body is about large_bytes long.
export function buildPadded(build, text, mock) {
  if (!mock.large_bytes) return build(text);
  const overhead = Buffer.byteLength(JSON.stringify(build('')));
  return build('x'.repeat(Math.max(0, mock.large_bytes - overhead)));
}
