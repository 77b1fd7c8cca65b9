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

/** Any value JSON can carry. */
export type JSONValue = null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };

/** How a context's bytes become a Python value: a `str`, or `json.loads` of the text. */
export type ContextKind = 'text' | 'json';

/** What Python reports about a loaded context. */
export interface ContextDescription {
  /** Python type name: str, list, dict, ... */
  type: string;
  /** Characters for str, items for list/dict. */
  length: number;
}

/** A cell's result as `rlm_runtime.Runtime.execute` returns it (snake_case, as Python writes it). */
export interface CellOutput {
  stdout: string;
  stderr: string;
  /** Names of the user's variables after the cell. */
  locals: string[];
  /** Short previews of the variables' values, by name (rlm_runtime.preview; at most 100). */
  previews?: { [name: string]: string };
  /** Seconds, measured in Python. */
  execution_time: number;
  final_answer: string | null;
  /** The Python exception's class name when the cell raised, else null. */
  error_type: string | null;
  interrupted: boolean;
}

/** A request made by Python code for the page to answer: a sub-call or a custom tool. */
export type SubcallRequest =
  /** `schema`: a JSON Schema each reply must match (the page checks it). */
  | { op: 'llm_query' | 'rlm_query'; prompts: string[]; model: string | null; schema?: { [keyword: string]: JSONValue } }
  | { op: 'tool'; name: string; args: JSONValue[]; kwargs: { [name: string]: JSONValue } };

/** The page's answer: `results` for queries (one per prompt), `value` for tools, or an error. */
export type SubcallReply = { results: string[] } | { value: JSONValue } | { error: string };

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

/** Which stream a cell wrote to. */
export type OutputStream = 'stdout' | 'stderr';

/** What the running cell printed since the last one (throttled by the runtime; no reply). */
export interface StdioOutput {
  type: 'output';
  stream: OutputStream;
  text: string;
}

/** Any line the process writes. */
export type StdioMessage = StdioReady | StdioResult | StdioError | StdioRequest | StdioOutput;

/**
 * The longest line the proxy reads from a sandbox, in characters. A cell's result holds at most
 * the runtime's output cap per stream (JSON-escaped), and a batched sub-call holds its prompts.
 * Default used by the proxy: 64 Mi characters.
 */
export const DEFAULT_MAX_STDIO_LINE_CHARS = 64 * 1024 * 1024;

function isPlainObject(value: unknown): value is { [key: string]: unknown } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

function parseRequest(value: unknown): SubcallRequest | undefined {
  if (!isPlainObject(value)) return undefined;
  if ((value.op === 'llm_query' || value.op === 'rlm_query') && isStringArray(value.prompts) && (value.model === null || value.model === undefined || typeof value.model === 'string')) {
    const schema = isPlainObject(value.schema) ? { schema: value.schema as { [keyword: string]: JSONValue } } : {};
    return { op: value.op, prompts: value.prompts, model: value.model ?? null, ...schema };
  }
  if (value.op === 'tool' && typeof value.name === 'string' && Array.isArray(value.args) && isPlainObject(value.kwargs)) {
    return { op: 'tool', name: value.name, args: value.args as JSONValue[], kwargs: value.kwargs as { [name: string]: JSONValue } };
  }
  return undefined;
}

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
      const request = parseRequest(value.request);
      return request ? { type: 'request', request } : undefined;
    }
    case 'output':
      return isOutputStream(value.stream) && typeof value.text === 'string' ? { type: 'output', stream: value.stream, text: value.text } : undefined;
    default:
      return undefined;
  }
}

/** Whether a value names one of a cell's two output streams. */
export function isOutputStream(value: unknown): value is OutputStream {
  return value === 'stdout' || value === 'stderr';
}

/** The value of a `result` line as a cell's output, or undefined when it is not shaped like one. */
export function parseCellOutput(value: unknown): CellOutput | undefined {
  if (!isPlainObject(value)) return undefined;
  const { stdout, stderr, locals, execution_time, final_answer, error_type, interrupted } = value;
  if (typeof stdout !== 'string' || typeof stderr !== 'string' || !isStringArray(locals) || typeof execution_time !== 'number') return undefined;
  if (final_answer !== null && typeof final_answer !== 'string') return undefined;
  if (error_type !== null && typeof error_type !== 'string') return undefined;
  if (typeof interrupted !== 'boolean') return undefined;
  const output: CellOutput = { stdout, stderr, locals, execution_time, final_answer, error_type, interrupted };
  if (value.previews !== undefined) {
    if (!isPlainObject(value.previews)) return undefined;
    const entries = Object.entries(value.previews);
    if (!entries.every(([, text]) => typeof text === 'string')) return undefined;
    // fromEntries defines own properties: a name like '__proto__' stays a name.
    output.previews = Object.fromEntries(entries) as { [name: string]: string };
  }
  return output;
}

/** The value of a `context_end` result, or undefined when it is not shaped like one. */
export function parseContextDescription(value: unknown): ContextDescription | undefined {
  if (!isPlainObject(value) || typeof value.type !== 'string' || typeof value.length !== 'number') return undefined;
  return { type: value.type, length: value.length };
}

/** A sub-call reply as the page posted it, or undefined when it has none of the three shapes. */
export function parseSubcallReply(value: unknown): SubcallReply | undefined {
  if (!isPlainObject(value)) return undefined;
  if (typeof value.error === 'string') return { error: value.error };
  if (isStringArray(value.results)) return { results: value.results };
  if ('value' in value) return { value: value.value as JSONValue };
  return undefined;
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
