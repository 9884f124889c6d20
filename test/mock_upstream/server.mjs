// Mock LLM provider for gateway end-to-end tests. It speaks the exact wire formats of
//   - OpenAI chat/completions, completions, embeddings, models        (this file)
//   - the OpenAI Responses API                                        (responses.mjs)
//   - the Anthropic Messages API                                      (anthropic.mjs)
// so that the official openai and @anthropic-ai/sdk clients can talk to it directly.
//
// Routing is by path suffix, so any provider prefix works: <prefix>/chat/completions,
// <prefix>/completions, <prefix>/embeddings, <prefix>/models[/{id}], <prefix>/messages,
// <prefix>/messages/count_tokens, <prefix>/responses[/{id}[/cancel|/input_items]],
// <prefix>/responses/input_tokens (e.g. /v1/..., /openai/v1/..., /api/v3/...,
// /openai/deployments/{name}/chat/completions?api-version=...).
//
// Auth: OpenAI-format endpoints take `Authorization: Bearer <k>` or `api-key: <k>` (Azure);
// Anthropic endpoints take `x-api-key: <k>` (or `Authorization: Bearer <k>`, which the
// current @anthropic-ai/sdk sends) and need `anthropic-version`. Any non-empty key
// is valid unless api_keys / apiKeys lists the valid ones; require_auth:false (requireAuth)
// accepts requests without credentials.
//
// Behaviour per request is chosen by mock options, merged (later wins) from: the instance
// defaults (startMockUpstream({defaults}) / mock.setDefault()), an `x-mock` request header
// holding JSON, and a top-level body field "mock" (the gateway forwards unknown fields).
// Options (see README.md in this directory for the full reference): status, error_type,
// error_code, error_message, first_byte_delay_ms, chunks, content, chunk_interval_ms,
// reset_after_chunks, reset_with ('rst' | 'fin'), large_bytes, raw_chunks, raw_chunks_b64,
// no_content_length, headers, usage, include_usage, finish_reason, stop_reason,
// stream_error_after, delta_usage, background_delay_ms, require_auth, api_keys, anthropic_auth.
//
// Library: startMockUpstream({port, requireAuth, apiKeys, defaults}) -> { url, origin, port,
//          requests, events, responses, defaults, setDefault(), reset(), waitFor(), close(),
//          stats, resetPeaks() }
// CLI:     node server.mjs --port 0 [--no-auth] [--defaults JSON]  (prints {"listening":PORT}, serves until killed)
import http from 'node:http';
import crypto from 'node:crypto';
import { pathToFileURL } from 'node:url';
import {
  CREATED, buildPadded, contentPieces, countTokens, openaiError, sleep, sseData, usageNumbers,
} from './util.mjs';
import * as anthropic from './anthropic.mjs';
import * as responsesApi from './responses.mjs';

export { openaiError };
export const MODELS = ['gpt-4o-mini', 'gpt-4o', 'gpt-3.5-turbo-instruct', 'text-embedding-3-small'];

const DEFAULT_ERROR = {
  400: ['invalid_request_error', null], 401: ['invalid_request_error', 'invalid_api_key'],
  403: ['permission_error', null], 404: ['invalid_request_error', 'not_found'],
  408: ['timeout', null], 409: ['conflict', null], 422: ['invalid_request_error', null],
  429: ['requests', 'rate_limit_exceeded'], 500: ['server_error', null],
  502: ['server_error', 'bad_gateway'], 503: ['server_error', 'service_unavailable'],
};
const SERVER_ERROR = 'The server had an error while processing your request. Sorry about that!';

function usageOf(n, chat) {
  const u = { prompt_tokens: n.input, completion_tokens: n.output, total_tokens: n.total };
  if (chat) {
    u.prompt_tokens_details = { cached_tokens: n.cached, audio_tokens: 0 };
    u.completion_tokens_details = { reasoning_tokens: n.reasoning, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 };
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

// Which endpoint a path is, by suffix. family decides the auth rules and the error shape.
function classify(pathname, headers) {
  const p = pathname;
  let m;
  const id = (s) => { try { return decodeURIComponent(s); } catch { return s; } };
  if (p.endsWith('/chat/completions')) return { family: 'openai', name: 'chat.completions' };
  if (p.endsWith('/messages/count_tokens')) return { family: 'anthropic', name: 'messages.count_tokens' };
  if (p.endsWith('/messages')) return { family: 'anthropic', name: 'messages' };
  if (p.endsWith('/responses/input_tokens')) return { family: 'openai', name: 'responses.input_tokens' };
  if ((m = /\/responses\/([^/]+)\/cancel$/.exec(p))) return { family: 'openai', name: 'responses.cancel', id: id(m[1]) };
  if ((m = /\/responses\/([^/]+)\/input_items$/.exec(p))) return { family: 'openai', name: 'responses.input_items', id: id(m[1]) };
  if ((m = /\/responses\/([^/]+)$/.exec(p))) return { family: 'openai', name: 'responses.item', id: id(m[1]) };
  if (p.endsWith('/responses')) return { family: 'openai', name: 'responses' };
  if (p.endsWith('/completions')) return { family: 'openai', name: 'completions' };
  if (p.endsWith('/embeddings')) return { family: 'openai', name: 'embeddings' };
  // Anthropic also serves /v1/models: a request with an anthropic-version header gets its shape.
  const family = headers['anthropic-version'] ? 'anthropic' : 'openai';
  if (p.endsWith('/models')) return { family, name: 'models' };
  if ((m = /^.*?\/models\/(.+)$/.exec(p))) return { family, name: 'models.retrieve', id: id(m[1]) };
  return { family: 'openai', name: null };
}

// The credentials a request carries: {scheme: 'bearer'|'x-api-key'|'api-key'|'none', value}.
// Anthropic endpoints look at x-api-key first, the others at Authorization first.
function authOf(headers, family) {
  const bearer = /^Bearer\s+(\S.*)$/i.exec(headers.authorization ?? '')?.[1];
  const found = [['bearer', bearer], ['api-key', headers['api-key']], ['x-api-key', headers['x-api-key']]];
  if (family === 'anthropic') found.unshift(found.pop());
  for (const [scheme, value] of found) if (value) return { scheme, value };
  return { scheme: 'none', value: null };
}

const maskKey = (k) => (k.length > 8 ? `${k.slice(0, 3)}${'*'.repeat(k.length - 7)}${k.slice(-4)}` : k);

export async function startMockUpstream({
  port = 0, keepAliveTimeout = 60_000, requireAuth = true, apiKeys = null, defaults = {},
} = {}) {
  const requests = [];
  const events = [];
  const responses = new Map(); // id -> Response object (as a GET would return it now)
  const store = new Map(); // id -> {response, inputItems, events, background, timer}
  let instanceDefaults = { ...defaults };
  const waiters = new Set();
  const notify = () => { for (const w of waiters) w(); };

  // Concurrency seen by the mock: requests being answered and open TCP connections, now and at
  // their peak since the start (or the last resetPeaks() / reset()).
  const load = { inFlight: 0, peakInFlight: 0, connections: 0, peakConnections: 0 };
  const resetPeaks = () => { load.peakInFlight = load.inFlight; load.peakConnections = load.connections; };
  const server = http.createServer({ keepAliveTimeout }, (req, res) => {
    load.peakInFlight = Math.max(load.peakInFlight, ++load.inFlight);
    res.once('close', () => { load.inFlight--; });
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

  // JSON with a Content-Length; with no_content_length, two writes and no length (Node then
  // switches to chunked framing).
  function sendBody(res, mock, status, obj, headers) {
    const s = JSON.stringify(obj);
    if (mock.no_content_length) {
      res.writeHead(status, headers);
      res.write(s.slice(0, s.length >> 1));
      return res.end(s.slice(s.length >> 1));
    }
    res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(s) });
    return res.end(s);
  }

  // Writes the frames one write (= one HTTP chunk) each, honouring chunk_interval_ms and
  // reset_after_chunks. Resolves true if all frames were written and the body ended.
  async function writeStream(res, st, mock, status, headers, frames) {
    res.writeHead(status, headers);
    for (let i = 0; i < frames.length; i++) {
      if (mock.reset_after_chunks != null && st.chunks >= mock.reset_after_chunks) { abort(res, st, mock); return false; }
      if (i && mock.chunk_interval_ms) await sleep(mock.chunk_interval_ms);
      if (res.destroyed) return false;
      res.write(frames[i]);
      st.chunks++;
    }
    res.end();
    return true;
  }

  function saveResponse(id, entry) {
    store.set(id, entry);
    responses.set(id, entry.response);
    notify();
  }
  function deleteResponse(id) {
    store.delete(id);
    responses.delete(id);
  }
  function clearStore() {
    for (const e of store.values()) if (e.timer) clearTimeout(e.timer);
    store.clear();
    responses.clear();
  }

  async function handle(req, res, body) {
    const started = Date.now();
    const url = new URL(req.url, 'http://mock');
    let json;
    try { json = body ? JSON.parse(body) : undefined; } catch { json = undefined; }
    const route = classify(url.pathname, req.headers);
    const auth = authOf(req.headers, route.family);
    requests.push({ method: req.method, path: req.url, headers: req.headers, body, json, auth, endpoint: route.name, at: started });
    notify();

    // Progress of the response, for the client_closed event.
    const st = { chunks: 0, selfClosed: false };
    res.on('close', () => {
      if (!res.writableFinished && !st.selfClosed) {
        events.push({ type: 'client_closed', path: url.pathname, afterChunks: st.chunks, at: Date.now() });
        notify();
      }
    });

    let mock = { ...instanceDefaults };
    try { if (req.headers['x-mock']) mock = { ...mock, ...JSON.parse(req.headers['x-mock']) }; } catch { /* ignore bad header */ }
    if (json && typeof json.mock === 'object' && json.mock) mock = { ...mock, ...json.mock };
    const extraHeaders = mock.headers ?? {};
    const requestId = anthropic.anthropicRequestId();
    const isAnthropic = route.family === 'anthropic';
    const ctx = {
      req, res, url, json, body, mock, started, st, route, extraHeaders, requestId, store,
      stream: json?.stream === true,
      openaiHeaders: (ct) => openaiHeaders(ct, started),
      anthropicHeaders: (ct) => ({ ...anthropic.anthropicHeaders(ct, requestId), ...extraHeaders }),
      send: (status, obj, extra = {}) => send(res, status, obj, started, extra),
      anthropicSend: (status, obj, extra = {}) => sendBody(res, {}, status, obj, { ...ctx.anthropicHeaders('application/json'), ...extra }),
      sendBody: (status, obj, headers) => sendBody(res, mock, status, obj, headers),
      writeStream: (status, headers, frames) => writeStream(res, st, mock, status, headers, frames),
      saveResponse,
      deleteResponse,
    };

    if (mock.first_byte_delay_ms) await sleep(mock.first_byte_delay_ms);
    if (res.destroyed) return;

    const mustAuth = mock.require_auth ?? requireAuth;
    const validKeys = mock.api_keys ?? apiKeys;
    if (isAnthropic) {
      // x-api-key, or Authorization: Bearer (how @anthropic-ai/sdk >= 1.0, API version
      // 2026-10-21, sends the key); anthropic_auth:'x-api-key' or 'bearer' accepts only one.
      const how = mock.anthropic_auth ?? 'any';
      const bearer = /^Bearer (\S+)/.exec(req.headers.authorization ?? '')?.[1];
      const key = (how !== 'bearer' ? req.headers['x-api-key'] : undefined) ?? (how !== 'x-api-key' ? bearer : undefined);
      if (!key && mustAuth) return ctx.anthropicSend(401, anthropic.anthropicError('authentication_error', 'x-api-key header is required', requestId));
      if (key && validKeys && !validKeys.includes(key)) return ctx.anthropicSend(401, anthropic.anthropicError('authentication_error', 'invalid x-api-key', requestId));
      const version = req.headers['anthropic-version'];
      if (!version) return ctx.anthropicSend(400, anthropic.anthropicError('invalid_request_error', 'anthropic-version: header is required', requestId));
      if (!/^\d{4}-\d{2}-\d{2}$/.test(version)) return ctx.anthropicSend(400, anthropic.anthropicError('invalid_request_error', `anthropic-version: "${version}" is not a valid version`, requestId));
    } else {
      const bearer = /^Bearer (\S+)/.exec(req.headers.authorization ?? '')?.[1];
      const key = bearer ?? req.headers['api-key'];
      if (!key && mustAuth) {
        return ctx.send(401, openaiError("You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", 'invalid_request_error', null));
      }
      if (key && validKeys && !validKeys.includes(key)) {
        return ctx.send(401, openaiError(`Incorrect API key provided: ${maskKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`, 'invalid_request_error', 'invalid_api_key'));
      }
    }

    const stream = ctx.stream;

    // Byte-exact mode: the given pieces are written verbatim, one write (= one HTTP chunk) each.
    if (mock.raw_chunks || mock.raw_chunks_b64) {
      const pieces = mock.raw_chunks_b64 ? mock.raw_chunks_b64.map((b) => Buffer.from(b, 'base64')) : mock.raw_chunks;
      const ct = stream ? 'text/event-stream; charset=utf-8' : 'application/json';
      const head = isAnthropic ? ctx.anthropicHeaders(ct) : { ...openaiHeaders(ct, started), ...extraHeaders };
      await writeStream(res, st, mock, mock.status || 200, head, pieces);
      return;
    }

    if (mock.status && mock.status >= 400) {
      if (isAnthropic) return anthropic.sendStatusError(ctx);
      const [type, code] = DEFAULT_ERROR[mock.status] ?? [mock.status >= 500 ? 'server_error' : 'invalid_request_error', null];
      const extra = { ...extraHeaders };
      if (mock.status === 429) extra['retry-after'] = '1';
      return send(res, mock.status, openaiError(mock.error_message ?? `Mock error ${mock.status}`,
        mock.error_type ?? type, mock.error_code !== undefined ? mock.error_code : code), started, extra);
    }

    const method = req.method;
    const methodNotAllowed = (allow) => (isAnthropic
      ? ctx.anthropicSend(405, anthropic.anthropicError('invalid_request_error', `Method ${method} not allowed`, requestId), { allow })
      : send(res, 405, openaiError(`Method ${method} not allowed`, 'invalid_request_error', 'method_not_allowed'), started, { allow }));

    switch (route.name) {
      case 'messages':
        return method === 'POST' ? anthropic.handleMessages(ctx) : methodNotAllowed('POST');
      case 'messages.count_tokens':
        return method === 'POST' ? anthropic.handleCountTokens(ctx) : methodNotAllowed('POST');
      case 'responses':
        return method === 'POST' ? responsesApi.handleCreate(ctx) : methodNotAllowed('POST');
      case 'responses.input_tokens':
        return method === 'POST' ? responsesApi.handleInputTokens(ctx) : methodNotAllowed('POST');
      case 'responses.item':
        if (method === 'GET') return responsesApi.handleRetrieve(ctx, route.id);
        if (method === 'DELETE') return responsesApi.handleDelete(ctx, route.id);
        return methodNotAllowed('GET, DELETE');
      case 'responses.cancel':
        return method === 'POST' ? responsesApi.handleCancel(ctx, route.id) : methodNotAllowed('POST');
      case 'responses.input_items':
        return method === 'GET' ? responsesApi.handleInputItems(ctx, route.id) : methodNotAllowed('GET');
      default:
    }

    if (isAnthropic && method === 'GET' && (route.name === 'models' || route.name === 'models.retrieve')) {
      return anthropic.handleModels(ctx, route.name === 'models' ? null : route.id);
    }

    const isPost = method === 'POST';
    if (route.name === 'chat.completions' || route.name === 'completions' || route.name === 'embeddings') {
      if (!isPost) return send(res, 405, openaiError(`Method ${method} not allowed`, 'invalid_request_error', 'method_not_allowed'), started, { allow: 'POST' });
      if (!json || typeof json !== 'object') return send(res, 400, openaiError('We could not parse the JSON body of your request.', 'invalid_request_error'), started);
      // Azure deployments name the model in the path; the body may omit it.
      const deployment = /\/deployments\/([^/]+)\//.exec(url.pathname)?.[1];
      if (typeof json.model !== 'string' && deployment) json = { ...json, model: decodeURIComponent(deployment) };
      if (typeof json.model !== 'string') return send(res, 400, openaiError('you must provide a model parameter', 'invalid_request_error', null, 'model'), started);
    }

    if (isPost && (route.name === 'chat.completions' || route.name === 'completions')) {
      const chat = route.name === 'chat.completions';
      const id = (chat ? 'chatcmpl-' : 'cmpl-') + crypto.randomBytes(12).toString('hex');
      const pieces = contentPieces(mock);
      const usage = usageOf(usageNumbers(mock, countTokens(chat ? json.messages : json.prompt), pieces.length), chat);
      const object = chat ? 'chat.completion' : 'text_completion';
      const finish = mock.finish_reason ?? 'stop';

      if (!stream) {
        // Key order as OpenAI sends it.
        const build = (t) => (chat
          ? { id, object, created: CREATED, model: json.model,
            choices: [{ index: 0, message: { role: 'assistant', content: t, refusal: null }, logprobs: null, finish_reason: finish }],
            usage, service_tier: 'default', system_fingerprint: 'fp_mock' }
          : { id, object, created: CREATED, model: json.model, choices: [{ text: t, index: 0, logprobs: null, finish_reason: finish }], usage });
        return sendBody(res, mock, 200, buildPadded(build, pieces.join(''), mock), { ...openaiHeaders('application/json', started), ...extraHeaders });
      }

      // Streaming: role chunk, one chunk per piece, finish chunk, optional usage chunk, [DONE].
      // include_usage (mock option) overrides stream_options.include_usage: true -> usage chunk
      // even if not asked, false -> never, 'final_chunk' -> usage on the finish chunk instead.
      const usageMode = mock.include_usage ?? (json.stream_options?.include_usage === true);
      const includeUsage = usageMode === true;
      const chunk = (choices, extra = {}) => {
        const c = { id, object: chat ? 'chat.completion.chunk' : 'text_completion', created: CREATED, model: json.model };
        if (chat) c.system_fingerprint = 'fp_mock';
        c.choices = choices;
        if (includeUsage) c.usage = null;
        return { ...c, ...extra };
      };
      const sse = [];
      let deltas = 0;
      const errorAfter = mock.stream_error_after;
      const finalExtra = usageMode === 'final_chunk' ? { usage } : {};
      if (chat) sse.push(chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }]));
      for (const p of pieces) {
        if (errorAfter != null && deltas >= errorAfter) break;
        sse.push(chat ? chunk([{ index: 0, delta: { content: p }, logprobs: null, finish_reason: null }])
          : chunk([{ text: p, index: 0, logprobs: null, finish_reason: null }]));
        deltas++;
      }
      let frames;
      if (errorAfter != null) {
        // A mid-stream error as OpenAI sends it: a data event holding an error object, no [DONE].
        const err = openaiError(mock.error_message ?? SERVER_ERROR, mock.error_type ?? 'server_error', mock.error_code ?? null);
        frames = sse.map((o) => sseData(o)).concat(sseData(err));
      } else {
        sse.push(chat ? chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finish }], finalExtra)
          : chunk([{ text: '', index: 0, logprobs: null, finish_reason: finish }], finalExtra));
        if (includeUsage) sse.push(chunk([], { usage }));
        frames = sse.map((o) => sseData(o)).concat(sseData('[DONE]'));
      }
      await writeStream(res, st, mock, 200, { ...openaiHeaders('text/event-stream; charset=utf-8', started), 'cache-control': 'no-cache', ...extraHeaders }, frames);
      return;
    }

    if (isPost && route.name === 'embeddings') {
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
      const n = usageNumbers(mock, countTokens(inputs), 0);
      const tokens = n.input;
      return send(res, 200, { object: 'list', data, model: json.model, usage: { prompt_tokens: tokens, total_tokens: tokens } }, started, extraHeaders);
    }

    const model = (mid) => ({ id: mid, object: 'model', created: CREATED, owned_by: 'mock' });
    if (method === 'GET' && route.name === 'models') return send(res, 200, { object: 'list', data: MODELS.map(model) }, started, extraHeaders);
    if (method === 'GET' && route.name === 'models.retrieve') return send(res, 200, model(route.id), started, extraHeaders);

    return send(res, 404, openaiError(`Unknown request URL: ${method} ${url.pathname}.`, 'invalid_request_error', 'unknown_url'), started);
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

  server.on('connection', (sock) => {
    load.peakConnections = Math.max(load.peakConnections, ++load.connections);
    sock.once('close', () => { load.connections--; });
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const actualPort = server.address().port;

  return {
    url: `http://127.0.0.1:${actualPort}/v1`, // OpenAI-style base URL
    origin: `http://127.0.0.1:${actualPort}`, // Anthropic-style base URL (the SDK appends /v1/...)
    port: actualPort,
    requests,
    events,
    responses,
    server,
    get defaults() { return { ...instanceDefaults }; },
    // Default mock options for every request of this instance (replaces the previous ones;
    // setDefault() or setDefault(null) clears them). x-mock and body "mock" still win.
    setDefault(options) { instanceDefaults = { ...(options ?? {}) }; },
    // Forgets requests, events and stored responses (and restarts the peaks); the defaults stay.
    reset() { requests.length = 0; events.length = 0; clearStore(); resetPeaks(); },
    // {inFlight, peakInFlight, connections, peakConnections}: requests being answered and open TCP
    // connections, now and at their peak since the start or the last resetPeaks() / reset().
    get stats() { return { ...load }; },
    // The peaks start again from the current values.
    resetPeaks,
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
      clearStore();
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : undefined; };
  const mock = await startMockUpstream({
    port: Number(arg('--port') ?? 0),
    requireAuth: !process.argv.includes('--no-auth'),
    defaults: arg('--defaults') ? JSON.parse(arg('--defaults')) : {},
  });
  process.stdout.write(JSON.stringify({ listening: mock.port }) + '\n');
  const quit = () => mock.close().then(() => process.exit(0));
  process.on('SIGTERM', quit);
  process.on('SIGINT', quit);
}
