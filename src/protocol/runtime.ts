/**
 * The Python runtime's contract: what `src/python/rlm_runtime.py` asks of the page (sub-calls
 * and tool calls), what the page answers, what a cell reports, and the one parser of each.
 * Every transport carries these same values — the Pyodide worker's bridge
 * (`./worker.ts`), the isolation frame's relay (`./frame.ts`), the proxy's stdio lines
 * (`./stdio.ts`) and its server-sent events (`./proxy.ts`) — and all of them check them here.
 *
 * Everything Python sends is hostile input: model-written code runs next to the runtime and
 * can send any value on any channel the runtime uses. The parsers accept only the shapes
 * below, within the caps below, and rebuild what they accept from scratch (plain arrays,
 * objects made with own properties only), so nothing of the sender's object survives:
 * no prototype, no accessor, no extra field. They never throw.
 *
 * This module imports nothing.
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

/** Which stream a cell wrote to. */
export type OutputStream = 'stdout' | 'stderr';

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

/** A request made by Python code for the page to answer: sub-calls (one prompt per item) or a custom tool. */
export type SubcallRequest =
  /** `schema`: a JSON Schema each reply must match (the page checks it); results are then JSON texts (or "Error: ..."). */
  | { op: 'llm_query' | 'rlm_query'; prompts: string[]; model: string | null; schema?: { [keyword: string]: JSONValue } | undefined }
  | { op: 'tool'; name: string; args: JSONValue[]; kwargs: { [name: string]: JSONValue } };

/**
 * The page's answer: `results` for queries (one per prompt), `value` for tools, or an error.
 * `interrupted`: the page is stopping the cell that made the request (Python raises
 * KeyboardInterrupt there).
 */
export type SubcallReply = { results: string[] } | { value: JSONValue } | { error: string; interrupted?: true };

/** A custom tool as Python registers it: functions call back to the page, data is bound as a value. */
export interface ToolSpec {
  name: string;
  kind: 'function' | 'data';
  /** JSON text of the value, for data tools. */
  valueJSON?: string;
}

// ------------------------------------------------------------------ caps

/**
 * What one request from Python may carry. Past these it is refused whole, with an error the
 * cell reads: a legitimate cell never comes near them, and the page never walks or passes
 * on more than this for one request.
 */
export const REQUEST_LIMITS = {
  /** Prompts in one `llm_query_batched` / `rlm_query_batched`. */
  maxPrompts: 100_000,
  /** Characters of one prompt (no model reads more; the largest context windows hold ≈8 M). */
  maxPromptChars: 64 * 1024 * 1024,
  /** Characters of all the prompts of one request together. */
  maxRequestChars: 256 * 1024 * 1024,
  /** Characters of a model name or a tool name. */
  maxNameChars: 256,
  /** Nesting of a JSON value (tool arguments, a schema). */
  maxJSONDepth: 64,
  /** Values (every array, object, string, number...) in one JSON value. */
  maxJSONNodes: 1_000_000,
  /** Characters of the strings and keys of one JSON value. */
  maxJSONChars: 64 * 1024 * 1024,
  /** Characters of a sub-call's JSON Schema (the loop's own cap is lower and says so). */
  maxSchemaChars: 256 * 1024,
} as const;

/**
 * What one cell's report may carry. The runtime keeps 4 M characters of each stream
 * (`MAX_OUTPUT_CHARS` in rlm_runtime.py) plus the traceback; a report beyond these caps did not
 * come from the runtime, and is cut (with a note), never refused: the cell did run.
 */
export const CELL_LIMITS = {
  /** Characters of stdout, and of stderr. */
  maxStreamChars: 4_000_000 + 256 * 1024,
  /** Variable names listed. */
  maxLocals: 10_000,
  /** Characters of one variable name, of an exception's class name. */
  maxNameChars: 1_000,
  /** Previews, and characters of each. */
  maxPreviews: 100,
  maxPreviewChars: 1_000,
} as const;

/**
 * Characters of live output the proxy relays for one cell (each chunk counts
 * {@link LIVE_OUTPUT_EVENT_COST} more): a sandbox that floods its channel with output lines
 * gets no further; the cell's result carries its whole capped output anyway.
 */
export const MAX_LIVE_OUTPUT_CHARS = 1024 * 1024;
/** What each live output chunk costs on top of its text, in {@link MAX_LIVE_OUTPUT_CHARS}. */
export const LIVE_OUTPUT_EVENT_COST = 64;

// ------------------------------------------------------------------ parsers

/** A parser's verdict: the rebuilt value, or why it was refused (a sentence for the cell). */
export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

function refuse<T>(reason: string): Parsed<T> {
  return { ok: false, reason };
}

/** A structured-clone or JSON plain object (not an array, not null). */
export function isPlainObject(value: unknown): value is { [key: string]: unknown } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Whether a value names one of a cell's two output streams. */
export function isOutputStream(value: unknown): value is OutputStream {
  return value === 'stdout' || value === 'stderr';
}

/** What a JSON walk may still spend. */
interface JSONBudget {
  nodes: number;
  chars: number;
}

class Overspent extends Error {}

/**
 * A copy of `value` as plain JSON, or a refusal. Numbers that JSON cannot hold (NaN,
 * Infinity) and `undefined` (Python's None through `to_js`) become null, as
 * `JSON.stringify` would write them; anything else that is not JSON (a Map, a Date, bytes, a
 * class instance, a cycle) is refused.
 */
export function parseJSONValue(value: unknown, maxDepth: number = REQUEST_LIMITS.maxJSONDepth, maxChars: number = REQUEST_LIMITS.maxJSONChars): Parsed<JSONValue> {
  const budget: JSONBudget = { nodes: REQUEST_LIMITS.maxJSONNodes, chars: maxChars };
  try {
    return { ok: true, value: copyJSON(value, maxDepth, budget) };
  } catch (error) {
    return refuse(error instanceof Overspent ? error.message : 'it is not a JSON value');
  }
}

function copyJSON(value: unknown, depth: number, budget: JSONBudget): JSONValue {
  if (--budget.nodes < 0) throw new Overspent(`it holds more than ${REQUEST_LIMITS.maxJSONNodes} values`);
  switch (typeof value) {
    case 'string':
      if ((budget.chars -= value.length) < 0) throw new Overspent('its text is too long');
      return value;
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'boolean':
      return value;
    case 'undefined':
      return null;
    case 'object':
      break;
    default:
      throw new Overspent(`it holds a ${typeof value}, which JSON cannot carry`);
  }
  if (value === null) return null;
  if (depth <= 0) throw new Overspent('it nests too deeply');
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) throw new Overspent('it holds an array of another kind');
    if (value.length > budget.nodes) throw new Overspent(`it holds more than ${REQUEST_LIMITS.maxJSONNodes} values`);
    const out: JSONValue[] = new Array<JSONValue>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = copyJSON(value[i], depth - 1, budget);
    return out;
  }
  if (!isPlainObject(value)) throw new Overspent('it holds an object that JSON cannot carry');
  const entries: [string, JSONValue][] = [];
  for (const key of Object.keys(value)) {
    if ((budget.chars -= key.length) < 0) throw new Overspent('its text is too long');
    entries.push([key, copyJSON(value[key], depth - 1, budget)]);
  }
  // fromEntries defines own properties: a key like '__proto__' stays a key.
  return Object.fromEntries(entries) as { [key: string]: JSONValue };
}

function parseName(value: unknown, what: string): Parsed<string> {
  if (typeof value !== 'string') return refuse(`${what} must be a str, got ${describe(value)}`);
  if (value.length > REQUEST_LIMITS.maxNameChars) return refuse(`${what} is longer than ${REQUEST_LIMITS.maxNameChars} characters`);
  return { ok: true, value };
}

function describe(value: unknown): string {
  if (value === null) return 'None';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function parsePrompts(value: unknown, op: string): Parsed<string[]> {
  const limits = REQUEST_LIMITS;
  if (!Array.isArray(value)) return refuse(`${op} expects a list of str prompts, got ${describe(value)}`);
  if (value.length > limits.maxPrompts) return refuse(`${op} got ${value.length} prompts in one call; at most ${limits.maxPrompts} are taken: send them in several batches`);
  const prompts = new Array<string>(value.length);
  let chars = 0;
  for (let i = 0; i < value.length; i++) {
    const prompt: unknown = value[i];
    if (typeof prompt !== 'string') return refuse(`${op} expects str prompts; prompt ${i} is ${describe(prompt)}`);
    if (prompt.length > limits.maxPromptChars) return refuse(`prompt ${i} of ${op} is ${prompt.length} characters; at most ${limits.maxPromptChars} are taken: split it`);
    chars += prompt.length;
    if (chars > limits.maxRequestChars) return refuse(`the prompts of one ${op} call hold more than ${limits.maxRequestChars} characters: send fewer at a time`);
    prompts[i] = prompt;
  }
  return { ok: true, value: prompts };
}

/**
 * A request from Python, checked field by field and rebuilt: the op from the closed set,
 * prompts that are strings within {@link REQUEST_LIMITS}, a model name or null, a schema that
 * is a plain JSON object, a tool call's name, and its arguments as plain JSON.
 */
export function parseSubcallRequest(value: unknown): Parsed<SubcallRequest> {
  if (!isPlainObject(value)) return refuse(`a request must be an object, got ${describe(value)}`);
  const { op } = value;
  if (op === 'llm_query' || op === 'rlm_query') {
    const prompts = parsePrompts(value.prompts, op);
    if (!prompts.ok) return prompts;
    let model: string | null = null;
    if (value.model !== null && value.model !== undefined) {
      const name = parseName(value.model, 'model');
      if (!name.ok) return name;
      model = name.value;
    }
    if (value.schema === null || value.schema === undefined) return { ok: true, value: { op, prompts: prompts.value, model } };
    const schema = parseJSONValue(value.schema, REQUEST_LIMITS.maxJSONDepth, REQUEST_LIMITS.maxSchemaChars);
    if (!schema.ok) return refuse(`the schema of ${op} was refused: ${schema.reason}`);
    if (!isPlainObject(schema.value)) return refuse(`the schema of ${op} must be a dict (a JSON Schema), got ${describe(schema.value)}`);
    return { ok: true, value: { op, prompts: prompts.value, model, schema: schema.value } };
  }
  if (op === 'tool') {
    const name = parseName(value.name, 'a tool name');
    if (!name.ok) return name;
    const args = parseJSONValue(value.args);
    if (!args.ok) return refuse(`the arguments of tool ${name.value} were refused: ${args.reason}`);
    if (!Array.isArray(args.value)) return refuse(`the arguments of tool ${name.value} must be a list`);
    const kwargs = parseJSONValue(value.kwargs ?? {});
    if (!kwargs.ok) return refuse(`the keyword arguments of tool ${name.value} were refused: ${kwargs.reason}`);
    if (!isPlainObject(kwargs.value)) return refuse(`the keyword arguments of tool ${name.value} must be a dict`);
    return { ok: true, value: { op: 'tool', name: name.value, args: args.value, kwargs: kwargs.value } };
  }
  return refuse(`unknown request op ${typeof op === 'string' ? JSON.stringify(op.slice(0, 40)) : describe(op)}: the page answers llm_query, rlm_query and tool`);
}

/** A sub-call reply as the page posted it, or undefined when it has none of the three shapes. */
export function parseSubcallReply(value: unknown): SubcallReply | undefined {
  if (!isPlainObject(value)) return undefined;
  if (typeof value.error === 'string') return value.interrupted === true ? { error: value.error, interrupted: true } : { error: value.error };
  if (Array.isArray(value.results) && value.results.every((item) => typeof item === 'string')) return { results: [...(value.results as string[])] };
  if ('value' in value) {
    const parsed = parseJSONValue(value.value);
    return parsed.ok ? { value: parsed.value } : undefined;
  }
  return undefined;
}

/** `text` cut to `max` characters, with a note of what was cut. */
function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}\n... [${text.length - max} more characters cut: the report exceeded the runtime's limit]\n`;
}

/**
 * A cell's report, or undefined when it is not shaped like one. Streams, names and previews
 * beyond {@link CELL_LIMITS} are cut; the answer is passed whole (the loop caps it).
 */
export function parseCellOutput(value: unknown): CellOutput | undefined {
  if (!isPlainObject(value)) return undefined;
  const { stdout, stderr, locals, execution_time, final_answer, error_type, interrupted } = value;
  if (typeof stdout !== 'string' || typeof stderr !== 'string' || !Array.isArray(locals) || typeof execution_time !== 'number') return undefined;
  if (final_answer !== null && typeof final_answer !== 'string') return undefined;
  if (error_type !== null && typeof error_type !== 'string') return undefined;
  if (typeof interrupted !== 'boolean') return undefined;
  const names: string[] = [];
  for (const name of locals.slice(0, CELL_LIMITS.maxLocals)) {
    if (typeof name !== 'string') return undefined;
    names.push(name.slice(0, CELL_LIMITS.maxNameChars));
  }
  const output: CellOutput = {
    stdout: cut(stdout, CELL_LIMITS.maxStreamChars),
    stderr: cut(stderr, CELL_LIMITS.maxStreamChars),
    locals: names,
    execution_time: Number.isFinite(execution_time) && execution_time >= 0 ? execution_time : 0,
    final_answer,
    error_type: error_type === null ? null : error_type.slice(0, CELL_LIMITS.maxNameChars),
    interrupted,
  };
  if (value.previews !== undefined && value.previews !== null) {
    if (!isPlainObject(value.previews)) return undefined;
    const entries: [string, string][] = [];
    for (const [name, text] of Object.entries(value.previews).slice(0, CELL_LIMITS.maxPreviews)) {
      if (typeof text !== 'string') return undefined;
      entries.push([name.slice(0, CELL_LIMITS.maxNameChars), text.slice(0, CELL_LIMITS.maxPreviewChars)]);
    }
    // fromEntries defines own properties: a name like '__proto__' stays a name.
    output.previews = Object.fromEntries(entries) as { [name: string]: string };
  }
  return output;
}

/** What Python said about a loaded context, or undefined when it is not shaped like one. */
export function parseContextDescription(value: unknown): ContextDescription | undefined {
  if (!isPlainObject(value) || typeof value.type !== 'string' || typeof value.length !== 'number' || !Number.isFinite(value.length)) return undefined;
  return { type: value.type.slice(0, CELL_LIMITS.maxNameChars), length: value.length };
}
