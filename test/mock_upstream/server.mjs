// Mock LLM provider speaking the OpenAI wire format, for gateway end-to-end tests.
//
// Behaviour per request is chosen by a top-level body field "mock" (the gateway forwards
// unknown fields unchanged) or, for bodiless requests, an `x-mock` header holding JSON.
// Options: status, error_type, error_code, error_message, first_byte_delay_ms, chunks,
// chunk_interval_ms, reset_after_chunks, reset_with ('rst' | 'fin'), large_bytes, raw_chunks,
// raw_chunks_b64, no_content_length, content, headers (extra response headers).
//
// Library: startMockUpstream({port}) -> { url, port, requests, events, reset(), waitFor(), close() }
// CLI:     node server.mjs --port 0    (prints {"listening":PORT} and serves until killed)
import http from 'node:http';
import crypto from 'node:crypto';
import { pathToFileURL } from 'node:url';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CREATED = 1700000000; // fixed so that responses are deterministic
export const MODELS = ['gpt-4o-mini', 'gpt-4o', 'gpt-3.5-turbo-instruct', 'text-embedding-3-small'];

const DEFAULT_ERROR = {
  400: ['invalid_request_error', null], 401: ['invalid_request_error', 'invalid_api_key'],
  403: ['permission_error', null], 404: ['invalid_request_error', 'not_found'],
  408: ['timeout', null], 409: ['conflict', null], 422: ['invalid_request_error', null],
  429: ['requests', 'rate_limit_exceeded'], 500: ['server_error', null],
  502: ['server_error', 'bad_gateway'], 503: ['server_error', 'service_unavailable'],
};

export function openaiError(message, type = 'invalid_request_error', code = null, param = null) {
  return { error: { message, type, param, code } };
}

// Rough, deterministic token estimate (~4 chars per token), enough for usage accounting tests.
function countTokens(value) {
  if (value == null) return 0;
  if (typeof value === 'string') return Math.max(1, Math.ceil(value.length / 4));
  if (typeof value === 'number') return 1;
  if (Array.isArray(value)) return value.reduce((n, v) => n + countTokens(v), 0);
  if (typeof value === 'object') return countTokens(value.content ?? value.text ?? '') + 3;
  return 0;
}

// Content pieces streamed as deltas; the non-stream content is their concatenation, so
// stream and non-stream answers to the same request carry the same text.
function contentPieces(mock) {
  const n = Math.max(0, mock.chunks ?? 3);
  if (typeof mock.content !== 'string') return Array.from({ length: n }, (_, i) => (i ? ' ' : '') + `word${i + 1}`);
  const cps = [...mock.content]; // split on code points, never inside a character
  const size = Math.ceil(cps.length / Math.max(1, n));
  const out = [];
  for (let i = 0; i < cps.length; i += size) out.push(cps.slice(i, i + size).join(''));
  return out;
}

function usageOf(promptTokens, completionTokens, chat) {
  const u = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
  if (chat) {
    u.prompt_tokens_details = { cached_tokens: 0, audio_tokens: 0 };
    u.completion_tokens_details = { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 };
  }
  return u;
}

function openaiHeaders(contentType, started) {
  return {
    'content-type': contentType,
    'x-request-id': 'req_' + crypto.randomBytes(16).toString('hex'),
    'openai-organization': 'mock-org',
    'openai-processing-ms': String(Date.now() - started),
    'openai-version': '2020-10-01',
    'x-ratelimit-limit-requests': '10000',
    'x-ratelimit-limit-tokens': '2000000',
    'x-ratelimit-remaining-requests': '9999',
    'x-ratelimit-remaining-tokens': '1999990',
    'x-ratelimit-reset-requests': '6ms',
    'x-ratelimit-reset-tokens': '0s',
  };
}

// Deterministic unit-ish vector derived from the input text.
function embeddingFor(input, dims) {
  const v = [];
  let seed = crypto.createHash('sha256').update(JSON.stringify(input)).digest();
  while (v.length < dims) {
    for (let i = 0; i + 4 <= seed.length && v.length < dims; i += 4) v.push(Math.fround(seed.readInt32LE(i) / 2 ** 31));
    seed = crypto.createHash('sha256').update(seed).digest();
  }
  return v;
}

export async function startMockUpstream({ port = 0, keepAliveTimeout = 60_000 } = {}) {
  const requests = [];
  const events = [];
  const waiters = new Set();
  const notify = () => { for (const w of waiters) w(); };

  const server = http.createServer({ keepAliveTimeout }, (req, res) => {
    const bufs = [];
    req.on('data', (b) => bufs.push(b));
    req.on('end', () => handle(req, res, Buffer.concat(bufs).toString('utf8')).catch((err) => {
      if (!res.headersSent) send(res, 500, openaiError(`mock failure: ${err.message}`, 'server_error'), Date.now());
      else res.destroy();
    }));
  });

  function send(res, status, obj, started, extra = {}) {
    const body = JSON.stringify(obj);
    res.writeHead(status, { ...openaiHeaders('application/json', started), ...extra, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  async function handle(req, res, body) {
    const started = Date.now();
    const url = new URL(req.url, 'http://mock');
    let json;
    try { json = body ? JSON.parse(body) : undefined; } catch { json = undefined; }
    requests.push({ method: req.method, path: req.url, headers: req.headers, body, json, at: started });
    notify();

    // Progress of the response, for the client_closed event.
    const st = { chunks: 0, selfClosed: false };
    res.on('close', () => {
      if (!res.writableFinished && !st.selfClosed) {
        events.push({ type: 'client_closed', path: url.pathname, afterChunks: st.chunks, at: Date.now() });
        notify();
      }
    });

    let mock = {};
    try { if (req.headers['x-mock']) mock = JSON.parse(req.headers['x-mock']); } catch { /* ignore bad header */ }
    if (json && typeof json.mock === 'object' && json.mock) mock = { ...mock, ...json.mock };
    const extraHeaders = mock.headers ?? {};

    if (mock.first_byte_delay_ms) await sleep(mock.first_byte_delay_ms);
    if (res.destroyed) return;

    const auth = req.headers.authorization ?? '';
    if (!/^Bearer \S+/.test(auth)) {
      return send(res, 401, openaiError("You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", 'invalid_request_error', null), started);
    }

    const stream = json?.stream === true;

    // Byte-exact mode: the given pieces are written verbatim, one write (= one HTTP chunk) each.
    if (mock.raw_chunks || mock.raw_chunks_b64) {
      const pieces = mock.raw_chunks_b64 ? mock.raw_chunks_b64.map((b) => Buffer.from(b, 'base64')) : mock.raw_chunks;
      res.writeHead(mock.status ?? 200, { ...openaiHeaders(stream ? 'text/event-stream; charset=utf-8' : 'application/json', started), ...extraHeaders });
      for (let i = 0; i < pieces.length; i++) {
        if (mock.reset_after_chunks != null && st.chunks >= mock.reset_after_chunks) return abort(res, st, mock);
        if (i && mock.chunk_interval_ms) await sleep(mock.chunk_interval_ms);
        if (res.destroyed) return;
        res.write(pieces[i]);
        st.chunks++;
      }
      return res.end();
    }

    if (mock.status && mock.status >= 400) {
      const [type, code] = DEFAULT_ERROR[mock.status] ?? [mock.status >= 500 ? 'server_error' : 'invalid_request_error', null];
      const extra = { ...extraHeaders };
      if (mock.status === 429) extra['retry-after'] = '1';
      return send(res, mock.status, openaiError(mock.error_message ?? `Mock error ${mock.status}`,
        mock.error_type ?? type, mock.error_code !== undefined ? mock.error_code : code), started, extra);
    }

    const route = `${req.method} ${url.pathname}`;
    const isPost = req.method === 'POST';
    if (url.pathname === '/v1/chat/completions' || url.pathname === '/v1/completions' || url.pathname === '/v1/embeddings') {
      if (!isPost) return send(res, 405, openaiError(`Method ${req.method} not allowed`, 'invalid_request_error', 'method_not_allowed'), started, { allow: 'POST' });
      if (!json || typeof json !== 'object') return send(res, 400, openaiError('We could not parse the JSON body of your request.', 'invalid_request_error'), started);
      if (typeof json.model !== 'string') return send(res, 400, openaiError('you must provide a model parameter', 'invalid_request_error', null, 'model'), started);
    }

    if (route === 'POST /v1/chat/completions' || route === 'POST /v1/completions') {
      const chat = url.pathname.endsWith('/chat/completions');
      const id = (chat ? 'chatcmpl-' : 'cmpl-') + crypto.randomBytes(12).toString('hex');
      const pieces = contentPieces(mock);
      const promptTokens = countTokens(chat ? json.messages : json.prompt);
      const usage = usageOf(promptTokens, pieces.length, chat);
      const object = chat ? 'chat.completion' : 'text_completion';

      if (!stream) {
        const text = pieces.join('');
        // Key order as OpenAI sends it.
        const build = (t) => (chat
          ? { id, object, created: CREATED, model: json.model,
            choices: [{ index: 0, message: { role: 'assistant', content: t, refusal: null }, logprobs: null, finish_reason: 'stop' }],
            usage, service_tier: 'default', system_fingerprint: 'fp_mock' }
          : { id, object, created: CREATED, model: json.model, choices: [{ text: t, index: 0, logprobs: null, finish_reason: 'stop' }], usage });
        let obj = build(text);
        if (mock.large_bytes) {
          const overhead = Buffer.byteLength(JSON.stringify(build('')));
          obj = build('x'.repeat(Math.max(0, mock.large_bytes - overhead)));
        }
        if (mock.no_content_length) { // two writes and no length: Node switches to chunked framing
          const s = JSON.stringify(obj);
          res.writeHead(200, { ...openaiHeaders('application/json', started), ...extraHeaders });
          res.write(s.slice(0, s.length >> 1));
          return res.end(s.slice(s.length >> 1));
        }
        return send(res, 200, obj, started, extraHeaders);
      }

      // Streaming: role chunk, one chunk per piece, finish chunk, optional usage chunk, [DONE].
      const includeUsage = json.stream_options?.include_usage === true;
      const chunk = (choices, extra = {}) => {
        const c = { id, object: chat ? 'chat.completion.chunk' : 'text_completion', created: CREATED, model: json.model };
        if (chat) c.system_fingerprint = 'fp_mock';
        c.choices = choices;
        if (includeUsage) c.usage = null;
        return { ...c, ...extra };
      };
      const sse = [];
      if (chat) {
        sse.push(chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }]));
        for (const p of pieces) sse.push(chunk([{ index: 0, delta: { content: p }, logprobs: null, finish_reason: null }]));
        sse.push(chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]));
      } else {
        for (const p of pieces) sse.push(chunk([{ text: p, index: 0, logprobs: null, finish_reason: null }]));
        sse.push(chunk([{ text: '', index: 0, logprobs: null, finish_reason: 'stop' }]));
      }
      if (includeUsage) sse.push(chunk([], { usage }));
      const frames = sse.map((o) => `data: ${JSON.stringify(o)}\n\n`).concat('data: [DONE]\n\n');

      res.writeHead(200, { ...openaiHeaders('text/event-stream; charset=utf-8', started), 'cache-control': 'no-cache', ...extraHeaders });
      for (let i = 0; i < frames.length; i++) {
        if (mock.reset_after_chunks != null && st.chunks >= mock.reset_after_chunks) return abort(res, st, mock);
        if (i && mock.chunk_interval_ms) await sleep(mock.chunk_interval_ms);
        if (res.destroyed) return;
        res.write(frames[i]);
        st.chunks++;
      }
      return res.end();
    }

    if (route === 'POST /v1/embeddings') {
      const input = json.input;
      // A string, or an array of ints (one tokenized input), or an array of inputs.
      const inputs = typeof input === 'string' || (Array.isArray(input) && input.every((x) => typeof x === 'number')) ? [input]
        : Array.isArray(input) ? input : null;
      if (!inputs || !inputs.length) return send(res, 400, openaiError("'input' is a required property", 'invalid_request_error', null, 'input'), started);
      const dims = json.dimensions ?? 8;
      const data = inputs.map((x, index) => {
        const vec = embeddingFor(x, dims);
        const embedding = json.encoding_format === 'base64' ? Buffer.from(new Float32Array(vec).buffer).toString('base64') : vec;
        return { object: 'embedding', index, embedding };
      });
      const tokens = countTokens(inputs);
      return send(res, 200, { object: 'list', data, model: json.model, usage: { prompt_tokens: tokens, total_tokens: tokens } }, started, extraHeaders);
    }

    const model = (id) => ({ id, object: 'model', created: CREATED, owned_by: 'mock' });
    if (route === 'GET /v1/models') return send(res, 200, { object: 'list', data: MODELS.map(model) }, started, extraHeaders);
    const m = url.pathname.match(/^\/v1\/models\/(.+)$/);
    if (m && req.method === 'GET') return send(res, 200, model(decodeURIComponent(m[1])), started, extraHeaders);

    return send(res, 404, openaiError(`Unknown request URL: ${req.method} ${url.pathname}.`, 'invalid_request_error', 'unknown_url'), started);
  }

  // Wait until the already-written frames have left, then kill the connection. 'rst' sends a
  // TCP RST (the peer reads ECONNRESET); 'fin' closes cleanly mid-body (premature EOF).
  function abort(res, st, mock) {
    st.selfClosed = true;
    res.flushHeaders(); // so that reset_after_chunks:0 still delivers the status line first
    const sock = res.socket;
    if (!sock) return;
    sock.write('', () => setTimeout(() => {
      if (mock.reset_with === 'fin') sock.destroy();
      else sock.resetAndDestroy();
    }, 20));
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const actualPort = server.address().port;

  return {
    url: `http://127.0.0.1:${actualPort}/v1`,
    port: actualPort,
    requests,
    events,
    server,
    reset() { requests.length = 0; events.length = 0; },
    // Resolves with fn()'s first truthy value (re-checked whenever a request/event arrives).
    waitFor(fn, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const v = fn();
          if (v) { cleanup(); resolve(v); }
        };
        const timer = setTimeout(() => { cleanup(); reject(new Error(`mock.waitFor timed out after ${timeoutMs} ms`)); }, timeoutMs);
        const cleanup = () => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const i = process.argv.indexOf('--port');
  const mock = await startMockUpstream({ port: i > 0 ? Number(process.argv[i + 1]) : 0 });
  process.stdout.write(JSON.stringify({ listening: mock.port }) + '\n');
  const quit = () => mock.close().then(() => process.exit(0));
  process.on('SIGTERM', quit);
  process.on('SIGINT', quit);
}
