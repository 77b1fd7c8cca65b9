/**
 * The proxy ↔ Python boundary: JSON lines between rlm-web-proxy and `rlm_stdio.py` running in
 * a sandbox. The proxy writes one command per line on the process's stdin; the process writes
 * one reply per command (and, while a cell runs, sub-call requests) on a private duplicate of
 * its stdout. Both sides are described here; `src/python/rlm_stdio.py` is the Python side.
 *
 * Everything the process writes is hostile input: the cell's code runs in that process and can
 * write to the protocol descriptor itself. `parseStdioMessage` checks every field, and the
 * proxy caps the length of a line (`DEFAULT_MAX_STDIO_LINE_CHARS`).
 *
 * This module imports nothing: the proxy (Node) and tests share it.
 */

import {
  isOutputStream,
  isPlainObject,
  parseCellOutput,
  parseContextDescription,
  parseSubcallRequest,
  type CellOutput,
  type ContextDescription,
  type ContextKind,
  type JSONValue,
  type OutputStream,
  type SubcallReply,
  type SubcallRequest,
} from './runtime.js';

// The runtime's contract is defined once, in ./runtime; this boundary carries it as JSON lines.
export type { CellOutput, ContextDescription, ContextKind, JSONValue, OutputStream, SubcallReply, SubcallRequest } from './runtime.js';
export { isOutputStream, parseCellOutput, parseContextDescription, parseSubcallReply } from './runtime.js';

// ------------------------------------------------------------------ proxy → Python

/** Commands and the value each one's `result` line carries. */
export interface StdioCommandResults {
  /** Runs a cell; sub-call requests may come before the result. */
  execute: CellOutput;
  /** Starts a context upload; `context_chunk` lines follow. */
  context_begin: true;
  /** Binds the uploaded context. */
  context_end: ContextDescription;
  /** Binds a context from files written through the provider's file API (deleted once read). */
  context_file: ContextDescription;
  /** Drops a half-uploaded context (with `prefix`: deletes the files written under it). */
  context_abort: true;
  set_variable: true;
  register_tool: true;
  /** str() of a variable (for FINAL_VAR in a response's text), or null. */
  resolve_variable: string | null;
  /** Forgets every variable, tool, context, module and file. */
  reset: true;
  ping: true;
}

/** The name of a command that gets a reply. */
export type StdioCommandName = keyof StdioCommandResults;

/** The fields of each command besides `id` and `cmd`. */
export interface StdioCommandFields {
  execute: { code: string };
  context_begin: { index: number; kind: ContextKind };
  context_end: Record<never, never>;
  context_file: { index: number; kind: ContextKind; paths: string[] };
  context_abort: { prefix?: string };
  set_variable: { name: string; value_json: string; reserved: boolean };
  register_tool: { name: string; kind: 'function' | 'data'; value_json: string | null };
  resolve_variable: { name: string };
  reset: Record<never, never>;
  ping: Record<never, never>;
}

/** One command line with a reply: `{"id": 1, "cmd": "execute", "code": "..."}`. */
export type StdioCommand = { [C in StdioCommandName]: { id: number; cmd: C } & StdioCommandFields[C] }[StdioCommandName];

/** A piece of a context upload (no reply): base64 of a multiple of 3 bytes, except the last. */
export interface StdioContextChunk {
  cmd: 'context_chunk';
  data: string;
}

/** Any line the proxy writes: a command, a context chunk, or the answer to a sub-call. */
export type StdioLineOut = StdioCommand | StdioContextChunk | SubcallReply;

/** One protocol line (with its newline). */
export function encodeStdioLine(line: StdioLineOut): string {
  return `${JSON.stringify(line)}\n`;
}

// ------------------------------------------------------------------ Python → proxy

/** Once, when the loop starts: the process's pid (as it sees itself) and Python version. */
export interface StdioReady {
  type: 'ready';
  pid: number;
  python: string;
}

/** The reply to command `id`. Its value's type depends on the command (StdioCommandResults). */
export interface StdioResult {
  type: 'result';
  id: number;
  value: JSONValue;
}

/** Command `id` failed in Python. */
export interface StdioError {
  type: 'error';
  id: number;
  error: string;
  /** The Python exception's class name. */
  error_type: string;
}

/** A sub-call from the running cell; the process blocks until the proxy writes the reply. */
export interface StdioRequest {
  type: 'request';
  request: SubcallRequest;
}

/**
 * A `request` line whose request was refused (see `parseSubcallRequest`): the process still
 * waits for a reply, so the proxy answers it with an error that says why.
 */
export interface StdioRefused {
  type: 'refused';
  reason: string;
}

/** What the running cell printed since the last one (throttled by the runtime; no reply). */
export interface StdioOutput {
  type: 'output';
  stream: OutputStream;
  text: string;
}

/** Any line the process writes. */
export type StdioMessage = StdioReady | StdioResult | StdioError | StdioRequest | StdioRefused | StdioOutput;

/**
 * The longest line the proxy reads from a sandbox, in characters. A cell's result holds at most
 * the runtime's output cap per stream (JSON-escaped), and a batched sub-call holds its prompts.
 * Default used by the proxy: 64 Mi characters.
 */
export const DEFAULT_MAX_STDIO_LINE_CHARS = 64 * 1024 * 1024;

/**
 * One line from the process as a typed message, or undefined when it is not one (bad JSON, an
 * unknown type, a missing or mistyped field). Never throws.
 */
export function parseStdioMessage(line: string): StdioMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isPlainObject(value)) return undefined;
  switch (value.type) {
    case 'ready':
      return typeof value.pid === 'number' && typeof value.python === 'string' ? { type: 'ready', pid: value.pid, python: value.python } : undefined;
    case 'result':
      return typeof value.id === 'number' && 'value' in value ? { type: 'result', id: value.id, value: value.value as JSONValue } : undefined;
    case 'error':
      return typeof value.id === 'number' && typeof value.error === 'string'
        ? { type: 'error', id: value.id, error: value.error, error_type: typeof value.error_type === 'string' ? value.error_type : 'Error' }
        : undefined;
    case 'request': {
      const request = parseSubcallRequest(value.request);
      return request.ok ? { type: 'request', request: request.value } : { type: 'refused', reason: request.reason };
    }
    case 'output':
      return isOutputStream(value.stream) && typeof value.text === 'string' ? { type: 'output', stream: value.stream, text: value.text } : undefined;
    default:
      return undefined;
  }
}

const RESULT_PARSERS: { [C in StdioCommandName]: (value: JSONValue) => StdioCommandResults[C] | undefined } = {
  execute: parseCellOutput,
  context_begin: (value) => (value === true ? true : undefined),
  context_end: parseContextDescription,
  context_file: parseContextDescription,
  context_abort: (value) => (value === true ? true : undefined),
  set_variable: (value) => (value === true ? true : undefined),
  register_tool: (value) => (value === true ? true : undefined),
  resolve_variable: (value) => (value === null || typeof value === 'string' ? value : undefined),
  reset: (value) => (value === true ? true : undefined),
  ping: (value) => (value === true ? true : undefined),
};

/** A `result` line's value as the result of command `cmd`, or undefined when it has the wrong shape. */
export function parseCommandResult<C extends StdioCommandName>(cmd: C, value: JSONValue): StdioCommandResults[C] | undefined {
  return RESULT_PARSERS[cmd](value) as StdioCommandResults[C] | undefined;
}
