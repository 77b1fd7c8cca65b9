/**
 * The shapes the loop works with. Core depends on these interfaces only; the concrete
 * LM clients (src/clients), REPLs (src/repl) and stores (src/store) implement them.
 */
import type { StorageError } from './errors';
import type { SubcallRequest } from '../protocol/runtime';

// ------------------------------------------------------------------ messages and LM calls

/** Who speaks in a chat message. */
export type ChatRole = 'system' | 'user' | 'assistant';

/** One message of a conversation with a model. */
export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/** Token and cost figures of one LM call. */
export interface LMUsage {
  inputTokens: number;
  outputTokens: number;
  /** Input tokens served from the provider's prompt cache (0 when not reported). */
  cachedInputTokens: number;
  /**
   * USD: the API's own figure where it reports one (OpenRouter, some gateways), else the list
   * price from the price database; undefined when neither knows the model.
   */
  costUSD?: number | undefined;
}

/** What the loop asks of an `LMClient`: one chat completion. */
export interface LMRequest {
  messages: ChatMessage[];
  /**
   * Ask for a reply that is a JSON value matching `schema`, with the provider's structured
   * output where it has one; the client then sets `LMResult.parsed`. Default: none (text).
   */
  responseFormat?: ResponseFormat | undefined;
  /** Aborts the HTTP request. */
  signal?: AbortSignal | undefined;
  /** Per-call timeout in ms. Default: the client's own (120 000). */
  timeoutMs?: number | undefined;
  /**
   * Messages [0, cachePrefix) are stable across the calls of a run: clients that support
   * explicit prompt caching (Anthropic) mark them. Default: none.
   */
  cachePrefix?: number | undefined;
  /** Sampling settings for this call. Default: none (the provider's defaults). */
  sampling?: SamplingArgs | undefined;
}

/**
 * Sampling settings of one LM call, provider-neutral: each client maps them to its SDK's
 * parameters (see the fields). Unset fields are not sent, so the provider's defaults apply.
 */
export interface SamplingArgs {
  /** OpenAI and Anthropic `temperature`. */
  temperature?: number | undefined;
  /** OpenAI and Anthropic `top_p`. */
  topP?: number | undefined;
  /** Output token cap: OpenAI `max_completion_tokens`, Anthropic `max_tokens`. Overrides `backendOptions.maxOutputTokens`. */
  maxOutputTokens?: number | undefined;
  /** OpenAI `reasoning_effort`, Anthropic `output_config.effort`; each API accepts its own subset. */
  reasoningEffort?: 'none' | 'minimal' | 'low' | 'medium' | 'high' | 'xhigh' | 'max' | undefined;
  /** Stop sequences: OpenAI `stop`, Anthropic `stop_sequences`. */
  stop?: string[] | undefined;
}

/** An `LMClient`'s answer to one request. */
export interface LMResult {
  /** The reply text. Falls back to the reasoning text when the content is empty. */
  text: string;
  /** Reasoning text, when the API returned one. */
  reasoning?: string | undefined;
  usage: LMUsage;
  /** The model that answered, as the API named it. */
  model: string;
  /** The reply's JSON value, when the request had a `responseFormat` and the client parsed it. */
  parsed?: unknown;
}

/** A JSON Schema (any draft the validator knows: 4, 7, 2019-09, 2020-12), as a plain object. */
export interface JSONSchema {
  [keyword: string]: unknown;
}

/** A structured reply requested of an LM: a name (some APIs require one) and the JSON Schema. */
export interface ResponseFormat {
  name: string;
  schema: JSONSchema;
}

/** One way a value fails a schema: where (keys and indexes from the root) and what is wrong. */
export interface SchemaIssue {
  path: (string | number)[];
  message: string;
}

/** One model behind one API: what the loop needs of any provider. */
export interface LMClient {
  /** Provider name, e.g. 'openai', 'anthropic'. */
  readonly provider: string;
  /** Model name used for routing (`llm_query(..., model=...)`) and usage keys. */
  readonly model: string;
  complete(request: LMRequest): Promise<LMResult>;
  /** The model's context window in tokens, when known (compaction uses it). Optional. */
  contextWindow?(): Promise<number | undefined>;
}

// ------------------------------------------------------------------ usage

/** Calls, tokens and cost of one model within a run. */
export interface ModelUsage {
  calls: number;
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  /** USD summed over the calls whose cost is known (reported or list price). */
  costUSD: number;
  /** Calls whose cost is unknown (a model the price database does not list): `costUSD` leaves them out. Absent in older runs. */
  unpricedCalls?: number | undefined;
}

/** A run's usage: in total (children included; the fields of `ModelUsage` summed) and per model. */
export interface UsageSummary extends ModelUsage {
  /** Per model name. */
  models: Record<string, ModelUsage>;
}

// ------------------------------------------------------------------ contexts

/** What `completion()` accepts as the context. */
export type ContextInput = string | Blob | ArrayBuffer | ArrayBufferView | readonly unknown[] | Record<string, unknown>;

/** What Python holds once a context is loaded. */
export interface ContextDescription {
  /** Python type name: str, list, dict, ... */
  type: string;
  /** Characters for str, items for list/dict. */
  length: number;
}

// ------------------------------------------------------------------ REPL environments

/**
 * A request Python code makes of the page: sub-calls (one prompt per item) or a custom tool.
 * Defined with the runtime's contract (src/protocol/runtime.ts), whose parser every transport
 * runs before a request reaches the loop.
 */
export type HostRequest = SubcallRequest;

/** The page's answer: `results` for queries (one per prompt, in order), `value` for tools. */
export type HostReply = { results: string[] } | { value: unknown } | { error: string };

/** What running one cell did, as a `ReplEnvironment` reports it. */
export interface CellResult {
  stdout: string;
  stderr: string;
  /** Names of the REPL's user variables after the cell. */
  locals: string[];
  /** Short text previews of those variables' values by name (bounded; at most 100). Default: none (the environment reports no previews). */
  previews?: Record<string, string> | undefined;
  executionTimeMs: number;
  /** Set when the cell marked an answer (`answer["ready"]`, `FINAL_VAR`). */
  finalAnswer: string | null;
  /** Python exception name when the cell raised. */
  errorType: string | null;
  /** The cell was stopped by the cell timeout or an abort. */
  interrupted: boolean;
  /** Stopping it cost the REPL its variables (the worker was restarted). */
  restarted: boolean;
}

/** How the REPL runs, once it has booted (`rlm.replInfo`, the `repl_ready` event). */
export interface ReplInfo {
  /** 'jspi' | 'sab' for Pyodide; 'remote' for a proxy sandbox. */
  bridge: 'jspi' | 'sab' | 'remote';
  /** Whether a running cell can be interrupted with its state kept. */
  interruptible: boolean;
  bootMs: number;
  runtime: string;
  /** Pyodide: whether the boot used ('loaded') or stored ('saved') a memory snapshot. */
  snapshot?: 'loaded' | 'saved' | 'none' | undefined;
  /** Pyodide: 'sandbox' (opaque-origin frame, no network, no storage) or 'none' (a same-origin worker). */
  isolation?: 'sandbox' | 'none' | undefined;
}

/** How long a cell may run, and the signal that stops it. */
export interface ExecuteOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /**
   * Receives the cell's output as it is written (live output), chunk by chunk. Environments
   * that cannot stream leave it uncalled; the result still carries the whole output.
   */
  onOutput?: ((stream: 'stdout' | 'stderr', text: string) => void) | undefined;
}

/** Answers Python's sub-call and tool requests on the page. Never rejects. */
export interface SubcallHost {
  handle(request: HostRequest, signal: AbortSignal): Promise<HostReply>;
  /** A message from Python was refused or dropped (not a request, over a cap); `reason` says why. */
  refused?(reason: string): void;
}

/** A custom tool as a REPL registers it: a function the page answers, or data bound as a variable. */
export interface ToolDefinition {
  name: string;
  kind: 'function' | 'data';
  /** Data tools: the JSON-able value. */
  value?: unknown;
}

/** A Python REPL, wherever it runs. */
export interface ReplEnvironment {
  readonly info: ReplInfo | undefined;
  /** Boot (idempotent): call early so that boot overlaps the first LM call. */
  start(): Promise<ReplInfo>;
  loadContext(index: number, context: ContextInput): Promise<ContextDescription>;
  /**
   * Throws (a ContextTooLargeError) when this REPL cannot hold `context` as `context_<index>`
   * next to the contexts below that index; called before anything is loaded, so that a run
   * fails before its first LM call. Optional: without it, loadContext() is where it fails.
   */
  checkContext?(index: number, context: ContextInput): void;
  registerTools(tools: ToolDefinition[]): Promise<void>;
  setVariable(name: string, value: unknown, reserved: boolean): Promise<void>;
  execute(code: string, options: ExecuteOptions): Promise<CellResult>;
  /** str() of a variable, or null when it does not exist. */
  resolveVariable(name: string): Promise<string | null>;
  /**
   * Forget every variable, module and file the REPL's code made: the state a fresh REPL has,
   * for honest code. The pool resets a child's REPL for the next child of the same run; code
   * that patched what the runtime itself uses survives a reset, which is why each
   * completion gets a new REPL instead.
   */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** What an environment factory is given: the host answering sub-calls, and the environment's options. */
export interface EnvironmentFactoryOptions {
  host: SubcallHost;
  environmentOptions: Record<string, unknown>;
  /**
   * Set for the REPLs of child RLMs: the same object for every child of one root. A factory
   * may run the REPLs of one group in one process, as separate namespaces (the Pyodide
   * environment does); it must keep their variables apart.
   */
  group?: object | undefined;
}

/**
 * Makes a REPL; pass one as `environment` to run Python somewhere of your own. Called once
 * per non-persistent completion: the RLM closes a run's REPL as the run ends and asks for
 * the next completion's (and starts it) right away, so that code a run executed never
 * reaches another run. A factory must return a new REPL each time, not hand back one in use.
 */
export type EnvironmentFactory = (options: EnvironmentFactoryOptions) => ReplEnvironment;

// ------------------------------------------------------------------ trajectory

/** Where a run stands; `interrupted` means its tab closed mid-run, `imported` that it came from a JSONL file. */
export type RunStatus = 'running' | 'completed' | 'failed' | 'cancelled' | 'interrupted' | 'imported';

/** Why a run ended: an answer, a limit, a cancellation or an error. */
export type EndReason =
  | 'answer'
  | 'max_iterations'
  | 'max_budget'
  | 'max_time'
  | 'max_tokens'
  | 'max_errors'
  | 'cancelled'
  | 'error';

/** One sub-call made from a cell: an LM call, or a child RLM with its own trajectory. */
export interface SubcallRecord {
  kind: 'llm' | 'rlm';
  model: string;
  prompt: string;
  response: string;
  usage: UsageSummary;
  executionTimeMs: number;
  error?: string | undefined;
  /** Child RLM runs: the child's whole trajectory. */
  trajectory?: Trajectory | undefined;
  /** The id its `subcall_start`/`subcall_end` events carry (absent in imported runs). */
  callId?: string | undefined;
  /** Its place in the batch (`llm_query_batched`): 0 for a single call. */
  index?: number | undefined;
}

/** One custom-tool call made from a cell: what Python got back (a resume replays it). */
export interface ToolCallRecord {
  name: string;
  /** The JSON-converted result, when the call succeeded. */
  value?: unknown;
  /** The error Python got, when it failed. */
  error?: string | undefined;
}

/** One cell as recorded: the code, what it did (a `CellResult` minus `restarted`), and its sub-calls. */
export interface CodeBlockRecord extends Omit<CellResult, 'restarted'> {
  code: string;
  subcalls: SubcallRecord[];
  /** Custom-tool calls in the order the cell made them (absent when it made none). */
  toolCalls?: ToolCallRecord[] | undefined;
}

/** One turn of the root model, as recorded in the trajectory. */
export interface IterationRecord {
  /** 1-based. */
  iteration: number;
  /** ISO time the iteration started. */
  timestamp: string;
  /** The messages the root model was sent: a snapshot. */
  prompt: ChatMessage[];
  response: string;
  reasoning?: string | undefined;
  codeBlocks: CodeBlockRecord[];
  finalAnswer: string | null;
  iterationTimeMs: number;
  usage: LMUsage;
  /** Runs with a schema: the check of the answer this iteration marked. */
  validation?: AnswerValidationRecord | undefined;
  /**
   * Rebuilt from the durable steps of an iteration that never finished (the tab closed):
   * the reply and the cells and sub-calls that had finished. Default: absent.
   */
  partial?: boolean | undefined;
}

/** One check of a marked answer against the run's schema. */
export interface AnswerValidationRecord {
  /** 1-based: which answer of the run this was. */
  attempt: number;
  valid: boolean;
  /** Empty when valid. */
  issues: SchemaIssue[];
  /** The answer as the REPL handed it over (JSON text, or the text of FINAL(...)). */
  answer: string;
}

/** The schema a run's answer was held to, as recorded. */
export interface RecordedSchema {
  /** 'json-schema', or the Standard Schema library ('zod', 'valibot', ...). */
  vendor: string;
  /** The JSON Schema shown to the model, when there is one. */
  jsonSchema?: JSONSchema | undefined;
}

/**
 * A durable step: what a run did inside the iteration it is in, stored as it happens so that
 * a closed tab keeps it. The finished iteration record replaces its steps.
 */
export type RunStep =
  /** The root model's reply, stored before its code runs. */
  | { kind: 'reply'; iteration: number; timestamp: string; response: string; reasoning?: string | undefined; usage: LMUsage }
  /** One finished sub-call of the cell `block` (batched items arrive in any order; `record.index` places them). */
  | { kind: 'subcall'; iteration: number; block: number; record: SubcallRecord }
  /** A finished cell, with its sub-calls. */
  | { kind: 'cell'; iteration: number; block: number; record: CodeBlockRecord };

/** The configuration a trajectory records (secrets removed). */
export interface RunConfig {
  rootModel: string;
  backend: string;
  /** Backend options with secrets (API keys, tokens) removed. */
  backendOptions: Record<string, unknown>;
  otherBackends: { backend: string; backendOptions: Record<string, unknown> }[];
  environment: string;
  environmentOptions: Record<string, unknown>;
  maxDepth: number;
  maxIterations: number;
  maxBudget?: number | undefined;
  maxTimeMs?: number | undefined;
  maxTokens?: number | undefined;
  maxErrors?: number | undefined;
  depth: number;
}

/** Everything about one run: its config, every iteration and sub-call, usage and outcome. */
export interface Trajectory {
  id: string;
  startedAt: string;
  config: RunConfig;
  rootPrompt?: string | undefined;
  context: ContextDescription & { bytes?: number | undefined };
  iterations: IterationRecord[];
  /** Runs with a schema: the schema; `response` is then the validated value as JSON text. */
  schema?: RecordedSchema | undefined;
  status: RunStatus;
  endReason?: EndReason | undefined;
  response?: string | undefined;
  error?: string | undefined;
  usage: UsageSummary;
  executionTimeMs?: number | undefined;
}

// ------------------------------------------------------------------ events

/**
 * Typed events of a run, as `onEvent` and `stream()` deliver them (children's events carry their
 * depth, and `parentCallId`: the `callId` of the `rlm_query` that started them).
 */
export type RLMEvent = (
  | { type: 'run_start'; runId: string; depth: number; config: RunConfig; rootPrompt?: string | undefined }
  | { type: 'repl_ready'; runId: string; depth: number; info: ReplInfo }
  | { type: 'context_loaded'; runId: string; depth: number; index: number; description: ContextDescription; ms: number }
  | { type: 'iteration_start'; runId: string; depth: number; iteration: number }
  | { type: 'lm_response'; runId: string; depth: number; iteration: number; text: string; reasoning?: string | undefined; usage: LMUsage }
  | { type: 'code_start'; runId: string; depth: number; iteration: number; block: number; code: string }
  /** Output of the running cell, as it is written: throttled (≈10 a second at most) and bounded per cell; `code_end` has it all. */
  | { type: 'code_output'; runId: string; depth: number; iteration: number; block: number; stream: 'stdout' | 'stderr'; text: string }
  | { type: 'code_end'; runId: string; depth: number; iteration: number; block: number; record: CodeBlockRecord }
  /** `callId` pairs it with its `subcall_end`; `index` is its place in the batch (0 for a single call). */
  | { type: 'subcall_start'; runId: string; depth: number; callId: string; index: number; kind: 'llm' | 'rlm'; model: string; prompt: string }
  | { type: 'subcall_end'; runId: string; depth: number; callId: string; index: number; record: SubcallRecord }
  | { type: 'iteration_end'; runId: string; depth: number; record: IterationRecord }
  | { type: 'usage'; runId: string; depth: number; usage: UsageSummary }
  | { type: 'compaction'; runId: string; depth: number; summary: string; count: number }
  /** `resume()` rebuilt the REPL: `cells` stored cells of `iterations` iterations replayed (no LM calls) in `replayMs`. */
  | { type: 'resumed'; runId: string; depth: number; iterations: number; cells: number; replayMs: number }
  | { type: 'run_end'; runId: string; depth: number; result: CompletionResult<unknown> }
  /**
   * The page refused or dropped a message from Python (not a request, over a cap, too many
   * waiting): `reason` says why, `count` how many so far for this RLM. The run goes on; a
   * refused request's cell gets an error.
   */
  | { type: 'bridge_refused'; runId: string; depth: number; reason: string; count: number }
  /** The trajectory store refused a write (quota, blocked upgrade); the run goes on. */
  | { type: 'storage_error'; runId: string; depth: number; error: StorageError }
  | { type: 'error'; runId: string; depth: number; error: Error; trajectory: Trajectory }
) & { parentCallId?: string | undefined };

/** `T`: the answer's text, or with a schema the validated value. */
export interface CompletionResult<T = string> {
  response: T;
  usage: UsageSummary;
  executionTimeMs: number;
  trajectory: Trajectory;
}

/** Observes a run as it happens (a logger writing to a store, for instance). */
export interface TrajectorySink {
  runStarted(trajectory: Trajectory): void;
  iterationFinished(trajectory: Trajectory, iteration: IterationRecord): void;
  runEnded(trajectory: Trajectory): void;
  /** A step of the iteration in progress (durable steps). Optional: sinks without it keep whole iterations only. */
  stepRecorded?(trajectory: Trajectory, step: RunStep): void;
  /** The run's context, kept for `resume()`. Optional. */
  contextGiven?(trajectory: Trajectory, context: ContextInput): void;
  /** Awaited at the end of a run: pending writes. */
  flush(): Promise<void>;
}
