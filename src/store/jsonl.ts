/**
 * JSONL export and import in the reference implementation's log format (the `rlms` Python
 * package's RLMLogger), so that its visualizer opens our runs and we open its logs.
 *
 * One metadata line, then one line per iteration. Fields of the reference format keep its
 * names, types and units (times in seconds). What only rlm-web records (run status, usage
 * per iteration, cached tokens, reasoning, error types) rides along in `rlm_web` objects,
 * which the reference tools ignore and which make our own logs round-trip exactly.
 */
import { StorageError } from '../core/errors';
import { newId } from '../core/ids';
import { redactOptions, redactURLs } from '../core/redact';
import type {
  AnswerValidationRecord,
  ChatMessage,
  ChatRole,
  CodeBlockRecord,
  EndReason,
  IterationRecord,
  LMUsage,
  ModelUsage,
  RecordedSchema,
  RunConfig,
  RunStatus,
  SubcallRecord,
  Trajectory,
  UsageSummary,
} from '../core/types';
import { approximateSize, summarizeRun, toStorageError, type RunSummary, type TrajectoryStore } from './types';

type Json = Record<string, unknown>;

/** Version of the `rlm_web` extension objects. */
const FORMAT = 1;

// ------------------------------------------------------------------ export

/** Seconds, rounded to the microsecond so that ms → s → ms → s is stable. */
function seconds(ms: number): number {
  return Math.round(ms * 1000) / 1e6;
}

function usageSummaryToJSON(usage: UsageSummary): Json {
  const models: Json = {};
  for (const [model, m] of Object.entries(usage.models)) {
    models[model] = {
      total_calls: m.calls,
      total_input_tokens: m.inputTokens,
      total_output_tokens: m.outputTokens,
      ...(m.costUSD ? { total_cost: m.costUSD } : {}),
      total_cached_input_tokens: m.cachedInputTokens,
    };
  }
  return { model_usage_summaries: models, ...(usage.costUSD ? { total_cost: usage.costUSD } : {}) };
}

/** Backend options as the reference's `backend_kwargs`: the model is `model_name` there. */
function backendKwargs(options: Record<string, unknown>): Json {
  const { model, ...rest } = options;
  return model === undefined ? rest : { model_name: model, ...rest };
}

function metadataToJSON(t: Trajectory): Json {
  const c = t.config;
  const others = c.otherBackends.length > 0;
  return {
    type: 'metadata',
    timestamp: t.startedAt,
    root_model: c.rootModel,
    max_depth: c.maxDepth,
    max_iterations: c.maxIterations,
    backend: c.backend,
    // Redacted again: a run stored by an older version, or imported, may still hold a secret.
    backend_kwargs: backendKwargs(redactOptions(c.backendOptions)),
    environment_type: c.environment,
    environment_kwargs: redactOptions(c.environmentOptions),
    other_backends: others ? c.otherBackends.map((b) => b.backend) : null,
    other_backend_kwargs: others ? c.otherBackends.map((b) => backendKwargs(redactOptions(b.backendOptions))) : null,
    rlm_web: {
      format: FORMAT,
      id: t.id,
      status: t.status,
      endReason: t.endReason,
      response: t.response,
      error: t.error === undefined ? undefined : redactURLs(t.error),
      rootPrompt: t.rootPrompt,
      context: t.context,
      usage: t.usage,
      executionTimeMs: t.executionTimeMs,
      depth: c.depth,
      maxBudget: c.maxBudget,
      maxTimeMs: c.maxTimeMs,
      maxTokens: c.maxTokens,
      maxErrors: c.maxErrors,
      schema: t.schema,
    },
  };
}

function subcallToJSON(s: SubcallRecord): Json {
  const out: Json = {
    root_model: s.model,
    prompt: s.prompt,
    response: s.response,
    usage_summary: usageSummaryToJSON(s.usage),
    execution_time: seconds(s.executionTimeMs),
  };
  if (s.error !== undefined) out.error = s.error;
  if (s.trajectory) {
    const { type: _type, ...runMetadata } = metadataToJSON(s.trajectory);
    out.metadata = { run_metadata: runMetadata, iterations: s.trajectory.iterations.map(iterationToJSON) };
  }
  const ours: Json = { kind: s.kind };
  if (s.callId !== undefined) ours.callId = s.callId;
  if (s.index !== undefined) ours.index = s.index;
  out.rlm_web = ours;
  return out;
}

function codeBlockToJSON(b: CodeBlockRecord): Json {
  // The reference records variables as {name: value}; ours are short previews (null without one).
  const locals: Json = {};
  for (const name of b.locals) locals[name] = b.previews?.[name] ?? null;
  return {
    code: b.code,
    result: {
      stdout: b.stdout,
      stderr: b.stderr,
      locals,
      execution_time: seconds(b.executionTimeMs),
      rlm_calls: b.subcalls.map(subcallToJSON),
      final_answer: b.finalAnswer,
      rlm_web: { errorType: b.errorType, interrupted: b.interrupted },
    },
  };
}

function iterationToJSON(it: IterationRecord): Json {
  return {
    type: 'iteration',
    iteration: it.iteration,
    timestamp: it.timestamp,
    prompt: it.prompt.map((m) => ({ role: m.role, content: m.content })),
    response: it.response,
    code_blocks: it.codeBlocks.map(codeBlockToJSON),
    final_answer: it.finalAnswer,
    iteration_time: seconds(it.iterationTimeMs),
    rlm_web: { usage: it.usage, reasoning: it.reasoning, validation: it.validation, ...(it.partial ? { partial: true } : {}) },
  };
}

/**
 * The JSONL lines of a trajectory (without their newlines), one at a time: a metadata line,
 * then one line per iteration. Only one line exists as a string at any moment.
 */
export function* generateJSONL(trajectory: Trajectory): Generator<string, void, undefined> {
  yield JSON.stringify(metadataToJSON(trajectory));
  for (const iteration of trajectory.iterations) yield JSON.stringify(iterationToJSON(iteration));
}

/**
 * A trajectory as JSONL text in the reference implementation's log format.
 *
 * @example
 * const text = toJSONL(result.trajectory);
 */
export function toJSONL(trajectory: Trajectory): string {
  let out = '';
  for (const line of generateJSONL(trajectory)) out += `${line}\n`;
  return out;
}

/**
 * A trajectory as a JSONL Blob, built line by line (no single string of the whole log):
 * the way to offer a large run for download.
 *
 * @example
 * const url = URL.createObjectURL(toJSONLBlob(result.trajectory));
 */
export function toJSONLBlob(trajectory: Trajectory): Blob {
  const parts: string[] = [];
  for (const line of generateJSONL(trajectory)) parts.push(line, '\n');
  return new Blob(parts, { type: 'application/x-ndjson' });
}

/** A trajectory as a stream of UTF-8 JSONL, encoded one line per pull. */
export function toJSONLStream(trajectory: Trajectory): ReadableStream<Uint8Array> {
  const lines = generateJSONL(trajectory);
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = lines.next();
      if (next.done) controller.close();
      else controller.enqueue(encoder.encode(`${next.value}\n`));
    },
    cancel() {
      lines.return(undefined);
    },
  });
}

// ------------------------------------------------------------------ reading lines

/** What `importJSONL` and `readJSONL` read: text, a File or Blob, or a byte stream. */
export type JSONLSource = string | Blob | ReadableStream<Uint8Array>;

/**
 * The lines of a source, decoded as they arrive. A line longer than a chunk is joined from
 * its pieces once; the whole source never becomes one string.
 */
export async function* readLines(source: JSONLSource): AsyncGenerator<string, void, undefined> {
  for await (const line of cappedLines(source, Infinity)) if (typeof line === 'string') yield line;
}

/** A line longer than the limit: its text was dropped as it arrived, only its length is known. */
interface LineTooLong {
  tooLong: number;
}

/** Lines as readLines reads them, except that one over `maxChars` is never joined: it becomes a LineTooLong. */
async function* cappedLines(source: JSONLSource, maxChars: number): AsyncGenerator<string | LineTooLong, void, undefined> {
  if (typeof source === 'string') {
    let start = 0;
    while (start < source.length) {
      let end = source.indexOf('\n', start);
      if (end === -1) end = source.length;
      yield end - start > maxChars ? { tooLong: end - start } : stripCR(source.slice(start, end));
      start = end + 1;
    }
    return;
  }
  const bytes = source instanceof ReadableStream ? source : source.stream();
  // TextDecoderStream's declared input type is narrower than what it accepts.
  const reader = bytes.pipeThrough(new TextDecoderStream() as unknown as TransformStream<Uint8Array, string>).getReader();
  let pieces: string[] = [];
  /** Characters of the current line so far (counted on after its pieces were dropped). */
  let length = 0;
  const finish = (): string | LineTooLong => {
    const line = length > maxChars ? { tooLong: length } : stripCR(pieces.length === 1 ? pieces[0]! : pieces.join(''));
    pieces = [];
    length = 0;
    return line;
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let start = 0;
      for (;;) {
        const end = value.indexOf('\n', start);
        const stop = end === -1 ? value.length : end;
        length += stop - start;
        if (length > maxChars) pieces = [];
        else if (stop > start) pieces.push(value.slice(start, stop));
        if (end === -1) break;
        yield finish();
        start = end + 1;
      }
    }
    if (length > 0) yield finish();
  } finally {
    reader.releaseLock();
  }
}

function stripCR(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

// ------------------------------------------------------------------ import: lines → records

/** A line that could not be read; it was skipped. */
export interface JSONLLineError {
  /** 1-based line number in the source. */
  line: number;
  message: string;
}

class MalformedLine extends Error {}

/** Longest line read by default, in characters (V8 strings stop at 2^29 − 24). */
const DEFAULT_MAX_LINE_CHARS = 256 * 1024 * 1024;
/** Deepest nesting of arrays and objects read in a line: our own logs nest ≈10 levels per child RLM. */
const MAX_DEPTH = 256;

/** Options of readJSONL and importJSONL. */
export interface JSONLReadOptions {
  /** A longer line is skipped and reported as a line error, never joined into one string. Default: 256 Mi characters. */
  maxLineChars?: number | undefined;
}

/** Whether `value` nests arrays and objects deeper than `max`; iterative, so no depth can overflow the stack. */
function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (typeof item !== 'object' || item === null) continue;
    if (depth >= max) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}

/** Sets an own data property whatever the key, so that a key like '__proto__' stays data. */
function setOwn<T>(into: Record<string, T>, key: string, value: T): T {
  Object.defineProperty(into, key, { value, writable: true, enumerable: true, configurable: true });
  return value;
}

function fail(message: string): never {
  throw new MalformedLine(message);
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function objectOr(value: unknown, what: string): Json | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) fail(`${what} must be an object`);
  return value;
}

function str(value: unknown, what: string, fallback?: string): string {
  if (typeof value === 'string') return value;
  if ((value === undefined || value === null) && fallback !== undefined) return fallback;
  return fail(`${what} must be a string`);
}

/** Reference prompts and responses may be dicts or lists: keep them as JSON text. */
function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined || value === null) return '';
  return JSON.stringify(value);
}

function num(value: unknown, what: string, fallback?: number): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if ((value === undefined || value === null) && fallback !== undefined) return fallback;
  return fail(`${what} must be a number`);
}

function ms(secondsValue: unknown, what: string): number {
  return num(secondsValue, what, 0) * 1000;
}

function array(value: unknown, what: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) fail(`${what} must be an array`);
  return value;
}

/** `final_answer`: a string, null, or the legacy `[kind, answer]` pair. */
function finalAnswer(value: unknown, what: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.length > 0) return text(value[value.length - 1]);
  return fail(`${what} must be a string or null`);
}

function usageFromJSON(value: unknown, what: string): UsageSummary {
  const u = objectOr(value, what) ?? {};
  const summaries = objectOr(u.model_usage_summaries, `${what}.model_usage_summaries`) ?? {};
  const usage: UsageSummary = { models: {}, calls: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, costUSD: 0 };
  for (const [model, raw] of Object.entries(summaries)) {
    const m = objectOr(raw, `${what} for ${model}`) ?? {};
    const entry: ModelUsage = {
      calls: num(m.total_calls, 'total_calls', 0),
      inputTokens: num(m.total_input_tokens, 'total_input_tokens', 0),
      outputTokens: num(m.total_output_tokens, 'total_output_tokens', 0),
      cachedInputTokens: num(m.total_cached_input_tokens, 'total_cached_input_tokens', 0),
      costUSD: num(m.total_cost, 'total_cost', 0),
    };
    setOwn(usage.models, model, entry);
    addModelUsage(usage, entry);
  }
  // The reference's run-level total_cost, when it is all there is.
  if (usage.costUSD === 0 && typeof u.total_cost === 'number') usage.costUSD = u.total_cost;
  return usage;
}

/** Our own run-level usage (rlm_web.usage), checked and copied: its model names stay data. */
function ourUsageFromJSON(value: Json): UsageSummary {
  const models: Record<string, ModelUsage> = {};
  for (const [model, raw] of Object.entries(objectOr(value.models, 'rlm_web.usage.models') ?? {})) {
    const m = objectOr(raw, `rlm_web.usage.models for ${model}`) ?? {};
    setOwn(models, model, {
      calls: num(m.calls, 'calls', 0),
      inputTokens: num(m.inputTokens, 'inputTokens', 0),
      outputTokens: num(m.outputTokens, 'outputTokens', 0),
      cachedInputTokens: num(m.cachedInputTokens, 'cachedInputTokens', 0),
      costUSD: num(m.costUSD, 'costUSD', 0),
    });
  }
  return {
    models,
    calls: num(value.calls, 'rlm_web.usage.calls', 0),
    inputTokens: num(value.inputTokens, 'rlm_web.usage.inputTokens', 0),
    outputTokens: num(value.outputTokens, 'rlm_web.usage.outputTokens', 0),
    cachedInputTokens: num(value.cachedInputTokens, 'rlm_web.usage.cachedInputTokens', 0),
    costUSD: num(value.costUSD, 'rlm_web.usage.costUSD', 0),
  };
}

function addModelUsage(into: UsageSummary, m: ModelUsage): void {
  into.calls += m.calls;
  into.inputTokens += m.inputTokens;
  into.outputTokens += m.outputTokens;
  into.cachedInputTokens += m.cachedInputTokens;
  into.costUSD += m.costUSD;
}

function addUsage(into: UsageSummary, usage: UsageSummary): void {
  for (const [model, m] of Object.entries(usage.models)) {
    const entry = Object.hasOwn(into.models, model) ? into.models[model]! : setOwn(into.models, model, { calls: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, costUSD: 0 });
    entry.calls += m.calls;
    entry.inputTokens += m.inputTokens;
    entry.outputTokens += m.outputTokens;
    entry.cachedInputTokens += m.cachedInputTokens;
    entry.costUSD += m.costUSD;
    addModelUsage(into, m);
  }
}

function lmUsageFromJSON(value: unknown): LMUsage {
  const u = objectOr(value, 'rlm_web.usage') ?? {};
  const usage: LMUsage = {
    inputTokens: num(u.inputTokens, 'usage.inputTokens', 0),
    outputTokens: num(u.outputTokens, 'usage.outputTokens', 0),
    cachedInputTokens: num(u.cachedInputTokens, 'usage.cachedInputTokens', 0),
  };
  if (typeof u.costUSD === 'number') usage.costUSD = u.costUSD;
  return usage;
}

const ROLES = new Set<ChatRole>(['system', 'user', 'assistant']);

function promptFromJSON(value: unknown): ChatMessage[] {
  if (typeof value === 'string') return [{ role: 'user', content: value }];
  if (isObject(value)) return [{ role: 'user', content: text(value) }];
  return array(value, 'prompt').map((m, i) => {
    if (!isObject(m)) fail(`prompt[${i}] must be a {role, content} object`);
    const role = ROLES.has(m.role as ChatRole) ? (m.role as ChatRole) : 'user';
    return { role, content: text(m.content) };
  });
}

function subcallFromJSON(value: unknown, what: string): SubcallRecord {
  if (!isObject(value)) fail(`${what} must be an object`);
  const ours = objectOr(value.rlm_web, `${what}.rlm_web`) ?? {};
  const metadata = objectOr(value.metadata, `${what}.metadata`);
  const record: SubcallRecord = {
    kind: ours.kind === 'llm' || ours.kind === 'rlm' ? ours.kind : metadata ? 'rlm' : 'llm',
    model: str(value.root_model, `${what}.root_model`, ''),
    prompt: text(value.prompt),
    response: text(value.response),
    usage: usageFromJSON(value.usage_summary, `${what}.usage_summary`),
    executionTimeMs: ms(value.execution_time, `${what}.execution_time`),
  };
  if (typeof value.error === 'string') record.error = value.error;
  if (typeof ours.callId === 'string') record.callId = ours.callId;
  if (typeof ours.index === 'number' && Number.isInteger(ours.index) && ours.index >= 0) record.index = ours.index;
  if (metadata) {
    const run = readHeader(objectOr(metadata.run_metadata, `${what}.metadata.run_metadata`) ?? {});
    const iterations = array(metadata.iterations, `${what}.metadata.iterations`).map((it, i) => iterationFromJSON(it, `${what}.metadata.iterations[${i}]`));
    const child = startTrajectory(run, undefined, iterations[0]);
    const totals = new RunTotals();
    for (const it of iterations) {
      child.iterations.push(it);
      totals.add(it);
    }
    finishTrajectory(child, run.outcome, totals, 'nested');
    record.trajectory = child;
  }
  return record;
}

/** Our `model`, from the reference's `model_name` (the inverse of backendKwargs). */
function backendOptionsFromJSON(value: unknown, what: string): Record<string, unknown> {
  const { model_name: model, ...rest } = objectOr(value, what) ?? {};
  // The reference logs its kwargs as given: an api_key, a base_url with a key in it.
  return redactOptions(model === undefined ? rest : { model, ...rest });
}

const PREVIEW_CHARS = 200;
const PREVIEW_ITEMS = 6;

/** A short text for a logged variable value (the reference logs whole values, contexts included). */
function previewFromJSON(value: unknown): string {
  if (typeof value === 'string') return value.length <= PREVIEW_CHARS ? value : `${value.slice(0, PREVIEW_CHARS)}... [${value.length} chars]`;
  let shallow = value;
  if (Array.isArray(value) && value.length > PREVIEW_ITEMS) shallow = [...value.slice(0, PREVIEW_ITEMS), `... ${value.length} items`];
  else if (isObject(value)) shallow = Object.fromEntries(Object.entries(value).slice(0, PREVIEW_ITEMS));
  const text = JSON.stringify(shallow) ?? String(value);
  return text.length <= PREVIEW_CHARS ? text : `${text.slice(0, PREVIEW_CHARS)}...`;
}

/** Previews of a `locals` dict's values (names logged without a value have none). */
function previewsFromJSON(locals: unknown): Record<string, string> | undefined {
  if (!isObject(locals)) return undefined;
  const previews: Record<string, string> = {};
  for (const [name, value] of Object.entries(locals)) if (value !== null && value !== undefined) previews[name] = previewFromJSON(value);
  return Object.keys(previews).length > 0 ? previews : undefined;
}

function codeBlockFromJSON(value: unknown, what: string): CodeBlockRecord {
  if (!isObject(value)) fail(`${what} must be an object`);
  const result = objectOr(value.result, `${what}.result`) ?? {};
  const ours = objectOr(result.rlm_web, `${what}.result.rlm_web`) ?? {};
  const locals = Array.isArray(result.locals)
    ? result.locals.map((name) => text(name))
    : Object.keys(objectOr(result.locals, `${what}.result.locals`) ?? {});
  const previews = previewsFromJSON(result.locals);
  return {
    code: str(value.code, `${what}.code`),
    stdout: str(result.stdout, `${what}.result.stdout`, ''),
    stderr: str(result.stderr, `${what}.result.stderr`, ''),
    locals,
    ...(previews ? { previews } : {}),
    executionTimeMs: ms(result.execution_time, `${what}.result.execution_time`),
    finalAnswer: finalAnswer(result.final_answer, `${what}.result.final_answer`),
    errorType: typeof ours.errorType === 'string' ? ours.errorType : null,
    interrupted: ours.interrupted === true,
    subcalls: array(result.rlm_calls ?? result.llm_calls, `${what}.result.rlm_calls`).map((s, i) => subcallFromJSON(s, `${what}.result.rlm_calls[${i}]`)),
  };
}

function iterationFromJSON(value: unknown, what = 'iteration line'): IterationRecord {
  if (!isObject(value)) fail(`${what} must be an object`);
  const ours = objectOr(value.rlm_web, `${what}.rlm_web`) ?? {};
  const codeBlocks = array(value.code_blocks, `${what}.code_blocks`).map((b, i) => codeBlockFromJSON(b, `code_blocks[${i}]`));
  const iteration = num(value.iteration, `${what}.iteration`);
  if (!Number.isInteger(iteration) || iteration < 1) fail(`${what}.iteration must be a positive integer`);
  // The reference falls back to the cells' time when iteration_time is missing.
  const time = typeof value.iteration_time === 'number' ? value.iteration_time * 1000 : codeBlocks.reduce((n, b) => n + b.executionTimeMs, 0);
  const record: IterationRecord = {
    iteration,
    timestamp: str(value.timestamp, `${what}.timestamp`, ''),
    prompt: promptFromJSON(value.prompt),
    response: text(value.response),
    codeBlocks,
    finalAnswer: finalAnswer(value.final_answer, `${what}.final_answer`),
    iterationTimeMs: time,
    usage: lmUsageFromJSON(ours.usage),
  };
  if (typeof ours.reasoning === 'string') record.reasoning = ours.reasoning;
  if (isObject(ours.validation)) record.validation = ours.validation as unknown as AnswerValidationRecord;
  if (ours.partial === true) record.partial = true;
  return record;
}

function configFromJSON(meta: Json, ours: Json): RunConfig {
  const names = array(meta.other_backends, 'other_backends');
  const kwargs = array(meta.other_backend_kwargs, 'other_backend_kwargs');
  const config: RunConfig = {
    rootModel: str(meta.root_model, 'root_model', 'unknown'),
    backend: str(meta.backend, 'backend', 'unknown'),
    backendOptions: backendOptionsFromJSON(meta.backend_kwargs, 'backend_kwargs'),
    otherBackends: names.map((name, i) => ({ backend: text(name), backendOptions: backendOptionsFromJSON(kwargs[i], 'other_backend_kwargs[i]') })),
    environment: str(meta.environment_type, 'environment_type', 'unknown'),
    // The reference logs its kwargs as given: keys and credentials in URLs stay out of the store.
    environmentOptions: redactOptions(objectOr(meta.environment_kwargs, 'environment_kwargs')),
    maxDepth: num(meta.max_depth, 'max_depth', 1),
    maxIterations: num(meta.max_iterations, 'max_iterations', 30),
    depth: num(ours.depth, 'rlm_web.depth', 0),
  };
  if (typeof ours.maxBudget === 'number') config.maxBudget = ours.maxBudget;
  if (typeof ours.maxTimeMs === 'number') config.maxTimeMs = ours.maxTimeMs;
  if (typeof ours.maxTokens === 'number') config.maxTokens = ours.maxTokens;
  if (typeof ours.maxErrors === 'number') config.maxErrors = ours.maxErrors;
  return config;
}

/** The reference visualizer finds the question in the prompt this way. */
const QUERY = /original query: "([^"]*)"/;

const END_REASONS = new Set<EndReason>(['answer', 'max_iterations', 'max_budget', 'max_time', 'max_tokens', 'max_errors', 'cancelled', 'error']);
const STATUSES = new Set<RunStatus>(['running', 'completed', 'failed', 'cancelled', 'interrupted', 'imported']);

/** What our `rlm_web` object says of how a run ended; each field only when well typed. */
interface RunOutcome {
  status?: RunStatus;
  endReason?: EndReason;
  response?: string;
  error?: string;
  usage?: UsageSummary;
  executionTimeMs?: number;
}

/**
 * Everything a metadata line says of its run, read whole when the line is read: a wrongly
 * typed field fails here, before anything of the run is written, never after its iterations.
 */
interface RunHeader {
  id: string | undefined;
  timestamp: string;
  config: RunConfig;
  context: Trajectory['context'] | undefined;
  schema: RecordedSchema | undefined;
  rootPrompt: string | undefined;
  /** Our run-level fields; undefined in a reference log, whose totals are derived from the iterations. */
  outcome: RunOutcome | undefined;
}

function readHeader(meta: Json): RunHeader {
  const rlmWeb = objectOr(meta.rlm_web, 'rlm_web');
  const ours = rlmWeb ?? {};
  const context = objectOr(ours.context, 'rlm_web.context');
  let outcome: RunOutcome | undefined;
  if (rlmWeb) {
    outcome = {};
    if (typeof ours.status === 'string' && STATUSES.has(ours.status as RunStatus)) outcome.status = ours.status as RunStatus;
    if (typeof ours.endReason === 'string' && END_REASONS.has(ours.endReason as EndReason)) outcome.endReason = ours.endReason as EndReason;
    if (typeof ours.response === 'string') outcome.response = ours.response;
    if (typeof ours.error === 'string') outcome.error = redactURLs(ours.error);
    if (isObject(ours.usage)) outcome.usage = ourUsageFromJSON(ours.usage);
    if (typeof ours.executionTimeMs === 'number') outcome.executionTimeMs = ours.executionTimeMs;
  }
  return {
    id: typeof ours.id === 'string' ? ours.id : undefined,
    timestamp: str(meta.timestamp, 'timestamp', ''),
    config: configFromJSON(meta, ours),
    context: context ? (context as unknown as Trajectory['context']) : undefined,
    schema: isObject(ours.schema) ? (ours.schema as unknown as RecordedSchema) : undefined,
    rootPrompt: typeof ours.rootPrompt === 'string' ? ours.rootPrompt : undefined,
    outcome,
  };
}

/** A run from its header; cannot fail (the header was checked when it was read). */
function startTrajectory(header: RunHeader, rootPrompt: string | undefined, first?: IterationRecord): Trajectory {
  const t: Trajectory = {
    id: header.id ?? newId(),
    startedAt: header.timestamp || first?.timestamp || new Date().toISOString(),
    config: header.config,
    context: header.context ?? { type: 'unknown', length: 0 },
    iterations: [],
    status: 'imported',
    usage: { models: {}, calls: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, costUSD: 0 },
  };
  if (header.schema) t.schema = header.schema;
  const question = header.rootPrompt ?? rootPrompt;
  if (question !== undefined) t.rootPrompt = question;
  return t;
}

/**
 * What a run's iterations add up to, gathered as they pass by, so that an import need not
 * keep them: used where the log lacks our run-level fields (reference logs).
 */
class RunTotals {
  lastAnswer: string | undefined;
  usage: UsageSummary = { models: {}, calls: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, costUSD: 0 };
  timeMs = 0;
  question: string | undefined;
  lastIteration = 0;
  count = 0;

  add(it: IterationRecord): void {
    if (this.count++ === 0) this.question = findQuestion(it);
    this.lastIteration = it.iteration;
    if (it.finalAnswer !== null) this.lastAnswer = it.finalAnswer;
    this.timeMs += it.iterationTimeMs;
    for (const b of it.codeBlocks) for (const s of b.subcalls) addUsage(this.usage, s.usage);
  }
}

function findQuestion(it: IterationRecord): string | undefined {
  for (const m of it.prompt) {
    const match = QUERY.exec(m.content);
    if (match) return match[1];
  }
  return undefined;
}

/**
 * Run-level fields after the last iteration: ours when the log has them, else derived the
 * way the reference visualizer derives them (the reference logs no root-model usage, so
 * usage is then what the sub-calls report). Imported runs get status 'imported'; nested
 * child trajectories keep the status they had. Cannot fail.
 */
function finishTrajectory(t: Trajectory, outcome: RunOutcome | undefined, totals: RunTotals, kind: 'root' | 'nested'): void {
  if (kind === 'nested' && outcome?.status) t.status = outcome.status;
  if (outcome?.endReason) t.endReason = outcome.endReason;
  else if (!outcome && totals.lastAnswer !== undefined) t.endReason = 'answer';
  const response = outcome ? outcome.response : totals.lastAnswer;
  if (response !== undefined) t.response = response;
  if (outcome?.error !== undefined) t.error = outcome.error;
  t.usage = outcome?.usage ?? totals.usage;
  if (outcome?.executionTimeMs !== undefined) t.executionTimeMs = outcome.executionTimeMs;
  else if (!outcome && totals.count > 0) t.executionTimeMs = totals.timeMs;
  if (t.rootPrompt === undefined && totals.question !== undefined) t.rootPrompt = totals.question;
}

/** Receives runs as a log is read: the store writer, or an in-memory collector. */
interface RunReceiver {
  /** Keep each run's iterations in `trajectory.iterations` (else only the latest). */
  keepIterations: boolean;
  start(t: Trajectory): Promise<void>;
  iteration(t: Trajectory, it: IterationRecord): Promise<void>;
  /** `incomplete`: some lines of the run were skipped or could not be written. */
  end(t: Trajectory, incomplete: boolean): Promise<void>;
}

/** What `readJSONL` found: the trajectories, and the lines it could not read. */
export interface JSONLReadResult {
  /** Lines read, blank ones included. */
  lines: number;
  /** Iterations read (on import: stored). */
  iterations: number;
  /** Lines skipped (or, on import, not stored), with why. */
  errors: JSONLLineError[];
}

/** A run being read: where it began, what it adds up to, whether a line of it was lost. */
interface OpenRun {
  t: Trajectory;
  totals: RunTotals;
  /** The line that began it (its metadata line, or its first iteration's), for errors of the whole run. */
  line: number;
  incomplete: boolean;
}

/** Why a line failed, as the import reports it. */
function lineMessage(error: unknown): string {
  if (error instanceof MalformedLine) return error.message;
  if (error instanceof StorageError) return `not stored: ${error.message}`;
  return `unreadable: ${(error as Error)?.message ?? String(error)}`;
}

/**
 * Turns lines into runs. A log holds one run per metadata line; the reference logger writes
 * metadata once and restarts `iteration` at 1 on each completion, so a restart also begins
 * a new run with the same metadata (as does a `run_context` line, which some versions of
 * the reference write at the start of each completion).
 *
 * Every failure is one line's: a malformed line is skipped, a receiver's failure (the store)
 * is reported on the line that caused it, and the run it belongs to is ended as incomplete.
 * A run whose metadata line fails is skipped whole: its iterations are reported, not guessed
 * into another run.
 */
async function readRuns(source: JSONLSource, receiver: RunReceiver, options: JSONLReadOptions): Promise<JSONLReadResult> {
  const maxLineChars = options.maxLineChars ?? DEFAULT_MAX_LINE_CHARS;
  const result: JSONLReadResult = { lines: 0, iterations: 0, errors: [] };
  /** The header of the runs that follow; undefined after a metadata line that could not be read. */
  let header: RunHeader | undefined = readHeader({});
  let headerLine = 0;
  let runContextPrompt: string | undefined;
  let current: OpenRun | undefined;
  // A metadata or run_context line not yet followed by iterations: an empty run at the end.
  let unused = false;
  /** The line of the last metadata or run_context line: where the run it opens begins. */
  let openingLine = 0;
  /** A line was lost after that opening line, before the run's first iteration: the run starts incomplete. */
  let lostBeforeStart = false;

  const report = (line: number, error: unknown) => {
    result.errors.push({ line, message: lineMessage(error) });
    if (current) current.incomplete = true;
    else if (unused) lostBeforeStart = true;
  };
  const start = async (line: number, from: RunHeader, first?: IterationRecord) => {
    current = { t: startTrajectory(from, runContextPrompt, first), totals: new RunTotals(), line, incomplete: lostBeforeStart };
    unused = false;
    lostBeforeStart = false;
    await receiver.start(current.t);
  };
  const end = async () => {
    if (!current) return;
    const run = current;
    try {
      finishTrajectory(run.t, header?.outcome, run.totals, 'root');
      await receiver.end(run.t, run.incomplete);
    } catch (error) {
      report(run.line, error);
    } finally {
      current = undefined;
    }
  };
  /** The empty run a metadata (or run_context) line stands for when no iteration followed it. */
  const endUnused = async () => {
    if (!unused || !header) return;
    try {
      await start(openingLine, header);
    } catch (error) {
      report(openingLine, error);
    }
    await end();
  };

  for await (const line of cappedLines(source, maxLineChars)) {
    const lineNumber = ++result.lines;
    if (typeof line !== 'string') {
      report(lineNumber, new MalformedLine(`the line is ${line.tooLong} characters long, over the limit of ${maxLineChars} (maxLineChars); skipped`));
      continue;
    }
    if (line.trim() === '') continue;
    try {
      let entry: unknown;
      try {
        entry = JSON.parse(line);
      } catch (error) {
        fail(`not JSON: ${(error as Error).message}`);
      }
      if (nestedDeeperThan(entry, MAX_DEPTH)) fail(`the line nests arrays and objects more than ${MAX_DEPTH} levels deep`);
      if (!isObject(entry)) fail('a line must be a JSON object');
      if (entry.type === 'metadata') {
        await end();
        // Back-to-back metadata lines: the first run had no iterations (it failed early).
        if (headerLine > 0) await endUnused();
        unused = false;
        runContextPrompt = undefined;
        headerLine = lineNumber;
        // Until the line reads whole: if it does not, the run's iterations are skipped.
        header = undefined;
        header = readHeader(entry);
        unused = true;
        openingLine = lineNumber;
        lostBeforeStart = false;
      } else if (entry.type === 'run_context') {
        await end();
        runContextPrompt = typeof entry.root_prompt === 'string' ? entry.root_prompt : undefined;
        unused = header !== undefined;
        openingLine = lineNumber;
        lostBeforeStart = false;
      } else if (entry.type === 'iteration') {
        if (!header) fail(`skipped: the metadata line of its run (line ${headerLine}) could not be read`);
        const it = iterationFromJSON(entry);
        if (current && current.totals.count > 0 && it.iteration <= current.totals.lastIteration) await end();
        if (!current) await start(unused ? openingLine : lineNumber, header, it);
        const { t, totals } = current!;
        if (!receiver.keepIterations) t.iterations.length = 0;
        t.iterations.push(it);
        totals.add(it);
        await receiver.iteration(t, it);
        result.iterations++;
      } else {
        fail(`unknown line type ${JSON.stringify(entry.type)} (expected "metadata" or "iteration")`);
      }
    } catch (error) {
      // Whatever failed (a RangeError from a value no check foresaw, the store), it is this line's.
      report(lineNumber, error);
    }
  }
  if (!current) await endUnused();
  await end();
  return result;
}

/** The runs of a JSONL log, in memory. */
export interface JSONLTrajectories extends JSONLReadResult {
  trajectories: Trajectory[];
}

/**
 * Reads a JSONL log (ours or the reference implementation's) into trajectories in memory,
 * with status 'imported'. Malformed lines are skipped and reported by line number, and so are
 * lines over `options.maxLineChars` or nested more than 256 levels deep.
 */
export async function readJSONL(source: JSONLSource, options: JSONLReadOptions = {}): Promise<JSONLTrajectories> {
  const trajectories: Trajectory[] = [];
  const result = await readRuns(source, {
    keepIterations: true,
    start: async () => undefined,
    iteration: async () => undefined,
    end: async (t) => {
      trajectories.push(t);
    },
  }, options);
  return { ...result, trajectories };
}

/** What `importJSONL` did. */
export interface JSONLImportResult extends JSONLReadResult {
  /** Ids of the runs written, in the order they appear in the log. */
  runIds: string[];
}

/**
 * Imports a JSONL log written by the reference implementation or by rlm-web into a store,
 * streaming it line by line (a 200 MB log never becomes one string). Each run is written as
 * it is read, iteration by iteration, with status 'imported'; a run whose id is already in
 * the store gets a new id. A run's metadata line is read whole before anything of the run
 * is written: a run whose metadata does not read is skipped, its lines reported.
 *
 * Nothing in the log stops an import: malformed lines (with lines over
 * `options.maxLineChars` and lines nested more than 256 levels deep) are skipped, and a
 * store failure is reported on the line it lost; both are in `errors`. A run that lost a
 * line is kept, marked `incomplete` in its header. A run is marked incomplete while it is
 * written too, so a page closed mid-import leaves it incomplete, never 'running'. Only a
 * source that cannot be read (a File that went away) rejects, with a StorageError.
 *
 * @example
 * const { runIds, errors } = await importJSONL(store, fileInput.files[0]);
 */
export async function importJSONL(store: TrajectoryStore, source: JSONLSource, options: JSONLReadOptions = {}): Promise<JSONLImportResult> {
  const runIds: string[] = [];
  let count = 0;
  let size = 0;
  /** Whether anything of the current run is in the store. */
  let written = false;
  const header = (t: Trajectory, incomplete: boolean): RunSummary => summarizeRun(t, count, size, incomplete);
  const write = async (what: string, t: Trajectory, apply: () => Promise<void>) => {
    try {
      await apply();
    } catch (error) {
      throw toStorageError(error, what);
    }
    if (!written) runIds.push(t.id);
    written = true;
  };
  try {
    const result = await readRuns(source, {
      keepIterations: false,
      start: async (t) => {
        // A store that cannot say whether the id is taken must not risk overwriting a run.
        if (await store.hasRun(t.id).catch(() => true)) t.id = newId();
        count = 0;
        size = approximateSize(summarizeRun(t, 0, 0));
        written = false;
        await write('import a run', t, () => store.writeRun(header(t, true)));
      },
      iteration: async (t, it) => {
        const itSize = approximateSize(it);
        await write('import an iteration', t, () => store.writeIteration(summarizeRun(t, count + 1, size + itSize, true), it));
        // Counted once stored: a later header says how many iterations the store holds.
        count++;
        size += itSize;
      },
      end: async (t, incomplete) => {
        await write('import a run', t, () => store.writeRun(header(t, incomplete)));
      },
    }, options);
    return { ...result, runIds };
  } catch (error) {
    throw toStorageError(error, 'read the JSONL log');
  }
}
