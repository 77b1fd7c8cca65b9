/**
 * The RLM loop. The root model writes ```repl code turn after turn; the REPL runs it; the
 * model's sub-calls (llm_query, rlm_query, tools) come back here to be answered with the
 * page's LM clients, metered against the run's limits.
 */
import { mapConcurrent } from './concurrency';
import { EnvironmentPool } from './pool';
import { contextWindowFor, estimateTokens } from './context-windows';
import { CancellationError, ConfigurationError, describeError, LMError, RLMError, RunEndedError, StorageError } from './errors';
import { RunGuard, type Limits } from './limits';
import { findCodeBlocks, findTextAnswer, formatFeedback, hasOnlyForeignFences } from './parsing';
import {
  buildCompactedNote,
  buildMetadataMessage,
  buildSystemPrompt,
  buildTurnPrompt,
  COMPACTION_REQUEST,
  FINAL_REQUEST,
  NO_CODE_REMINDER,
} from './prompts';
import { callTool, describeTools, normalizeTools, toToolDefinitions, type NormalizedTool, type ToolEntry } from './tools';
import type {
  CellResult,
  ChatMessage,
  CodeBlockRecord,
  CompletionResult,
  ContextDescription,
  ContextInput,
  EndReason,
  EnvironmentFactory,
  HostReply,
  HostRequest,
  IterationRecord,
  LMClient,
  LMResult,
  ReplEnvironment,
  ReplInfo,
  RLMEvent,
  RunConfig,
  SubcallRecord,
  Trajectory,
  TrajectorySink,
} from './types';
import { emptyLMUsage, emptyUsage, summarizeCall, UsageTracker } from './usage';

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
  /** Extra HTTP headers. */
  headers?: Record<string, string> | undefined;
  /** Output token cap (Anthropic requires one). Default: 8192 for Anthropic, none for OpenAI. */
  maxOutputTokens?: number | undefined;
  /** Extra request parameters passed to the API as they are (temperature, reasoning_effort, ...). */
  extraBody?: Record<string, unknown> | undefined;
}

export interface BackendSpec {
  /** 'openai' | 'anthropic' | an OpenAI-compatible preset | an LMClient. */
  backend: string | LMClient;
  backendOptions?: BackendOptions | undefined;
}

export interface RLMOptions extends Limits {
  /** Root model provider. Default: 'openai'. */
  backend?: string | LMClient | undefined;
  backendOptions?: BackendOptions | undefined;
  /** Further models. The first serves sub-calls; all can be picked by name with `model=`. Default: none. */
  otherBackends?: BackendSpec[] | undefined;
  /** Where Python runs. Default: 'pyodide' (a Web Worker on this page). */
  environment?: string | EnvironmentFactory | undefined;
  /** Environment settings: indexURL, workerURL, bridge, cellTimeoutMs, ... Default: {}. */
  environmentOptions?: Record<string, unknown> | undefined;
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
  /** Context window sizes by model-name prefix, merged over the built-in table. */
  contextWindows?: Record<string, number> | undefined;
  /** Replaces the built-in system prompt. */
  customSystemPrompt?: string | undefined;
  /** Receives the trajectory as it is written (RLMLogger). Default: none. */
  logger?: TrajectorySink | undefined;
  /** Receives typed events as the run goes. */
  onEvent?: ((event: RLMEvent) => void) | undefined;
  /** @internal depth of this RLM (children are depth + 1). */
  _depth?: number | undefined;
  /** @internal the parent's usage tracker. */
  _parentUsage?: UsageTracker | undefined;
  /** @internal the root's pool of REPLs for child RLMs. */
  _pool?: EnvironmentPool | undefined;
}

/** The events of one run as an async iterable; `result` settles with the completion. */
export interface RLMStream extends AsyncIterable<RLMEvent> {
  result: Promise<CompletionResult>;
}

export interface CompletionOptions {
  /** The question. Shown to the root model in the metadata message. */
  rootPrompt?: string | undefined;
  /** Cancels the run: aborts LM calls, interrupts the cell, stops children. */
  signal?: AbortSignal | undefined;
}

/** How core gets concrete clients and environments without importing them. */
export interface RLMDependencies {
  createClient(spec: BackendSpec): LMClient;
  createEnvironment(name: string): EnvironmentFactory;
}

const DEFAULTS = {
  maxDepth: 1,
  maxIterations: 30,
  maxConcurrentSubcalls: 16,
  maxOutputChars: 20_000,
  cellTimeoutMs: 180_000,
  compactionThreshold: 0.85,
  subcallChars: 400_000,
};

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

function newId(): string {
  return typeof crypto !== 'undefined' && 'randomUUID' in crypto ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

/** State of one completion(): what sub-calls made from cells need to find. */
interface ActiveRun {
  id: string;
  guard: RunGuard;
  usage: UsageTracker;
  cellSubcalls: SubcallRecord[] | undefined;
}

export class RLMCore {
  readonly options: RLMOptions;
  readonly depth: number;
  private readonly rootClient: LMClient;
  private readonly otherClients: LMClient[];
  private readonly tools: NormalizedTool[];
  private readonly envFactory: EnvironmentFactory;
  private readonly envName: string;
  private env: ReplEnvironment | undefined;
  private envUsed = false;
  private toolsRegistered = false;
  /** REPLs for child RLMs: the root's own, shared by every descendant. */
  private ownPool: EnvironmentPool | undefined;
  private readonly listeners = new Set<(event: RLMEvent) => void>();
  private active: ActiveRun | undefined;
  private contextCount = 0;
  private historyCount = 0;
  private closed = false;

  constructor(
    options: RLMOptions,
    private readonly deps: RLMDependencies,
  ) {
    this.options = options;
    this.depth = options._depth ?? 0;
    const backend = options.backend ?? 'openai';
    if (typeof backend === 'string' && !options.backendOptions?.model) {
      throw new ConfigurationError(`backendOptions.model is required for backend '${backend}' (for example { model: 'gpt-5-nano', apiKey }).`);
    }
    this.rootClient = deps.createClient({ backend, backendOptions: options.backendOptions });
    this.otherClients = (options.otherBackends ?? []).map((spec) => deps.createClient(spec));
    this.tools = normalizeTools(options.customTools);
    if (options.customSubTools) normalizeTools(options.customSubTools);
    const env = options.environment ?? 'pyodide';
    this.envName = typeof env === 'string' ? env : 'custom';
    this.envFactory = typeof env === 'string' ? deps.createEnvironment(env) : env;
    for (const [name, value] of Object.entries({ maxIterations: options.maxIterations, maxConcurrentSubcalls: options.maxConcurrentSubcalls })) {
      if (value !== undefined && (!Number.isInteger(value) || value < 1)) {
        throw new ConfigurationError(`${name} must be a whole number of at least 1 (got ${value}).`);
      }
    }
    if (options.maxDepth !== undefined && (!Number.isInteger(options.maxDepth) || options.maxDepth < 0)) {
      throw new ConfigurationError(`maxDepth must be a whole number of at least 0 (got ${options.maxDepth}); 0 makes the RLM a plain LM call.`);
    }
    // Storage failures reported by the logger (RLMLogger is an EventTarget) become events.
    if (options.logger && typeof (options.logger as Partial<EventTarget>).addEventListener === 'function') {
      (options.logger as unknown as EventTarget).addEventListener('error', (event) => {
        const error = (event as Event & { error?: unknown }).error;
        if (error instanceof StorageError) this.emit({ type: 'storage_error', runId: this.active?.id ?? '', depth: this.depth, error });
      });
    }
  }

  /** The REPL's bridge and boot time, once it has booted. */
  get replInfo(): ReplInfo | undefined {
    return this.env?.info;
  }

  /** Boots the REPL now (it otherwise boots during the first root LM call). */
  async warmUp(): Promise<ReplInfo> {
    return this.environment().start();
  }

  /** Releases the REPL worker(s). The instance cannot be used afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    const env = this.env;
    this.env = undefined;
    if (env && this.options._pool) await this.options._pool.release(env);
    else await env?.close();
    const pool = this.ownPool;
    this.ownPool = undefined;
    await pool?.close();
  }

  /**
   * Runs a completion and yields its events as they happen (children's included). The
   * iteration ends after `run_end`, or after an `error` event when the run fails.
   *
   * @example
   * const stream = rlm.stream(text, { rootPrompt });
   * for await (const event of stream) if (event.type === 'iteration_end') show(event.record);
   * const { response } = await stream.result;
   */
  stream(context: ContextInput, options: CompletionOptions = {}): RLMStream {
    const queue: RLMEvent[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    let sawEnd = false;
    const listener = (event: RLMEvent) => {
      if (event.depth === this.depth && (event.type === 'run_end' || event.type === 'error')) sawEnd = true;
      queue.push(event);
      wake?.();
    };
    this.listeners.add(listener);
    const result = this.completion(context, options);
    result
      .catch((error: unknown) => {
        // A failure before the run started still ends the stream with an error event.
        if (!sawEnd) {
          const trajectory = (error as RunEndedError).trajectory;
          queue.push({ type: 'error', runId: trajectory?.id ?? '', depth: this.depth, error: error as Error, trajectory: trajectory as Trajectory });
        }
      })
      .finally(() => {
        done = true;
        this.listeners.delete(listener);
        wake?.();
      });
    return {
      result,
      async *[Symbol.asyncIterator]() {
        for (;;) {
          const event = queue.shift();
          if (event) {
            yield event;
            continue;
          }
          if (done) return;
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      },
    };
  }

  private get maxDepth(): number {
    return this.options.maxDepth ?? DEFAULTS.maxDepth;
  }

  private get maxIterations(): number {
    return this.options.maxIterations ?? DEFAULTS.maxIterations;
  }

  private environment(): ReplEnvironment {
    if (this.closed) throw new RLMError('This RLM was closed; create a new one.');
    const host = { handle: (request: HostRequest, signal: AbortSignal) => this.handleHostRequest(request, signal) };
    if (this.options._pool) {
      this.env ??= this.options._pool.acquire(host);
    } else {
      this.env ??= this.envFactory({ host, environmentOptions: this.environmentOptions() });
    }
    return this.env;
  }

  private environmentOptions(): Record<string, unknown> {
    return { cellTimeoutMs: this.options.cellTimeoutMs, ...this.options.environmentOptions };
  }

  /** The pool child RLMs take their REPLs from (created by the root on first use). */
  private childPool(): EnvironmentPool {
    if (this.options._pool) return this.options._pool;
    this.ownPool ??= new EnvironmentPool(this.envFactory, this.environmentOptions(), this.options.maxConcurrentSubcalls ?? DEFAULTS.maxConcurrentSubcalls);
    return this.ownPool;
  }

  private emit(event: RLMEvent): void {
    for (const listener of [this.options.onEvent, ...this.listeners]) {
      try {
        listener?.(event);
      } catch (error) {
        console.error('rlm-web: event listener threw', error);
      }
    }
  }

  private runConfig(): RunConfig {
    const o = this.options;
    return {
      rootModel: this.rootClient.model,
      backend: typeof o.backend === 'object' ? o.backend.provider : (o.backend ?? 'openai'),
      backendOptions: redact(o.backendOptions),
      otherBackends: (o.otherBackends ?? []).map((b) => ({
        backend: typeof b.backend === 'object' ? b.backend.provider : b.backend,
        backendOptions: redact(b.backendOptions ?? (typeof b.backend === 'object' ? { model: b.backend.model } : {})),
      })),
      environment: this.envName,
      environmentOptions: redact(o.environmentOptions),
      maxDepth: this.maxDepth,
      maxIterations: this.maxIterations,
      maxBudget: o.maxBudget,
      maxTimeMs: o.maxTimeMs,
      maxTokens: o.maxTokens,
      maxErrors: o.maxErrors,
      depth: this.depth,
    };
  }

  /**
   * Answers `options.rootPrompt` about `context` (or, without a root prompt, the request the
   * context itself states). Rejects with a RunEndedError subclass when a limit or the
   * signal ends the run, with the partial answer attached.
   */
  async completion(context: ContextInput, options: CompletionOptions = {}): Promise<CompletionResult> {
    if (this.closed) throw new RLMError('This RLM was closed; create a new one.');
    if (this.active) {
      throw new RLMError('completion() is already running on this RLM; await it first or use another RLM instance.');
    }
    if (this.depth >= this.maxDepth) {
      return this.plainCompletion(context, options);
    }
    // Input errors throw before any run state exists: nothing to clean up.
    const described = describeInput(context);
    if (isEmptyContext(context)) {
      throw new ConfigurationError('The context is empty: pass the text (or data, or a File) the question is about as the first argument of completion().');
    }
    const persistent = Boolean(this.options.persistent);
    const compaction = Boolean(this.options.compaction);
    const usage = new UsageTracker(this.options._parentUsage);
    let bestPartial: string | undefined;
    const guard = new RunGuard(this.options, usage, () => bestPartial, options.signal);
    const runId = newId();
    const trajectory: Trajectory = {
      id: runId,
      startedAt: new Date().toISOString(),
      config: this.runConfig(),
      rootPrompt: options.rootPrompt,
      context: described,
      iterations: [],
      status: 'running',
      usage: emptyUsage(),
    };
    this.active = { id: runId, guard, usage, cellSubcalls: undefined };
    const base = { runId, depth: this.depth };
    const logger = this.options.logger;
    this.emit({ type: 'run_start', ...base, config: trajectory.config, rootPrompt: options.rootPrompt });
    safely(() => logger?.runStarted(trajectory));
    const maxOutputChars = this.options.maxOutputChars ?? DEFAULTS.maxOutputChars;
    /** Waits for `promise` unless the run is stopped first (a wedged REPL must not hang it). */
    const until = <T>(promise: Promise<T>): Promise<T> => raceAbort(promise, guard.signal);
    let endReason: EndReason = 'answer';

    try {
      const env = this.environment();
      if (!persistent && this.envUsed) {
        this.contextCount = 0;
        this.historyCount = 0;
      }
      const contextIndex = this.contextCount++;
      // Boot and load the context while the first root LM call is in flight.
      const ready = this.prepare(env, context, contextIndex, !persistent && this.envUsed, base, trajectory);
      ready.catch(() => undefined);
      this.envUsed = true;

      const systemPrompt =
        this.options.customSystemPrompt ??
        buildSystemPrompt({
          recursive: this.depth + 1 < this.maxDepth,
          tools: describeTools(this.tools),
          subcallChars: DEFAULTS.subcallChars,
          maxOutputChars,
          compaction,
        });
      const metadata = buildMetadataMessage({
        rootPrompt: options.rootPrompt,
        contexts: [described],
        contextName: contextIndex === 0 ? 'context' : `context_${contextIndex}`,
        subcallChars: DEFAULTS.subcallChars,
      });
      const turn = (i: number) =>
        buildTurnPrompt({ iteration: i, maxIterations: this.maxIterations, contextCount: contextIndex + 1, historyCount: this.historyCount });
      let messages: ChatMessage[] = [
        { role: 'system', content: systemPrompt },
        { role: 'user', content: `${metadata}\n\n${turn(0)}` },
      ];
      const fullHistory: unknown[] = [];
      let compactions = 0;
      /** Messages a compaction keeps; compacting is pointless until more arrive. */
      let compactedLength = 2;
      let response: string | undefined;

      for (let i = 0; i < this.maxIterations && response === undefined; i++) {
        guard.check();
        if (compaction && messages.length > compactedLength && this.shouldCompact(messages)) {
          messages = await this.compact(messages, metadata, guard, fullHistory, ++compactions, turn(i), base);
          compactedLength = messages.length;
        }
        const started = performance.now();
        const timestamp = new Date().toISOString();
        this.emit({ type: 'iteration_start', ...base, iteration: i + 1 });
        const prompt = messages.map((m) => ({ ...m }));
        const lm = await this.callRoot(messages, guard);
        const text = lm.text;
        if (text.trim()) bestPartial = text;
        this.emit({ type: 'lm_response', ...base, iteration: i + 1, text, usage: lm.usage });
        // A reply that pushed the run over a limit is kept as the partial answer, not run.
        guard.check();
        messages.push({ role: 'assistant', content: text });

        const blocks = findCodeBlocks(text);
        const records: CodeBlockRecord[] = [];
        let final: string | null = null;
        if (blocks.length > 0) await until(ready);
        for (let b = 0; b < blocks.length && final === null; b++) {
          const record = await this.runCell(env, blocks[b]!, guard, i + 1, b, base);
          records.push(record);
          final = record.finalAnswer;
        }
        guard.check();
        let textAnswerError: string | undefined;
        if (final === null) {
          const textAnswer = findTextAnswer(text);
          if (textAnswer?.kind === 'final') final = textAnswer.value;
          if (textAnswer?.kind === 'final_var') {
            await until(ready);
            const value = await until(env.resolveVariable(textAnswer.name));
            if (value === null) {
              textAnswerError = `FINAL_VAR(${textAnswer.name}): there is no variable named '${textAnswer.name}' in the REPL, so this is not an answer yet. Create it in a repl block first (or set answer["content"] and answer["ready"] = True).`;
            } else {
              final = value;
            }
          }
        }
        const failed = records.filter((r) => r.errorType !== null && !r.interrupted);
        this.recordIteration(trajectory, usage, base, {
          iteration: i + 1,
          timestamp,
          prompt,
          response: text,
          reasoning: lm.reasoning,
          codeBlocks: records,
          finalAnswer: final,
          iterationTimeMs: performance.now() - started,
          usage: lm.usage,
        });
        if (final !== null) {
          response = final;
          break;
        }
        guard.recordIteration(failed.length > 0 ? failed.map((r) => r.stderr).join('\n') : undefined);

        let feedback: string;
        if (blocks.length > 0) {
          feedback = formatFeedback(blocks.slice(0, records.length).map((code, k) => ({ code, result: records[k]! })), maxOutputChars);
          if (textAnswerError) feedback += `\n\n${textAnswerError}`;
        } else if (textAnswerError) {
          feedback = textAnswerError;
        } else {
          feedback = hasOnlyForeignFences(text) ? `${NO_CODE_REMINDER} (Your \`\`\`python block was not run.)` : NO_CODE_REMINDER;
        }
        const next = i + 1 < this.maxIterations ? turn(i + 1) : FINAL_REQUEST;
        messages.push({ role: 'user', content: `${feedback}\n\n${next}` });
      }

      if (response === undefined) {
        // Out of turns: one last call for a plain-text answer, recorded like any iteration.
        endReason = 'max_iterations';
        guard.check();
        const started = performance.now();
        const timestamp = new Date().toISOString();
        this.emit({ type: 'iteration_start', ...base, iteration: this.maxIterations + 1 });
        const prompt = messages.map((m) => ({ ...m }));
        const lm = await this.callRoot(messages, guard);
        if (lm.text.trim()) bestPartial = lm.text;
        this.emit({ type: 'lm_response', ...base, iteration: this.maxIterations + 1, text: lm.text, usage: lm.usage });
        guard.check();
        const answer = findTextAnswer(lm.text);
        response = answer?.kind === 'final' ? answer.value : lm.text;
        messages.push({ role: 'assistant', content: lm.text });
        this.recordIteration(trajectory, usage, base, {
          iteration: this.maxIterations + 1,
          timestamp,
          prompt,
          response: lm.text,
          reasoning: lm.reasoning,
          codeBlocks: [],
          finalAnswer: response,
          iterationTimeMs: performance.now() - started,
          usage: lm.usage,
        });
      }

      if (persistent) {
        const index = this.historyCount++;
        await until(env.setVariable(`history_${index}`, messages, true));
        if (index === 0 && !compaction) await until(env.setVariable('history', messages, true));
      }
      trajectory.status = 'completed';
      trajectory.endReason = endReason;
      trajectory.response = response;
      trajectory.usage = usage.summary();
      trajectory.executionTimeMs = guard.elapsedMs();
      const result: CompletionResult = { response, usage: trajectory.usage, executionTimeMs: trajectory.executionTimeMs, trajectory };
      safely(() => logger?.runEnded(trajectory));
      this.emit({ type: 'run_end', ...base, result });
      return result;
    } catch (caught) {
      const error = guard.reason ?? caught;
      trajectory.usage = usage.summary();
      trajectory.executionTimeMs = guard.elapsedMs();
      trajectory.error = describeError(error);
      if (error instanceof RunEndedError) {
        trajectory.status = error instanceof CancellationError ? 'cancelled' : 'failed';
        trajectory.endReason = error instanceof CancellationError ? 'cancelled' : ((error as { limit?: EndReason }).limit ?? 'error');
        // The latest reply, even one that arrived after the limit was crossed.
        error.partialAnswer = bestPartial ?? error.partialAnswer;
        error.usage = trajectory.usage;
        error.trajectory = trajectory;
      } else {
        trajectory.status = 'failed';
        trajectory.endReason = 'error';
      }
      safely(() => logger?.runEnded(trajectory));
      this.emit({ type: 'error', ...base, error: error as Error, trajectory });
      throw error;
    } finally {
      guard.dispose();
      this.active = undefined;
      if (this.depth > 0 && !persistent) {
        // Child RLMs are one-shot: give their REPL back now.
        await this.close().catch(() => undefined);
      }
      await logger?.flush().catch((error: unknown) => console.error('rlm-web: trajectory store failed', error));
    }
  }

  private recordIteration(trajectory: Trajectory, usage: UsageTracker, base: { runId: string; depth: number }, record: IterationRecord): void {
    trajectory.iterations.push(record);
    trajectory.usage = usage.summary();
    this.emit({ type: 'iteration_end', ...base, record });
    this.emit({ type: 'usage', ...base, usage: trajectory.usage });
    safely(() => this.options.logger?.iterationFinished(trajectory, record));
  }


  /** At the depth limit (maxDepth: 0 for the root) an RLM is a plain LM call. */
  private async plainCompletion(context: ContextInput, options: CompletionOptions): Promise<CompletionResult> {
    const started = performance.now();
    const usage = new UsageTracker(this.options._parentUsage);
    const logger = this.options.logger;
    const trajectory: Trajectory = {
      id: newId(),
      startedAt: new Date().toISOString(),
      config: this.runConfig(),
      rootPrompt: options.rootPrompt,
      context: describeInput(context),
      iterations: [],
      status: 'running',
      usage: emptyUsage(),
    };
    const base = { runId: trajectory.id, depth: this.depth };
    this.emit({ type: 'run_start', ...base, config: trajectory.config, rootPrompt: options.rootPrompt });
    safely(() => logger?.runStarted(trajectory));
    try {
      const text = await contextAsText(context);
      const messages: ChatMessage[] = [{ role: 'user', content: options.rootPrompt ? `${text}\n\n${options.rootPrompt}` : text }];
      const timestamp = new Date().toISOString();
      const lm = await this.rootClient.complete({ messages, signal: options.signal });
      usage.add(this.rootClient.model, lm.usage);
      const record: IterationRecord = {
        iteration: 1,
        timestamp,
        prompt: messages,
        response: lm.text,
        reasoning: lm.reasoning,
        codeBlocks: [],
        finalAnswer: lm.text,
        iterationTimeMs: performance.now() - started,
        usage: lm.usage,
      };
      this.recordIteration(trajectory, usage, base, record);
      Object.assign(trajectory, { status: 'completed', endReason: 'answer', response: lm.text, usage: usage.summary(), executionTimeMs: performance.now() - started });
      const result: CompletionResult = { response: lm.text, usage: trajectory.usage, executionTimeMs: trajectory.executionTimeMs!, trajectory };
      safely(() => logger?.runEnded(trajectory));
      this.emit({ type: 'run_end', ...base, result });
      return result;
    } catch (error) {
      Object.assign(trajectory, { status: 'failed', endReason: 'error', error: describeError(error), usage: usage.summary(), executionTimeMs: performance.now() - started });
      safely(() => logger?.runEnded(trajectory));
      this.emit({ type: 'error', ...base, error: error as Error, trajectory });
      throw error;
    } finally {
      await logger?.flush().catch((error: unknown) => console.error('rlm-web: trajectory store failed', error));
    }
  }

  private async prepare(
    env: ReplEnvironment,
    context: ContextInput,
    index: number,
    reset: boolean,
    base: { runId: string; depth: number },
    trajectory: Trajectory,
  ): Promise<void> {
    const firstBoot = env.info === undefined;
    const info = await env.start();
    if (firstBoot) this.emit({ type: 'repl_ready', ...base, info });
    if (reset) {
      await env.reset();
      this.toolsRegistered = false;
    }
    // A REPL from the pool or warmed up by warmUp() has no tools yet either.
    if (!this.toolsRegistered) {
      await env.registerTools(toToolDefinitions(this.tools));
      this.toolsRegistered = true;
    }
    const started = performance.now();
    const description = await env.loadContext(index, context);
    trajectory.context = { ...description, bytes: trajectory.context.bytes };
    this.emit({ type: 'context_loaded', ...base, index, description, ms: performance.now() - started });
  }

  private async callRoot(messages: ChatMessage[], guard: RunGuard): Promise<LMResult> {
    try {
      const lm = await this.rootClient.complete({ messages, signal: guard.signal, cachePrefix: messages.length });
      this.active?.usage.add(this.rootClient.model, lm.usage);
      return lm;
    } catch (error) {
      throw guard.reason ?? error;
    }
  }

  private async runCell(
    env: ReplEnvironment,
    code: string,
    guard: RunGuard,
    iteration: number,
    block: number,
    base: { runId: string; depth: number },
  ): Promise<CodeBlockRecord> {
    this.emit({ type: 'code_start', ...base, iteration, block, code });
    const subcalls: SubcallRecord[] = [];
    if (this.active) this.active.cellSubcalls = subcalls;
    let result: CellResult;
    try {
      result = await env.execute(code, {
        timeoutMs: this.options.cellTimeoutMs ?? (this.options.environmentOptions?.cellTimeoutMs as number | undefined) ?? DEFAULTS.cellTimeoutMs,
        signal: guard.signal,
      });
    } finally {
      if (this.active) this.active.cellSubcalls = undefined;
    }
    const record: CodeBlockRecord = {
      code,
      stdout: result.stdout,
      stderr: result.stderr,
      locals: result.locals,
      executionTimeMs: result.executionTimeMs,
      finalAnswer: result.finalAnswer,
      errorType: result.errorType,
      interrupted: result.interrupted,
      subcalls,
    };
    this.emit({ type: 'code_end', ...base, iteration, block, record });
    return record;
  }

  private shouldCompact(messages: ChatMessage[]): boolean {
    const window = contextWindowFor(this.rootClient.model, this.options.contextWindows);
    const threshold = this.options.compactionThreshold ?? DEFAULTS.compactionThreshold;
    return estimateTokens(messages) >= threshold * window;
  }

  private async compact(
    messages: ChatMessage[],
    metadata: string,
    guard: RunGuard,
    fullHistory: unknown[],
    count: number,
    nextTurn: string,
    base: { runId: string; depth: number },
  ): Promise<ChatMessage[]> {
    const lm = await this.callRoot([...messages, { role: 'user', content: COMPACTION_REQUEST }], guard);
    // The REPL's `history`: each compacted stretch of conversation, then its summary.
    fullHistory.push(messages.slice(2).map((m) => ({ ...m })), { type: 'summary', content: lm.text });
    await this.env?.setVariable('history', fullHistory, true);
    this.emit({ type: 'compaction', ...base, summary: lm.text, count });
    this.emit({ type: 'usage', ...base, usage: this.active?.usage.summary() ?? emptyUsage() });
    return [
      messages[0]!,
      // The metadata without the first turn's "do not answer yet".
      { role: 'user', content: metadata },
      { role: 'assistant', content: lm.text },
      { role: 'user', content: `${buildCompactedNote(count)}\n\n${nextTurn}` },
    ];
  }

  // ---------------------------------------------------------------- sub-calls

  private clientFor(model: string | null, depthDefault: boolean): LMClient {
    if (model) {
      const all = [this.rootClient, ...this.otherClients];
      const found = all.find((c) => c.model === model);
      if (!found) {
        throw new ConfigurationError(`unknown model '${model}'; the models registered with this RLM are: ${all.map((c) => `'${c.model}'`).join(', ')}.`);
      }
      return found;
    }
    return depthDefault ? (this.otherClients[0] ?? this.rootClient) : this.rootClient;
  }

  private async handleHostRequest(request: HostRequest, signal: AbortSignal): Promise<HostReply> {
    const run = this.active;
    if (!run) return { error: 'No run is active: sub-calls are only answered during completion().' };
    try {
      if (request.op === 'tool') {
        run.guard.check();
        const tool = this.tools.find((t) => t.name === request.name);
        if (!tool) return { error: `unknown tool '${request.name}'` };
        return { value: await callTool(tool, request.args, request.kwargs) };
      }
      const recursive = request.op === 'rlm_query' && this.depth + 1 < this.maxDepth;
      // Validate the model name once for the whole batch: an unknown model is the caller's bug.
      const client = recursive ? undefined : this.clientFor(request.model, true);
      if (recursive && request.model) this.clientFor(request.model, false);
      const target = run.cellSubcalls;
      const records = await mapConcurrent(request.prompts, this.options.maxConcurrentSubcalls ?? DEFAULTS.maxConcurrentSubcalls, (prompt) =>
        recursive ? this.childCall(prompt, request.model, run, signal) : this.leafCall(client!, prompt, run, signal),
      );
      // Recorded in prompt order, whatever order they finished in.
      target?.push(...records);
      return { results: records.map((record) => (record.error !== undefined ? `Error: ${record.error}` : record.response)) };
    } catch (error) {
      return { error: error instanceof ConfigurationError ? error.message : describeError(error) };
    }
  }

  private async leafCall(client: LMClient, prompt: string, run: ActiveRun, signal: AbortSignal): Promise<SubcallRecord> {
    const base = { runId: run.id, depth: this.depth };
    this.emit({ type: 'subcall_start', ...base, kind: 'llm', model: client.model, prompt: prompt.slice(0, 200) });
    const started = performance.now();
    let record: SubcallRecord;
    try {
      run.guard.check();
      const lm = await client.complete({ messages: [{ role: 'user', content: prompt }], signal: anySignal(signal, run.guard.signal) });
      run.usage.add(client.model, lm.usage);
      record = { kind: 'llm', model: client.model, prompt, response: lm.text, usage: summarizeCall(client.model, lm.usage), executionTimeMs: performance.now() - started };
    } catch (error) {
      const reason = run.guard.reason;
      const message = reason ? `run stopped: ${reason.message}` : `LM query failed - ${error instanceof LMError ? error.message : describeError(error)}`;
      record = { kind: 'llm', model: client.model, prompt, response: '', usage: summarizeCall(client.model, emptyLMUsage()), executionTimeMs: performance.now() - started, error: message };
    }
    this.emit({ type: 'subcall_end', ...base, record });
    return record;
  }

  private async childCall(prompt: string, model: string | null, run: ActiveRun, signal: AbortSignal): Promise<SubcallRecord> {
    const base = { runId: run.id, depth: this.depth };
    const rootSpec: BackendSpec = model
      ? { backend: this.clientFor(model, false) }
      : { backend: this.options.backend ?? 'openai', backendOptions: this.options.backendOptions };
    this.emit({ type: 'subcall_start', ...base, kind: 'rlm', model: model ?? this.rootClient.model, prompt: prompt.slice(0, 200) });
    const started = performance.now();
    const childUsage = new UsageTracker(run.usage);
    const remaining = run.guard.remaining();
    let record: SubcallRecord;
    try {
      run.guard.check();
      const child = new RLMCore(
        {
          ...this.options,
          ...remaining,
          backend: rootSpec.backend,
          backendOptions: rootSpec.backendOptions,
          customTools: this.options.customSubTools ?? this.options.customTools,
          customSubTools: this.options.customSubTools,
          persistent: false,
          compaction: false,
          logger: undefined,
          onEvent: (event) => this.emit(event),
          _depth: this.depth + 1,
          _parentUsage: childUsage,
          _pool: this.childPool(),
        },
        this.deps,
      );
      const result = await child.completion(prompt, { signal: anySignal(signal, run.guard.signal) });
      record = { kind: 'rlm', model: child.rootClient.model, prompt, response: result.response, usage: childUsage.summary(), executionTimeMs: performance.now() - started, trajectory: result.trajectory };
    } catch (error) {
      const reason = run.guard.reason;
      const message = reason ? `run stopped: ${reason.message}` : `Child RLM completion failed - ${describeError(error)}`;
      record = {
        kind: 'rlm',
        model: model ?? this.rootClient.model,
        prompt,
        response: error instanceof RunEndedError ? (error.partialAnswer ?? '') : '',
        usage: childUsage.summary(),
        executionTimeMs: performance.now() - started,
        error: message,
        trajectory: error instanceof RunEndedError ? error.trajectory : undefined,
      };
    }
    this.emit({ type: 'subcall_end', ...base, record });
    return record;
  }
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch (error) {
    console.error('rlm-web: trajectory logger failed', error);
  }
}

/** Settles with `promise`, or rejects with the signal's reason once it aborts. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** A context as prompt text, for plain LM calls at the depth limit. */
async function contextAsText(context: ContextInput): Promise<string> {
  if (typeof context === 'string') return context;
  if (typeof Blob !== 'undefined' && context instanceof Blob) return context.text();
  if (context instanceof ArrayBuffer || ArrayBuffer.isView(context)) return new TextDecoder().decode(context);
  return JSON.stringify(context);
}

function isEmptyContext(context: ContextInput): boolean {
  if (typeof context === 'string') return context.length === 0;
  if (Array.isArray(context)) return context.length === 0;
  if (typeof Blob !== 'undefined' && context instanceof Blob) return context.size === 0;
  if (context instanceof ArrayBuffer || ArrayBuffer.isView(context)) return context.byteLength === 0;
  if (context !== null && typeof context === 'object') return Object.keys(context).length === 0;
  return context === null || context === undefined;
}

function anySignal(...signals: AbortSignal[]): AbortSignal {
  return AbortSignal.any(signals);
}

/** What we can say about a context before it reaches Python. */
export function describeInput(context: ContextInput): ContextDescription & { bytes?: number | undefined } {
  if (typeof context === 'string') return { type: 'str', length: context.length };
  if (typeof Blob !== 'undefined' && context instanceof Blob) return { type: 'str', length: context.size, bytes: context.size };
  if (context instanceof ArrayBuffer) return { type: 'str', length: context.byteLength, bytes: context.byteLength };
  if (ArrayBuffer.isView(context)) return { type: 'str', length: context.byteLength, bytes: context.byteLength };
  if (Array.isArray(context)) return { type: 'list', length: context.length };
  if (context !== null && typeof context === 'object') return { type: 'dict', length: Object.keys(context).length };
  throw new ConfigurationError(`Unsupported context type '${typeof context}': pass a string, an array, a plain object, a Blob/File or an ArrayBuffer.`);
}
