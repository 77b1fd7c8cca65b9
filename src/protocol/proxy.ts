/**
 * The page ↔ proxy boundary: rlm-web-proxy's HTTP routes, their request and response bodies,
 * and the server-sent events of a running cell, with the one parser of that stream. The proxy
 * (`src/proxy/server.ts`), the page-side client (`src/repl/remote-transport.ts`) and the tests all
 * use this file; it imports nothing from the rest of src (types from `./stdio`, erased).
 *
 * Routes (all but /health need `Authorization: Bearer <token>`):
 *
 *   GET    /health                                  → HealthResponse (public)
 *   GET    /v1/sandboxes                            → SandboxListing (the caller's own)
 *   POST   /v1/sandboxes                  CreateSandboxRequest → 201 SandboxCreated
 *   DELETE /v1/sandboxes/:id                        → DeleteResponse
 *   PUT    /v1/sandboxes/:id/contexts/:index?kind=text|json   raw UTF-8 body → ContextDescription
 *   POST   /v1/sandboxes/:id/variables    SetVariableRequest → OkResponse
 *   POST   /v1/sandboxes/:id/tools        RegisterToolsRequest → OkResponse
 *   POST   /v1/sandboxes/:id/resolve      ResolveRequest → ResolveResponse
 *   POST   /v1/sandboxes/:id/reset                  → OkResponse
 *   POST   /v1/sandboxes/:id/cells        RunCellRequest → text/event-stream of CellEvent
 *   POST   /v1/sandboxes/:id/answers      AnswerRequest → OkResponse (409 when not waiting)
 *   POST   /v1/sandboxes/:id/interrupt              → InterruptResponse
 *
 * Every failure is a JSON ErrorBody with an HTTP status and an ErrorCode.
 */
import {
  isOutputStream,
  parseCellOutput,
  parseSubcallReply,
  parseSubcallRequest,
  type CellOutput,
  type ContextKind,
  type OutputStream,
  type SubcallReply,
  type SubcallRequest,
} from './runtime.js';

export type { CellOutput, ContextDescription, ContextKind, OutputStream, SubcallReply, SubcallRequest } from './runtime.js';
export { LIVE_OUTPUT_EVENT_COST, MAX_LIVE_OUTPUT_CHARS } from './runtime.js';

// ------------------------------------------------------------------ routes

/** The public health check. */
export const HEALTH_PATH = '/health';
/** Create (POST) and list (GET) sandboxes. */
export const SANDBOXES_PATH = '/v1/sandboxes';

/** What can be done to one sandbox, as the last path segment. */
export type SandboxAction = 'contexts' | 'variables' | 'tools' | 'resolve' | 'reset' | 'cells' | 'answers' | 'interrupt';

const ACTIONS: ReadonlySet<string> = new Set<SandboxAction>(['contexts', 'variables', 'tools', 'resolve', 'reset', 'cells', 'answers', 'interrupt']);

/** Sandbox ids are random base64url; the proxy makes 32 characters (24 bytes). */
const SANDBOX_ROUTE = /^\/v1\/sandboxes\/([A-Za-z0-9_-]{16,64})(?:\/([a-z]+)(?:\/(\d{1,6}))?)?$/;

/** The path of a sandbox, or of one of its actions (`index` for contexts). */
export function sandboxPath(id: string, action?: SandboxAction, index?: number): string {
  const base = `${SANDBOXES_PATH}/${encodeURIComponent(id)}`;
  if (action === undefined) return base;
  return index === undefined ? `${base}/${action}` : `${base}/${action}/${index}`;
}

/** The path of a context upload, with its kind. */
export function contextPath(id: string, index: number, kind: ContextKind): string {
  return `${sandboxPath(id, 'contexts', index)}?kind=${kind}`;
}

/** A request path taken apart: which sandbox, which action; undefined when it is not a sandbox route. */
export function parseSandboxPath(path: string): { id: string; action: SandboxAction | undefined; index: number | undefined } | undefined {
  const match = SANDBOX_ROUTE.exec(path);
  if (!match) return undefined;
  const action = match[2];
  if (action !== undefined && !ACTIONS.has(action)) return undefined;
  return { id: match[1]!, action: action as SandboxAction | undefined, index: match[3] === undefined ? undefined : Number(match[3]) };
}

// ------------------------------------------------------------------ bodies

/** GET /health. */
export interface HealthResponse {
  ok: true;
  version: string;
  /** Provider names this proxy offers. */
  providers: string[];
  /** Whether the caller's Origin may use the proxy (a refused page learns why). */
  originAllowed: boolean;
}

/** POST /v1/sandboxes. */
export interface CreateSandboxRequest {
  /** A provider the proxy offers. Default: the proxy's default provider. */
  provider?: string;
}

/** 201 to POST /v1/sandboxes. */
export interface SandboxCreated {
  /** Use it in every sandbox path. */
  id: string;
  provider: string;
  /** Python version in the sandbox. */
  python: string;
  /** How long the sandbox took to start, ms. */
  bootMs: number;
  /** Whether a running cell can be interrupted (KeyboardInterrupt) without killing the sandbox. */
  interruptible: boolean;
  /** The proxy deletes a sandbox idle this long, ms. */
  idleTimeoutMs: number;
  /** The proxy deletes a sandbox this old, ms. */
  maxLifetimeMs: number;
}

/** GET /v1/sandboxes. */
export interface SandboxListing {
  sandboxes: { id: string; provider: string; ageMs: number; idleMs: number; running: boolean }[];
}

/** DELETE /v1/sandboxes/:id. */
export interface DeleteResponse {
  deleted: true;
}

/** A command that only succeeds or fails. */
export interface OkResponse {
  ok: true;
}

/** POST …/variables: binds a JSON value; reserved ones are restored after every cell. */
export interface SetVariableRequest {
  name: string;
  valueJSON: string;
  reserved?: boolean;
}

/** A custom tool: a page-side function, or data (its JSON). */
export interface ToolSpec {
  name: string;
  kind: 'function' | 'data';
  /** JSON text of the value, for data tools. */
  valueJSON?: string;
}

/** POST …/tools. */
export interface RegisterToolsRequest {
  tools: ToolSpec[];
}

/** POST …/resolve: str() of a variable, for FINAL_VAR written in a response's text. */
export interface ResolveRequest {
  name: string;
}

/** 200 to POST …/resolve: null when there is no such variable. */
export interface ResolveResponse {
  value: string | null;
}

/** POST …/cells. */
export interface RunCellRequest {
  code: string;
}

/** POST …/answers: the page's reply to sub-call `seq` of the running cell. */
export interface AnswerRequest {
  seq: number;
  reply: SubcallReply;
}

/** 200 to POST …/interrupt: what happened to the running cell. */
export interface InterruptResponse {
  status: 'interrupted' | 'killed' | 'idle';
}

/** Machine-readable causes of failure, in ErrorBody and in `error` cell events. */
export type ErrorCode =
  | 'unauthorized'
  | 'origin_not_allowed'
  | 'not_found'
  | 'method_not_allowed'
  | 'bad_json'
  | 'bad_request'
  | 'body_too_large'
  | 'body_timeout'
  | 'unknown_provider'
  | 'too_many_sandboxes'
  | 'sandbox_not_found'
  | 'busy'
  | 'not_waiting'
  | 'start_failed'
  | 'python_error'
  | 'crashed'
  | 'killed'
  | 'expired'
  | 'output_too_large'
  | 'internal';

/** Every error response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** Bad input in a request body: the server answers 400 with this message. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

function isPlainObject(value: unknown): value is { [key: string]: unknown } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringField(body: { [key: string]: unknown }, name: string, where = 'the body'): string {
  const value = body[name];
  if (typeof value !== 'string') throw new ProtocolError(`'${name}' in ${where} must be a string.`);
  return value;
}

/** POST /v1/sandboxes's body (empty: the default provider). */
export function parseCreateSandboxRequest(body: unknown): CreateSandboxRequest {
  if (!isPlainObject(body) || body.provider === undefined || body.provider === null) return {};
  if (typeof body.provider !== 'string') throw new ProtocolError("'provider' must be a string.");
  return { provider: body.provider };
}

/** POST …/variables's body. */
export function parseSetVariableRequest(body: unknown): Required<SetVariableRequest> {
  if (!isPlainObject(body)) throw new ProtocolError('The body must be a JSON object.');
  return { name: stringField(body, 'name'), valueJSON: stringField(body, 'valueJSON'), reserved: body.reserved === true };
}

/** POST …/tools's body. */
export function parseRegisterToolsRequest(body: unknown): RegisterToolsRequest {
  if (!isPlainObject(body) || !Array.isArray(body.tools)) throw new ProtocolError("'tools' must be an array.");
  return {
    tools: body.tools.map((tool: unknown, i) => {
      if (!isPlainObject(tool)) throw new ProtocolError(`tools[${i}] must be an object.`);
      const spec: ToolSpec = { name: stringField(tool, 'name', `tools[${i}]`), kind: tool.kind === 'data' ? 'data' : 'function' };
      if (typeof tool.valueJSON === 'string') spec.valueJSON = tool.valueJSON;
      return spec;
    }),
  };
}

/** POST …/resolve's body. */
export function parseResolveRequest(body: unknown): ResolveRequest {
  if (!isPlainObject(body)) throw new ProtocolError('The body must be a JSON object.');
  return { name: stringField(body, 'name') };
}

/** POST …/cells's body. */
export function parseRunCellRequest(body: unknown): RunCellRequest {
  if (!isPlainObject(body)) throw new ProtocolError('The body must be a JSON object.');
  return { code: stringField(body, 'code') };
}

/** POST …/answers's body; a reply of no known shape becomes an error reply for Python. */
export function parseAnswerRequest(body: unknown): AnswerRequest {
  if (!isPlainObject(body) || typeof body.seq !== 'number' || !Number.isInteger(body.seq)) throw new ProtocolError("'seq' must be an integer.");
  const reply = parseSubcallReply(body.reply);
  if (reply) return { seq: body.seq, reply };
  return { seq: body.seq, reply: { error: 'the page sent an answer of no known shape' } };
}

/** An error response's body, whatever the proxy (or something in front of it) sent. */
export function parseErrorBody(body: unknown, status: number, statusText = ''): { code: string; message: string } {
  const error = isPlainObject(body) && isPlainObject(body.error) ? body.error : {};
  return {
    code: typeof error.code === 'string' ? error.code : `http_${status}`,
    message: typeof error.message === 'string' ? error.message : statusText || `HTTP ${status}`,
  };
}

// ------------------------------------------------------------------ cell events (SSE)

/**
 * The events of POST …/cells, in order: any number of `request` and `output` (what the cell
 * prints while it runs, at most {@link MAX_LIVE_OUTPUT_CHARS} a cell), then one `result` or `error`.
 */
export type CellEvent =
  | { type: 'request'; data: { seq: number; request: SubcallRequest } }
  | { type: 'output'; data: { stream: OutputStream; text: string } }
  | { type: 'result'; data: CellOutput }
  | { type: 'error'; data: { code: ErrorCode | string; message: string } };

/** The proxy sends this comment every HEARTBEAT_MS so that idle intermediaries keep the stream open. */
export const SSE_HEARTBEAT = ': ping\n\n';
/** How often the heartbeat is sent, ms. */
export const HEARTBEAT_MS = 15_000;

/** One event as it goes on the wire. */
export function formatCellEvent(event: CellEvent): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`;
}

function toCellEvent(type: string, data: string): CellEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new ProtocolError(`The proxy sent a '${type}' event whose data is not JSON.`);
  }
  if (!isPlainObject(value)) throw new ProtocolError(`The proxy sent a '${type}' event whose data is not an object.`);
  if (type === 'request') {
    if (typeof value.seq !== 'number' || !Number.isInteger(value.seq)) throw new ProtocolError('The proxy sent a request event without seq.');
    // The proxy checked it, but what it relays was written by code in the sandbox: checked again here.
    const request = parseSubcallRequest(value.request);
    if (!request.ok) throw new ProtocolError(`The proxy sent a request event whose request is not one: ${request.reason}.`);
    return { type, data: { seq: value.seq, request: request.value } };
  }
  if (type === 'output') {
    if (!isOutputStream(value.stream) || typeof value.text !== 'string') throw new ProtocolError('The proxy sent an output event without a stream (stdout or stderr) and a text.');
    return { type, data: { stream: value.stream, text: value.text } };
  }
  if (type === 'result') {
    const output = parseCellOutput(value);
    if (!output) throw new ProtocolError('The proxy sent a result event that is not a cell result.');
    return { type, data: output };
  }
  if (type === 'error') return { type, data: { code: String(value.code ?? 'unknown'), message: String(value.message ?? '') } };
  return undefined; // an event type from a newer proxy: ignored
}

/**
 * The one parser of a cell's event stream. Feed it decoded text as it arrives; it returns the
 * complete events so far. It looks only at new text (a large event costs one join, not a
 * rescan per chunk) and refuses an event longer than `maxEventChars`.
 *
 * @example
 * const parser = new CellEventParser();
 * for await (const text of body.pipeThrough(new TextDecoderStream())) {
 *   for (const event of parser.push(text)) handle(event);
 * }
 */
export class CellEventParser {
  /** Pieces of the line being read. */
  private pieces: string[] = [];
  private pieceChars = 0;
  private eventChars = 0;
  private type = 'message';
  private data: string[] = [];
  /** A '\r' ended the last chunk: a '\n' starting the next one belongs to it. */
  private afterCR = false;

  /** @param maxEventChars Largest event accepted. Default: 256 Mi characters. */
  constructor(private readonly maxEventChars = 256 * 1024 * 1024) {}

  /** The events completed by `chunk`. Throws ProtocolError on a malformed or oversized event. */
  push(chunk: string): CellEvent[] {
    const events: CellEvent[] = [];
    let start = 0;
    if (this.afterCR && chunk.startsWith('\n')) start = 1;
    this.afterCR = false;
    while (start < chunk.length) {
      const lf = chunk.indexOf('\n', start);
      const cr = chunk.indexOf('\r', start);
      const end = lf === -1 ? cr : cr === -1 ? lf : Math.min(lf, cr);
      if (end === -1) {
        this.pieces.push(chunk.slice(start));
        this.pieceChars += chunk.length - start;
        if (this.eventChars + this.pieceChars > this.maxEventChars) throw new ProtocolError(`The proxy sent an event longer than ${this.maxEventChars} characters.`);
        break;
      }
      this.pieces.push(chunk.slice(start, end));
      const line = this.pieces.length === 1 ? this.pieces[0]! : this.pieces.join('');
      this.pieces = [];
      this.pieceChars = 0;
      const event = this.line(line);
      if (event) events.push(event);
      if (chunk[end] !== '\r') start = end + 1;
      else if (end + 1 === chunk.length) {
        this.afterCR = true;
        start = end + 1;
      } else start = chunk[end + 1] === '\n' ? end + 2 : end + 1;
    }
    return events;
  }

  private line(line: string): CellEvent | undefined {
    if (line === '') {
      const { type, data } = this;
      this.type = 'message';
      this.data = [];
      this.eventChars = 0;
      return data.length === 0 ? undefined : toCellEvent(type, data.join('\n'));
    }
    this.eventChars += line.length + 1;
    if (this.eventChars > this.maxEventChars) throw new ProtocolError(`The proxy sent an event longer than ${this.maxEventChars} characters.`);
    if (line.startsWith(':')) return undefined; // a comment: the heartbeat
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.type = value;
    else if (field === 'data') this.data.push(value);
    return undefined;
  }
}
