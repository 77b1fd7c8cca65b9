/**
 * The RLM's options, their defaults applied once (`resolveOptions`), and the run config a
 * trajectory records (secrets removed).
 */
import { ConfigurationError } from './errors';
import type { Limits } from './limits';
import { redactOptions } from './redact';
import type { AnswerSchema } from './schema';
import type { ToolEntry } from './tools';
import type { EnvironmentFactory, LMClient, RLMEvent, RunConfig, SamplingArgs, TrajectorySink } from './types';

/** Options of one backend: the model and how to reach it. Secrets are never logged. */
export interface BackendOptions {
  /** Model name sent to the API, e.g. 'gpt-5-nano', 'claude-sonnet-4-5'. */
  model: string;
  /** API key. Default: none (a local server may not need one). */
  apiKey?: string | undefined;
  /** Base URL of the API (OpenAI-compatible servers, proxies). Default: the provider's. */
  baseURL?: string | undefined;
  /** Per-call timeout in ms. Default: 120 000. */
  timeoutMs?: number | undefined;
  /** SDK retries on connection errors, 429 and 5xx. Default: 2. */
  maxRetries?: number | undefined;
  /** Extra HTTP headers. Default: none. */
  headers?: Record<string, string> | undefined;
  /** Output token cap (Anthropic requires one). Default: 8192 for Anthropic, none for OpenAI. */
  maxOutputTokens?: number | undefined;
  /** Extra request parameters passed to the API as they are (temperature, reasoning_effort, ...). Default: none. */
  extraBody?: Record<string, unknown> | undefined;
}

/** One model: a provider name with its options, or a ready LMClient. */
export interface BackendSpec {
  /** 'openai' | 'anthropic' | an OpenAI-compatible preset | an LMClient. */
  backend: string | LMClient;
  /** Required with a provider name. Default: none. */
  backendOptions?: BackendOptions | undefined;
}

/** Options of the loop, whatever environment runs the Python. */
export interface RLMCoreOptions extends Limits {
  /** Root model provider. Default: 'openai'. */
  backend?: string | LMClient | undefined;
  /** The root model and how to reach it; `model` is required with a provider name. */
  backendOptions?: BackendOptions | undefined;
  /** Further models. The first serves sub-calls; all can be picked by name with `model=`. Default: none. */
  otherBackends?: BackendSpec[] | undefined;
  /** Where Python runs: an environment name or a factory. Default: 'pyodide' (a Web Worker on this page). */
  environment?: string | EnvironmentFactory | undefined;
  /** Settings of the chosen environment. Default: {}. */
  environmentOptions?: object | undefined;
  /**
   * Where Pyodide runs. 'sandbox': in an opaque-origin iframe whose CSP allows no network, so
   * Python reaches no network, none of the page's storage and no page script; custom tools
   * are its one way out. 'none': a worker of the page's origin (Python can fetch and read the
   * origin's IndexedDB). Ignored by remote environments. Default: 'sandbox'.
   */
  isolation?: 'sandbox' | 'none' | undefined;
  /** Depth of recursion: 1 means rlm_query is a plain LM call; 0 makes completion() itself one. Default: 1. */
  maxDepth?: number | undefined;
  /** Root turns before a final answer is requested. Default: 30. */
  maxIterations?: number | undefined;
  /** Concurrent sub-calls of one batched call. Default: 16. */
  maxConcurrentSubcalls?: number | undefined;
  /**
   * Child RLMs one `rlm_query_batched` call runs at once (each holds a REPL: with Pyodide, a
   * namespace of the interpreter the root's children share); plain sub-calls keep
   * `maxConcurrentSubcalls`. Also how many child REPLs are kept
   * warm between children. Default: 4.
   */
  maxConcurrentChildren?: number | undefined;
  /** Characters of each cell's output (stdout and stderr together) the model sees; the rest is cut with a note. Default: 20 000. */
  maxOutputChars?: number | undefined;
  /**
   * Characters of a run's final answer (`answer["content"]`, FINAL_VAR, FINAL(...), the
   * out-of-turns reply) that are kept. A longer answer keeps its start, with a note appended
   * saying how many characters were dropped; the result, the trajectory and the store only
   * ever hold the cut one. With a schema, an answer over the cap is not cut (cut JSON would
   * not parse): it fails validation and the model is asked for a shorter one. The default is
   * above what any model writes in one reply (≈250 000 tokens), so only answers built in the
   * REPL reach it, and it keeps a stored run's answer at 2 MB. Default: 1 000 000.
   */
  maxAnswerChars?: number | undefined;
  /** A cell running longer is interrupted. Default: 180 000 ms. */
  cellTimeoutMs?: number | undefined;
  /** JS functions and data available in Python. Default: none. */
  customTools?: Record<string, ToolEntry> | undefined;
  /** Tools of child RLMs. Default: customTools. */
  customSubTools?: Record<string, ToolEntry> | undefined;
  /**
   * Keep one REPL across completion() calls: each adds `context_N` and `history_N`, and
   * whatever a run's code did to the interpreter (modules, builtins, files) stays for the
   * next, by design — so do not use it for contexts you do not trust. Without it, each
   * completion runs in a fresh interpreter: the last run's ends with it, and a spare boots as
   * it ends, so that a reused RLM starts its next completion without waiting for a boot. Also
   * keeps the interpreter of the root's child RLMs across completions. Default: false.
   */
  persistent?: boolean | undefined;
  /** Summarize the root history when it nears the model's context window. Default: false. */
  compaction?: boolean | undefined;
  /** Fraction of the context window that triggers compaction. Default: 0.85. */
  compactionThreshold?: number | undefined;
  /** Context window sizes by model-name prefix, merged over the built-in table. Default: none. */
  contextWindows?: Record<string, number> | undefined;
  /** Replaces the built-in system prompt. Default: none. */
  customSystemPrompt?: string | undefined;
  /**
   * Adds guidance on working as an orchestrator (plan the turns, keep long text out of your
   * own context, delegate reading to sub-calls, verify before answering, answer when turns run
   * out) to the system prompt, the custom one included. Child RLMs inherit it. Default: false.
   */
  orchestrator?: boolean | undefined;
  /**
   * Text for the root model placed after the context's description and before the first
   * turn's instruction (task tips, a persona, house rules). Kept through compaction; child
   * RLMs do not get it. Default: none.
   */
  userPrologue?: string | undefined;
  /** Sampling of the root model's calls (and of child RLMs' root calls). Default: the provider's. */
  samplingArgs?: SamplingArgs | undefined;
  /** Sampling of sub-calls: `llm_query(_batched)` and `rlm_query` at the depth limit. Default: the provider's. */
  subSamplingArgs?: SamplingArgs | undefined;
  /** Receives the trajectory as it is written (RLMLogger). Default: none. */
  logger?: TrajectorySink | undefined;
  /** Receives typed events as the run goes. Default: none. */
  onEvent?: ((event: RLMEvent) => void) | undefined;
}

/** Options of one `completion()` call. */
export interface CompletionOptions {
  /** The question. Shown to the root model in the metadata message. Default: none (the context states the request). */
  rootPrompt?: string | undefined;
  /** Cancels the run: aborts LM calls, interrupts the cell, stops children. Default: none. */
  signal?: AbortSignal | undefined;
  /**
   * The answer's shape: a Standard Schema (zod, valibot, ArkType, ...) or a JSON Schema
   * object. The model is shown it; each answer is validated and `response` is the validated
   * value. Default: none (`response` is the answer's text).
   */
  schema?: AnswerSchema | undefined;
  /** Answers checked against `schema` (the first plus fixes) before AnswerValidationError. Default: 3. */
  maxAnswerAttempts?: number | undefined;
}

/** Default of `RLMCoreOptions.maxAnswerChars`. */
export const DEFAULT_MAX_ANSWER_CHARS = 1_000_000;

/** Default of `CompletionOptions.maxAnswerAttempts`. */
export const DEFAULT_ANSWER_ATTEMPTS = 3;

/** Characters one sub-call can take, as the prompts tell the model. */
export const SUBCALL_CHARS = 400_000;

/** The options with every default applied: the one place defaults live. */
export interface ResolvedOptions {
  readonly given: RLMCoreOptions;
  readonly backend: string | LMClient;
  readonly environmentName: string;
  /** The environment's own settings plus the cell timeout. */
  readonly environmentOptions: Record<string, unknown>;
  readonly maxDepth: number;
  readonly maxIterations: number;
  readonly maxConcurrentSubcalls: number;
  readonly maxConcurrentChildren: number;
  readonly maxOutputChars: number;
  readonly maxAnswerChars: number;
  readonly cellTimeoutMs: number;
  readonly persistent: boolean;
  readonly compaction: boolean;
  readonly compactionThreshold: number;
  readonly limits: Limits;
  readonly orchestrator: boolean;
  readonly userPrologue: string | undefined;
  readonly samplingArgs: SamplingArgs | undefined;
  readonly subSamplingArgs: SamplingArgs | undefined;
}

function wholeNumber(name: string, value: number | undefined, min: number, hint = ''): void {
  if (value !== undefined && (!Number.isInteger(value) || value < min)) {
    throw new ConfigurationError(`${name} must be a whole number of at least ${min} (got ${value})${hint}.`);
  }
}

const SAMPLING_KEYS: Record<keyof SamplingArgs, true> = { temperature: true, topP: true, maxOutputTokens: true, reasoningEffort: true, stop: true };
const EFFORTS = new Set(['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max']);

/** Sampling args as given, checked: known names (camelCase), numbers in range, a string list of stops. */
export function checkSamplingArgs(name: string, args: SamplingArgs | undefined): SamplingArgs | undefined {
  if (args === undefined) return undefined;
  if (typeof args !== 'object' || args === null || Array.isArray(args)) throw new ConfigurationError(`${name} must be an object such as { temperature: 0.2, topP: 0.9 }.`);
  for (const key of Object.keys(args)) {
    if (!(key in SAMPLING_KEYS)) {
      throw new ConfigurationError(`${name}.${key} is not a sampling argument; use ${Object.keys(SAMPLING_KEYS).join(', ')} (provider-specific parameters go in backendOptions.extraBody).`);
    }
  }
  const { temperature, topP, maxOutputTokens, reasoningEffort, stop } = args;
  if (temperature !== undefined && !(typeof temperature === 'number' && temperature >= 0 && temperature <= 2)) throw new ConfigurationError(`${name}.temperature must be a number from 0 to 2 (got ${String(temperature)}).`);
  if (topP !== undefined && !(typeof topP === 'number' && topP > 0 && topP <= 1)) throw new ConfigurationError(`${name}.topP must be a number above 0 and at most 1 (got ${String(topP)}).`);
  wholeNumber(`${name}.maxOutputTokens`, maxOutputTokens, 1);
  if (reasoningEffort !== undefined && !EFFORTS.has(reasoningEffort)) throw new ConfigurationError(`${name}.reasoningEffort must be one of ${[...EFFORTS].join(', ')} (got ${String(reasoningEffort)}).`);
  if (stop !== undefined && !(Array.isArray(stop) && stop.every((s) => typeof s === 'string' && s.length > 0))) throw new ConfigurationError(`${name}.stop must be a list of non-empty strings.`);
  return args;
}

/** Validates `options` and applies the defaults. Throws ConfigurationError on bad values. */
export function resolveOptions(options: RLMCoreOptions): ResolvedOptions {
  const backend = options.backend ?? 'openai';
  if (typeof backend === 'string' && !options.backendOptions?.model) {
    throw new ConfigurationError(`backendOptions.model is required for backend '${backend}' (for example { model: 'gpt-5-nano', apiKey }).`);
  }
  wholeNumber('maxIterations', options.maxIterations, 1);
  wholeNumber('maxConcurrentSubcalls', options.maxConcurrentSubcalls, 1);
  wholeNumber('maxConcurrentChildren', options.maxConcurrentChildren, 1);
  wholeNumber('maxOutputChars', options.maxOutputChars, 1);
  wholeNumber('maxAnswerChars', options.maxAnswerChars, 1);
  if (options.userPrologue !== undefined && typeof options.userPrologue !== 'string') throw new ConfigurationError('userPrologue must be a string.');
  wholeNumber('maxDepth', options.maxDepth, 0, '; 0 makes the RLM a plain LM call');
  const env = options.environment ?? 'pyodide';
  if (options.isolation !== undefined && options.isolation !== 'sandbox' && options.isolation !== 'none') {
    throw new ConfigurationError(`isolation must be 'sandbox' (the default) or 'none'; got ${JSON.stringify(options.isolation)}.`);
  }
  const environmentOptions = {
    cellTimeoutMs: options.cellTimeoutMs,
    ...(options.isolation && { isolation: options.isolation }),
    ...(options.environmentOptions as Record<string, unknown> | undefined),
  };
  return {
    given: options,
    backend,
    environmentName: typeof env === 'string' ? env : 'custom',
    environmentOptions,
    maxDepth: options.maxDepth ?? 1,
    maxIterations: options.maxIterations ?? 30,
    maxConcurrentSubcalls: options.maxConcurrentSubcalls ?? 16,
    maxConcurrentChildren: options.maxConcurrentChildren ?? 4,
    maxOutputChars: options.maxOutputChars ?? 20_000,
    maxAnswerChars: options.maxAnswerChars ?? DEFAULT_MAX_ANSWER_CHARS,
    cellTimeoutMs: options.cellTimeoutMs ?? (environmentOptions.cellTimeoutMs as number | undefined) ?? 180_000,
    persistent: Boolean(options.persistent),
    compaction: Boolean(options.compaction),
    compactionThreshold: options.compactionThreshold ?? 0.85,
    limits: { maxBudget: options.maxBudget, maxTimeMs: options.maxTimeMs, maxTokens: options.maxTokens, maxErrors: options.maxErrors },
    orchestrator: Boolean(options.orchestrator),
    userPrologue: options.userPrologue?.trim() ? options.userPrologue : undefined,
    samplingArgs: checkSamplingArgs('samplingArgs', options.samplingArgs),
    subSamplingArgs: checkSamplingArgs('subSamplingArgs', options.subSamplingArgs),
  };
}

/**
 * The configuration a trajectory records, through `redactOptions`: no API keys, tokens or
 * headers at any depth, no credentials in URLs, no functions or class instances.
 */
export function runConfig(o: ResolvedOptions, rootModel: string, depth: number): RunConfig {
  const given = o.given;
  return {
    rootModel,
    backend: typeof o.backend === 'object' ? o.backend.provider : o.backend,
    backendOptions: redactOptions(given.backendOptions),
    otherBackends: (given.otherBackends ?? []).map((b) => ({
      backend: typeof b.backend === 'object' ? b.backend.provider : b.backend,
      backendOptions: redactOptions(b.backendOptions ?? (typeof b.backend === 'object' ? { model: b.backend.model } : {})),
    })),
    environment: o.environmentName,
    environmentOptions: redactOptions(given.environmentOptions),
    maxDepth: o.maxDepth,
    maxIterations: o.maxIterations,
    maxBudget: given.maxBudget,
    maxTimeMs: given.maxTimeMs,
    maxTokens: given.maxTokens,
    maxErrors: given.maxErrors,
    depth,
  };
}
