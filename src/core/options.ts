/**
 * The RLM's options, their defaults applied once (`resolveOptions`), and the run config a
 * trajectory records (secrets removed).
 */
import { ConfigurationError } from './errors';
import type { Limits } from './limits';
import type { ToolEntry } from './tools';
import type { EnvironmentFactory, LMClient, RLMEvent, RunConfig, TrajectorySink } from './types';

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
  /** Depth of recursion: 1 means rlm_query is a plain LM call; 0 makes completion() itself one. Default: 1. */
  maxDepth?: number | undefined;
  /** Root turns before a final answer is requested. Default: 30. */
  maxIterations?: number | undefined;
  /** Concurrent sub-calls of one batched call. Default: 16. */
  maxConcurrentSubcalls?: number | undefined;
  /** Characters of each cell output the model sees. Default: 20 000. */
  maxOutputChars?: number | undefined;
  /** A cell running longer is interrupted. Default: 180 000 ms. */
  cellTimeoutMs?: number | undefined;
  /** JS functions and data available in Python. Default: none. */
  customTools?: Record<string, ToolEntry> | undefined;
  /** Tools of child RLMs. Default: customTools. */
  customSubTools?: Record<string, ToolEntry> | undefined;
  /** Keep one REPL across completion() calls. Default: false. */
  persistent?: boolean | undefined;
  /** Summarize the root history when it nears the model's context window. Default: false. */
  compaction?: boolean | undefined;
  /** Fraction of the context window that triggers compaction. Default: 0.85. */
  compactionThreshold?: number | undefined;
  /** Context window sizes by model-name prefix, merged over the built-in table. Default: none. */
  contextWindows?: Record<string, number> | undefined;
  /** Replaces the built-in system prompt. Default: none. */
  customSystemPrompt?: string | undefined;
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
}

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
  readonly maxOutputChars: number;
  readonly cellTimeoutMs: number;
  readonly persistent: boolean;
  readonly compaction: boolean;
  readonly compactionThreshold: number;
  readonly limits: Limits;
}

function wholeNumber(name: string, value: number | undefined, min: number, hint = ''): void {
  if (value !== undefined && (!Number.isInteger(value) || value < min)) {
    throw new ConfigurationError(`${name} must be a whole number of at least ${min} (got ${value})${hint}.`);
  }
}

/** Validates `options` and applies the defaults. Throws ConfigurationError on bad values. */
export function resolveOptions(options: RLMCoreOptions): ResolvedOptions {
  const backend = options.backend ?? 'openai';
  if (typeof backend === 'string' && !options.backendOptions?.model) {
    throw new ConfigurationError(`backendOptions.model is required for backend '${backend}' (for example { model: 'gpt-5-nano', apiKey }).`);
  }
  wholeNumber('maxIterations', options.maxIterations, 1);
  wholeNumber('maxConcurrentSubcalls', options.maxConcurrentSubcalls, 1);
  wholeNumber('maxDepth', options.maxDepth, 0, '; 0 makes the RLM a plain LM call');
  const env = options.environment ?? 'pyodide';
  const environmentOptions = { cellTimeoutMs: options.cellTimeoutMs, ...(options.environmentOptions as Record<string, unknown> | undefined) };
  return {
    given: options,
    backend,
    environmentName: typeof env === 'string' ? env : 'custom',
    environmentOptions,
    maxDepth: options.maxDepth ?? 1,
    maxIterations: options.maxIterations ?? 30,
    maxConcurrentSubcalls: options.maxConcurrentSubcalls ?? 16,
    maxOutputChars: options.maxOutputChars ?? 20_000,
    cellTimeoutMs: options.cellTimeoutMs ?? (environmentOptions.cellTimeoutMs as number | undefined) ?? 180_000,
    persistent: Boolean(options.persistent),
    compaction: Boolean(options.compaction),
    compactionThreshold: options.compactionThreshold ?? 0.85,
    limits: { maxBudget: options.maxBudget, maxTimeMs: options.maxTimeMs, maxTokens: options.maxTokens, maxErrors: options.maxErrors },
  };
}

/** Option names whose values are secrets: apiKey, token, authToken, secret, password, ... */
const SECRET_KEY = /(key|token|secret|password|authorization|credentials?)$/i;

function redact(options: object | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options ?? {})) {
    if (SECRET_KEY.test(k)) continue;
    if (k === 'headers') continue;
    out[k] = v;
  }
  return out;
}

/** The configuration a trajectory records: no API keys, tokens or headers. */
export function runConfig(o: ResolvedOptions, rootModel: string, depth: number): RunConfig {
  const given = o.given;
  return {
    rootModel,
    backend: typeof o.backend === 'object' ? o.backend.provider : o.backend,
    backendOptions: redact(given.backendOptions),
    otherBackends: (given.otherBackends ?? []).map((b) => ({
      backend: typeof b.backend === 'object' ? b.backend.provider : b.backend,
      backendOptions: redact(b.backendOptions ?? (typeof b.backend === 'object' ? { model: b.backend.model } : {})),
    })),
    environment: o.environmentName,
    environmentOptions: redact(given.environmentOptions),
    maxDepth: o.maxDepth,
    maxIterations: o.maxIterations,
    maxBudget: given.maxBudget,
    maxTimeMs: given.maxTimeMs,
    maxTokens: given.maxTokens,
    maxErrors: given.maxErrors,
    depth,
  };
}
