// Anthropic Messages API wire format for the mock upstream: POST <prefix>/messages (stream
// and non-stream), POST <prefix>/messages/count_tokens, GET <prefix>/models[/{id}] when the
// request carries anthropic-version and no Authorization header.
import { CREATED, base58, buildPadded, contentPieces, countTokens, sseEvent, usageNumbers } from './util.mjs';

export const ANTHROPIC_MODELS = ['claude-sonnet-4-6', 'claude-opus-4-7', 'claude-haiku-4-5'];
const ORG_ID = '00000000-0000-4000-8000-000000000000';

// HTTP status -> Anthropic error type (https://docs.anthropic.com/en/api/errors).
const ERROR_TYPES = {
  400: 'invalid_request_error', 401: 'authentication_error', 402: 'billing_error', 403: 'permission_error',
  404: 'not_found_error', 413: 'request_too_large', 429: 'rate_limit_error', 500: 'api_error',
  504: 'timeout_error', 529: 'overloaded_error',
};
const ERROR_MESSAGES = { 500: 'Internal server error', 529: 'Overloaded' };

export const anthropicRequestId = () => 'req_011C' + base58(20);
export const anthropicMessageId = () => 'msg_01' + base58(22);

// Body of an Anthropic error answer (the real API appends the request id).
export function anthropicError(type, message, requestId) {
  return { type: 'error', error: { type, message }, request_id: requestId };
}

export function anthropicHeaders(contentType, requestId) {
  const reset = new Date(Math.ceil(Date.now() / 1000) * 1000 + 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  const h = { 'content-type': contentType, 'request-id': requestId, 'anthropic-organization-id': ORG_ID };
  for (const [k, limit] of [['requests', 4000], ['tokens', 2000000], ['input-tokens', 2000000], ['output-tokens', 400000]]) {
    h[`anthropic-ratelimit-${k}-limit`] = String(limit);
    h[`anthropic-ratelimit-${k}-remaining`] = String(k === 'requests' ? limit - 1 : limit - 1000);
    h[`anthropic-ratelimit-${k}-reset`] = reset;
  }
  return h;
}

// The error answer for the `status` mock option (status >= 400).
export function sendStatusError(ctx) {
  const { mock } = ctx;
  const type = mock.error_type ?? ERROR_TYPES[mock.status] ?? (mock.status >= 500 ? 'api_error' : 'invalid_request_error');
  const message = mock.error_message ?? ERROR_MESSAGES[mock.status] ?? `Mock error ${mock.status}`;
  const extra = { ...ctx.extraHeaders };
  if (mock.status === 429) {
    extra['retry-after'] = '1';
    extra['anthropic-ratelimit-requests-remaining'] = '0';
  }
  return ctx.anthropicSend(mock.status, anthropicError(type, message, ctx.requestId), extra);
}

// Pydantic-style validation messages, as the real API words them.
function validate(ctx, fields) {
  const { json } = ctx;
  if (!json || typeof json !== 'object' || Array.isArray(json)) {
    return ctx.anthropicSend(400, anthropicError('invalid_request_error', 'Request body must be a JSON object', ctx.requestId));
  }
  for (const [name, ok] of fields) {
    if (json[name] === undefined) return ctx.anthropicSend(400, anthropicError('invalid_request_error', `${name}: Field required`, ctx.requestId));
    if (!ok(json[name])) return ctx.anthropicSend(400, anthropicError('invalid_request_error', `${name}: Input should be a valid ${ok.what}`, ctx.requestId));
  }
  return null;
}
const isStr = Object.assign((v) => typeof v === 'string', { what: 'string' });
const isInt = Object.assign((v) => Number.isInteger(v), { what: 'integer' });
const isList = Object.assign((v) => Array.isArray(v), { what: 'list' });

const inputTokensOf = (json) => countTokens(json.messages) + countTokens(json.system);

export async function handleMessages(ctx) {
  const { json, mock } = ctx;
  const invalid = validate(ctx, [['model', isStr], ['max_tokens', isInt], ['messages', isList]]);
  if (invalid) return invalid;

  const pieces = contentPieces(mock);
  const u = usageNumbers(mock, inputTokensOf(json), pieces.length);
  const id = anthropicMessageId();
  const stopReason = mock.stop_reason ?? 'end_turn';
  // Usage as the real API writes it (key order included).
  const usage = (outputTokens) => ({
    input_tokens: u.input,
    cache_creation_input_tokens: u.cacheCreation,
    cache_read_input_tokens: u.cached,
    cache_creation: { ephemeral_5m_input_tokens: u.cacheCreation, ephemeral_1h_input_tokens: 0 },
    output_tokens: outputTokens,
    service_tier: 'standard',
  });

  if (json.stream !== true) {
    const build = (text) => ({
      id, type: 'message', role: 'assistant', model: json.model,
      content: text === '' && !pieces.length ? [] : [{ type: 'text', text }],
      stop_reason: stopReason, stop_sequence: null, usage: usage(u.output),
    });
    return ctx.sendBody(200, buildPadded(build, pieces.join(''), mock), ctx.anthropicHeaders('application/json'));
  }

  // message_start, content_block_start, ping, content_block_delta per piece, content_block_stop,
  // message_delta (stop reason + cumulative usage), message_stop.
  const frames = [sseEvent('message_start', {
    type: 'message_start',
    message: { id, type: 'message', role: 'assistant', model: json.model, content: [], stop_reason: null, stop_sequence: null, usage: usage(Math.min(1, u.output)) },
  })];
  if (pieces.length) frames.push(sseEvent('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }));
  frames.push(sseEvent('ping', { type: 'ping' }));
  let deltas = 0;
  const errorAfter = mock.stream_error_after;
  const errorFrame = () => sseEvent('error', { type: 'error', error: { type: mock.error_type ?? 'overloaded_error', message: mock.error_message ?? 'Overloaded' } });
  for (const text of pieces) {
    if (errorAfter != null && deltas >= errorAfter) break;
    frames.push(sseEvent('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }));
    deltas++;
  }
  if (errorAfter != null) {
    frames.push(errorFrame());
  } else {
    if (pieces.length) frames.push(sseEvent('content_block_stop', { type: 'content_block_stop', index: 0 }));
    const deltaUsage = mock.delta_usage === 'output_only' ? { output_tokens: u.output } : {
      input_tokens: u.input, cache_creation_input_tokens: u.cacheCreation, cache_read_input_tokens: u.cached, output_tokens: u.output,
    };
    frames.push(sseEvent('message_delta', { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: deltaUsage }));
    frames.push(sseEvent('message_stop', { type: 'message_stop' }));
  }
  return ctx.writeStream(200, { ...ctx.anthropicHeaders('text/event-stream; charset=utf-8'), 'cache-control': 'no-cache' }, frames);
}

export function handleCountTokens(ctx) {
  const invalid = validate(ctx, [['model', isStr], ['messages', isList]]);
  if (invalid) return invalid;
  const u = usageNumbers(ctx.mock, inputTokensOf(ctx.json), 0);
  return ctx.anthropicSend(200, { input_tokens: u.input });
}

// GET /v1/models and /v1/models/{id} in Anthropic's shape.
export function handleModels(ctx, modelId) {
  const model = (id) => ({
    type: 'model', id, display_name: id.replace(/-/g, ' '), created_at: new Date(CREATED * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
  });
  if (modelId != null) return ctx.anthropicSend(200, model(modelId));
  const data = ANTHROPIC_MODELS.map(model);
  return ctx.anthropicSend(200, { data, has_more: false, first_id: data[0].id, last_id: data.at(-1).id });
}
