// OpenAI Responses API wire format for the mock upstream:
//   POST   <prefix>/responses                     create (stream or not; background:true supported)
//   GET    <prefix>/responses/{id}                retrieve (?stream=true replays the events)
//   DELETE <prefix>/responses/{id}                delete
//   POST   <prefix>/responses/{id}/cancel         cancel (background responses only)
//   GET    <prefix>/responses/{id}/input_items    list input items (order, limit, after)
//   POST   <prefix>/responses/input_tokens        count input tokens
// Created responses are kept in ctx.store (unless store:false): id -> {response, inputItems,
// events, timer}; the mock exposes the responses themselves as mock.responses (id -> object).
import { CREATED, buildPadded, contentPieces, countTokens, hexId, openaiError, sseEvent, usageNumbers } from './util.mjs';

const SERVER_ERROR = 'The server had an error while processing your request. Sorry about that!';

function validate(ctx) {
  const { json } = ctx;
  if (!json || typeof json !== 'object' || Array.isArray(json)) {
    return ctx.send(400, openaiError('We could not parse the JSON body of your request.', 'invalid_request_error'));
  }
  if (typeof json.model !== 'string') {
    return ctx.send(400, openaiError("Missing required parameter: 'model'.", 'invalid_request_error', 'missing_required_parameter', 'model'));
  }
  if (json.previous_response_id != null && !ctx.store.has(json.previous_response_id)) {
    return ctx.send(400, openaiError(`Previous response with id '${json.previous_response_id}' not found.`, 'invalid_request_error', 'previous_response_not_found', 'previous_response_id'));
  }
  return null;
}

const inputTokensOf = (json) => countTokens(json.input) + countTokens(json.instructions);

// The input as the list of items that GET .../input_items returns (each with an id).
function inputItemsOf(input) {
  if (typeof input === 'string') return [{ id: hexId('msg_'), type: 'message', role: 'user', content: [{ type: 'input_text', text: input }] }];
  if (!Array.isArray(input)) return [];
  return input.map((it) => {
    if (!it || typeof it !== 'object') return { id: hexId('item_'), type: 'message', role: 'user', content: [{ type: 'input_text', text: String(it) }] };
    if (it.type === 'message' || (it.type === undefined && it.role)) {
      const content = typeof it.content === 'string'
        ? [{ type: it.role === 'assistant' ? 'output_text' : 'input_text', text: it.content }]
        : it.content;
      return { id: it.id ?? hexId('msg_'), type: 'message', role: it.role, content };
    }
    const { id, ...rest } = it;
    return { id: id ?? hexId('item_'), ...rest };
  });
}

// A Response object, with the fields (and key order) of the real API; request parameters are
// echoed where the API echoes them.
function responseObject(json, { id, status, output, usage, error = null }) {
  return {
    id,
    object: 'response',
    created_at: CREATED,
    status,
    background: json.background === true,
    completed_at: status === 'completed' ? CREATED : null,
    error,
    incomplete_details: null,
    instructions: json.instructions ?? null,
    max_output_tokens: json.max_output_tokens ?? null,
    max_tool_calls: json.max_tool_calls ?? null,
    model: json.model,
    output,
    parallel_tool_calls: json.parallel_tool_calls ?? true,
    previous_response_id: json.previous_response_id ?? null,
    prompt_cache_key: json.prompt_cache_key ?? null,
    reasoning: json.reasoning ?? { effort: null, summary: null },
    safety_identifier: json.safety_identifier ?? null,
    service_tier: 'default',
    store: json.store !== false,
    temperature: json.temperature ?? 1,
    text: json.text ?? { format: { type: 'text' }, verbosity: 'medium' },
    tool_choice: json.tool_choice ?? 'auto',
    tools: json.tools ?? [],
    top_logprobs: json.top_logprobs ?? 0,
    top_p: json.top_p ?? 1,
    truncation: json.truncation ?? 'disabled',
    usage,
    user: json.user ?? null,
    metadata: json.metadata ?? {},
  };
}

const textPart = (text) => ({ type: 'output_text', annotations: [], logprobs: [], text });
const messageItem = (id, status, content) => ({ id, type: 'message', status, content, role: 'assistant' });

// Everything one answer needs: the final response, and the stream events that build it.
function plan(ctx) {
  const { json, mock } = ctx;
  const pieces = contentPieces(mock);
  const n = usageNumbers(mock, inputTokensOf(json), pieces.length);
  const usage = {
    input_tokens: n.input,
    input_tokens_details: { cached_tokens: n.cached },
    output_tokens: n.output,
    output_tokens_details: { reasoning_tokens: n.reasoning },
    total_tokens: n.total,
  };
  const id = hexId('resp_');
  const msgId = hexId('msg_');
  const text = pieces.join('');
  const final = (t = text) => responseObject(json, { id, status: 'completed', output: [messageItem(msgId, 'completed', [textPart(t)])], usage });
  const pending = (status) => responseObject(json, { id, status, output: [], usage: null });

  // The documented event sequence; every event carries sequence_number.
  const events = [];
  const ev = (type, fields) => events.push({ type, sequence_number: events.length, ...fields });
  const at = { item_id: msgId, output_index: 0, content_index: 0 };
  ev('response.created', { response: pending('in_progress') });
  ev('response.in_progress', { response: pending('in_progress') });
  ev('response.output_item.added', { output_index: 0, item: messageItem(msgId, 'in_progress', []) });
  ev('response.content_part.added', { ...at, part: textPart('') });
  let deltas = 0;
  for (const delta of pieces) {
    if (mock.stream_error_after != null && deltas >= mock.stream_error_after) break;
    ev('response.output_text.delta', { ...at, delta, logprobs: [] });
    deltas++;
  }
  let failed = null;
  if (mock.stream_error_after != null) {
    const error = { code: mock.error_code ?? 'server_error', message: mock.error_message ?? SERVER_ERROR };
    ev('error', { code: error.code, message: error.message, param: null });
    failed = responseObject(json, { id, status: 'failed', output: [], usage: null, error });
  } else {
    ev('response.output_text.done', { ...at, text, logprobs: [] });
    ev('response.content_part.done', { ...at, part: textPart(text) });
    ev('response.output_item.done', { output_index: 0, item: messageItem(msgId, 'completed', [textPart(text)]) });
    ev('response.completed', { response: final() });
  }
  return { id, final, pending, events, failed };
}

const frame = (e) => sseEvent(e.type, e);
const streamHeaders = (ctx) => ({ ...ctx.openaiHeaders('text/event-stream; charset=utf-8'), 'cache-control': 'no-cache', ...ctx.extraHeaders });
const notFound = (ctx, id) => ctx.send(404, openaiError(`Response with id '${id}' not found.`, 'invalid_request_error', null));

export async function handleCreate(ctx) {
  const invalid = validate(ctx);
  if (invalid) return invalid;
  const { json, mock } = ctx;
  const p = plan(ctx);
  const entry = { response: null, inputItems: inputItemsOf(json.input), events: p.events, background: json.background === true, timer: null };
  const keep = json.store !== false;
  const save = (response) => {
    entry.response = response;
    if (keep) ctx.saveResponse(p.id, entry);
  };

  if (json.stream === true) {
    save(p.pending('in_progress'));
    const done = await ctx.writeStream(200, streamHeaders(ctx), p.events.map(frame));
    if (done) save(p.failed ?? p.final());
    return;
  }
  if (entry.background) {
    // Answered at once as queued; completes after background_delay_ms unless cancelled first.
    save(p.pending('queued'));
    entry.timer = setTimeout(() => {
      entry.timer = null;
      if (entry.response.status === 'queued') save(p.final());
    }, mock.background_delay_ms ?? 1000);
    entry.timer.unref?.();
    return ctx.send(200, entry.response, ctx.extraHeaders);
  }
  const body = buildPadded(p.final, p.final().output[0].content[0].text, mock);
  save(p.final());
  return ctx.sendBody(200, body, { ...ctx.openaiHeaders('application/json'), ...ctx.extraHeaders });
}

export async function handleRetrieve(ctx, id) {
  const entry = ctx.store.get(id);
  if (!entry) return notFound(ctx, id);
  if (ctx.url.searchParams.get('stream') === 'true') {
    if (entry.response.status !== 'completed' && entry.response.status !== 'failed') {
      return ctx.send(400, openaiError('This response is not finished; it cannot be streamed again.', 'invalid_request_error', null));
    }
    const after = Number(ctx.url.searchParams.get('starting_after') ?? -1);
    await ctx.writeStream(200, streamHeaders(ctx), entry.events.filter((e) => e.sequence_number > after).map(frame));
    return;
  }
  return ctx.send(200, entry.response, ctx.extraHeaders);
}

export function handleDelete(ctx, id) {
  const entry = ctx.store.get(id);
  if (!entry) return notFound(ctx, id);
  if (entry.timer) clearTimeout(entry.timer);
  ctx.deleteResponse(id);
  return ctx.send(200, { id, object: 'response.deleted', deleted: true }, ctx.extraHeaders);
}

// Only background responses can be cancelled (400 otherwise). A queued one becomes
// "cancelled"; one already finished (completed, failed, cancelled) is returned unchanged.
export function handleCancel(ctx, id) {
  const entry = ctx.store.get(id);
  if (!entry) return notFound(ctx, id);
  if (!entry.background) {
    return ctx.send(400, openaiError('Only responses created with background=true can be cancelled.', 'invalid_request_error', null));
  }
  if (entry.response.status === 'queued' || entry.response.status === 'in_progress') {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    entry.response = { ...entry.response, status: 'cancelled' };
    ctx.saveResponse(id, entry);
  }
  return ctx.send(200, entry.response, ctx.extraHeaders);
}

export function handleInputItems(ctx, id) {
  const entry = ctx.store.get(id);
  if (!entry) return notFound(ctx, id);
  const q = ctx.url.searchParams;
  const order = q.get('order') ?? 'desc'; // the API's default order is desc (newest first)
  if (order !== 'asc' && order !== 'desc') {
    return ctx.send(400, openaiError(`Invalid value: '${order}'. Supported values are: 'asc' and 'desc'.`, 'invalid_request_error', 'invalid_value', 'order'));
  }
  const limit = Math.min(100, Math.max(1, Number(q.get('limit') ?? 20) || 20));
  let items = order === 'asc' ? entry.inputItems : [...entry.inputItems].reverse();
  const after = q.get('after');
  if (after) items = items.slice(items.findIndex((it) => it.id === after) + 1);
  const data = items.slice(0, limit);
  return ctx.send(200, {
    object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: items.length > limit,
  }, ctx.extraHeaders);
}

export function handleInputTokens(ctx) {
  const { json } = ctx;
  if (!json || typeof json !== 'object' || Array.isArray(json)) {
    return ctx.send(400, openaiError('We could not parse the JSON body of your request.', 'invalid_request_error'));
  }
  const n = usageNumbers(ctx.mock, inputTokensOf(json), 0);
  return ctx.send(200, { object: 'response.input_tokens', input_tokens: n.input }, ctx.extraHeaders);
}
