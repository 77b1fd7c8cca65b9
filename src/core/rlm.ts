/**
 * The RLM loop. The root model writes ```repl code turn after turn; the REPL runs it; the
 * model's sub-calls (llm_query, rlm_query, tools) come back here to be answered with the
 * page's LM clients, metered against the run's limits. The steps live in their own files:
 * options, events, recorder, session, turn, compaction, subcalls, children.
 */
import { raceAbort } from './abort';
import { runChild, type ChildContext } from './children';
import { Compactor } from './compaction';
import { contextAsText, describeInput, isEmptyContext } from './context-input';
import { ConfigurationError, RLMError, StorageError } from './errors';
import { EventHub, streamRun, type RLMStream } from './events';
import { RunGuard } from './limits';
import { resolveOptions, runConfig, SUBCALL_CHARS, type BackendSpec, type CompletionOptions, type ResolvedOptions, type RLMCoreOptions } from './options';
import { EnvironmentPool } from './pool';
import { buildMetadataMessage, buildOpening, buildSystemPrompt, buildTurnPrompt, FINAL_REQUEST, withOrchestratorGuidance } from './prompts';
import { RunRecorder } from './recorder';
import type { Run } from './run';
import { Session } from './session';
import { SubcallDispatcher } from './subcalls';
import { describeTools, normalizeTools, type NormalizedTool } from './tools';
import { playFinalTurn, playTurn, type TurnSetup } from './turn';
import type { ChatMessage, CompletionResult, ContextInput, EndReason, EnvironmentFactory, LMClient, ReplInfo } from './types';
import { UsageTracker } from './usage';

/** How core gets concrete clients and environments without importing them. */
export interface RLMDependencies {
  createClient(spec: BackendSpec): LMClient;
  createEnvironment(name: string): EnvironmentFactory;
}

export class RLMCore {
  readonly depth: number;
  private readonly opts: ResolvedOptions;
  private readonly rootClient: LMClient;
  private readonly tools: NormalizedTool[];
  private readonly envFactory: EnvironmentFactory;
  private readonly hub: EventHub;
  private readonly session: Session;
  private readonly subcalls: SubcallDispatcher;
  /** REPLs for child RLMs: the root's own, shared by every descendant. */
  private ownPool: EnvironmentPool | undefined;
  private active: Run | undefined;
  private closed = false;

  constructor(
    options: RLMCoreOptions,
    private readonly deps: RLMDependencies,
    /** @internal set when this RLM is a child of another. */
    private readonly child?: ChildContext,
  ) {
    this.opts = resolveOptions(options);
    this.depth = child?.depth ?? 0;
    this.rootClient = deps.createClient({ backend: this.opts.backend, backendOptions: options.backendOptions });
    const otherClients = (options.otherBackends ?? []).map((spec) => deps.createClient(spec));
    this.tools = normalizeTools(options.customTools);
    if (options.customSubTools) normalizeTools(options.customSubTools);
    this.envFactory = typeof options.environment === 'function' ? options.environment : deps.createEnvironment(this.opts.environmentName);
    this.hub = new EventHub(options.onEvent);
    this.subcalls = new SubcallDispatcher(
      { root: this.rootClient, others: otherClients, tools: this.tools, recursive: this.depth + 1 < this.opts.maxDepth, maxConcurrent: this.opts.maxConcurrentSubcalls, maxConcurrentChildren: this.opts.maxConcurrentChildren, sampling: this.opts.subSamplingArgs },
      () => this.active,
      (prompt, model, run, signal) => runChild(this.spawner(), prompt, model, run, signal),
    );
    this.session = new Session(
      { factory: this.envFactory, environmentOptions: this.opts.environmentOptions, tools: this.tools, persistent: this.opts.persistent, pool: child?.pool },
      { handle: (request, signal) => this.subcalls.handle(request, signal) },
    );
    // Storage failures reported by the logger (RLMLogger is an EventTarget) become events.
    const logger = options.logger as Partial<EventTarget> | undefined;
    logger?.addEventListener?.('error', (event) => {
      const error = (event as Event & { error?: unknown }).error;
      if (error instanceof StorageError) this.hub.emit({ type: 'storage_error', runId: this.active?.base.runId ?? '', depth: this.depth, error });
    });
  }

  /** The root model's name. */
  get rootModel(): string {
    return this.rootClient.model;
  }

  /** The REPL's bridge and boot time, once it has booted. */
  get replInfo(): ReplInfo | undefined {
    return this.session.current?.info;
  }

  /** Boots the REPL now (it otherwise boots during the first root LM call). */
  async warmUp(): Promise<ReplInfo> {
    return this.session.environment().start();
  }

  /** Releases the REPL worker(s). The instance cannot be used afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    await this.session.close();
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
    return streamRun(this.hub, this.depth, () => this.completion(context, options));
  }

  /**
   * Answers `options.rootPrompt` about `context` (or, without a root prompt, the request the
   * context itself states). Rejects with a RunEndedError subclass when a limit or the
   * signal ends the run, with the partial answer attached.
   */
  async completion(context: ContextInput, options: CompletionOptions = {}): Promise<CompletionResult> {
    this.assertIdle();
    if (this.depth >= this.opts.maxDepth) return this.plainCompletion(context, options);
    // Input errors throw before any run state exists: nothing to clean up.
    const described = describeInput(context);
    if (isEmptyContext(context)) {
      throw new ConfigurationError('The context is empty: pass the text (or data, or a File) the question is about as the first argument of completion().');
    }
    const run = this.beginRun(options, described);
    const { guard, recorder } = run;
    const until = <T>(promise: Promise<T>): Promise<T> => raceAbort(promise, guard.signal);
    try {
      const opened = this.session.open(context, recorder, this.hub);
      const { env, index } = opened;
      const sampling = this.opts.samplingArgs;
      const compactor = this.opts.compaction ? new Compactor(this.rootClient, env, { threshold: this.opts.compactionThreshold, contextWindows: this.opts.given.contextWindows, sampling }) : undefined;
      const ready = compactor ? compactor.prepare(opened.ready) : opened.ready;
      ready.catch(() => undefined);
      const setup: TurnSetup = { client: this.rootClient, env, ready, cellTimeoutMs: this.opts.cellTimeoutMs, maxOutputChars: this.opts.maxOutputChars, sampling };
      const metadata = buildMetadataMessage({ rootPrompt: options.rootPrompt, contexts: [described], contextName: index === 0 ? 'context' : `context_${index}`, subcallChars: SUBCALL_CHARS });
      const opening = buildOpening(metadata, this.opts.userPrologue);
      const turnPrompt = (i: number) => buildTurnPrompt({ iteration: i, maxIterations: this.opts.maxIterations, contextCount: index + 1, historyCount: this.session.historyCount });
      let messages: ChatMessage[] = [
        { role: 'system', content: this.systemPrompt() },
        { role: 'user', content: `${opening}\n\n${turnPrompt(0)}` },
      ];
      let response: string | undefined;
      let endReason: EndReason = 'answer';
      for (let i = 0; i < this.opts.maxIterations && response === undefined; i++) {
        guard.check();
        if (compactor?.due(messages)) messages = await compactor.compact(run, messages, opening, turnPrompt(i));
        const turn = await playTurn(setup, run, messages, i + 1);
        recorder.iteration(turn.record);
        if (turn.answer !== null) {
          response = turn.answer;
          break;
        }
        guard.recordIteration(turn.errors);
        const next = i + 1 < this.opts.maxIterations ? turnPrompt(i + 1) : FINAL_REQUEST;
        messages.push({ role: 'user', content: `${turn.feedback}\n\n${next}` });
        await compactor?.record([{ role: 'assistant', content: turn.record.response }, { role: 'user', content: turn.feedback }], until);
      }
      if (response === undefined) {
        endReason = 'max_iterations';
        guard.check();
        const final = await playFinalTurn(setup, run, messages, this.opts.maxIterations + 1);
        recorder.iteration(final.record);
        response = final.answer;
      }
      await this.session.saveHistory(messages, this.opts.compaction, until);
      return recorder.succeed(response, endReason, guard.elapsedMs());
    } catch (caught) {
      throw recorder.fail(guard.reason ?? caught, guard.elapsedMs(), run.bestPartial);
    } finally {
      await this.endRun(run);
    }
  }

  private assertIdle(): void {
    if (this.closed) throw new RLMError('This RLM was closed; create a new one.');
    if (this.active) throw new RLMError('completion() is already running on this RLM; await it first or use another RLM instance.');
  }

  private beginRun(options: CompletionOptions, context: ReturnType<typeof describeInput>): Run {
    const usage = new UsageTracker(this.child?.parentUsage);
    const recorder = new RunRecorder(this.hub, this.opts.given.logger, usage, { config: runConfig(this.opts, this.rootClient.model, this.depth), depth: this.depth, rootPrompt: options.rootPrompt, context });
    let bestPartial: () => string | undefined = () => undefined;
    const guard = new RunGuard(this.opts.limits, usage, () => bestPartial(), options.signal);
    const run: Run = { base: recorder.base, usage, hub: this.hub, recorder, guard, cellSubcalls: undefined, bestPartial: undefined };
    bestPartial = () => run.bestPartial;
    this.active = run;
    recorder.start();
    return run;
  }

  private async endRun(run: Run): Promise<void> {
    run.guard.dispose();
    this.active = undefined;
    // Child RLMs are one-shot: give their REPL back now.
    if (this.depth > 0 && !this.opts.persistent) await this.close().catch(() => undefined);
    await run.recorder.flush();
  }

  private systemPrompt(): string {
    const prompt =
      this.opts.given.customSystemPrompt ??
      buildSystemPrompt({
        recursive: this.depth + 1 < this.opts.maxDepth,
        tools: describeTools(this.tools),
        subcallChars: SUBCALL_CHARS,
        maxOutputChars: this.opts.maxOutputChars,
        compaction: this.opts.compaction,
      });
    return this.opts.orchestrator ? withOrchestratorGuidance(prompt) : prompt;
  }

  /** At the depth limit (maxDepth: 0 for the root) an RLM is a plain LM call, recorded as one iteration. */
  private async plainCompletion(context: ContextInput, options: CompletionOptions): Promise<CompletionResult> {
    const started = performance.now();
    const usage = new UsageTracker(this.child?.parentUsage);
    const recorder = new RunRecorder(this.hub, this.opts.given.logger, usage, { config: runConfig(this.opts, this.rootClient.model, this.depth), depth: this.depth, rootPrompt: options.rootPrompt, context: describeInput(context) });
    recorder.start();
    try {
      const text = await contextAsText(context);
      const messages: ChatMessage[] = [{ role: 'user', content: options.rootPrompt ? `${text}\n\n${options.rootPrompt}` : text }];
      const timestamp = new Date().toISOString();
      const lm = await this.rootClient.complete({ messages, signal: options.signal, sampling: this.opts.samplingArgs });
      usage.add(this.rootClient.model, lm.usage);
      recorder.iteration({ iteration: 1, timestamp, prompt: messages, response: lm.text, reasoning: lm.reasoning, codeBlocks: [], finalAnswer: lm.text, iterationTimeMs: performance.now() - started, usage: lm.usage });
      return recorder.succeed(lm.text, 'answer', performance.now() - started);
    } catch (error) {
      throw recorder.fail(error, performance.now() - started);
    } finally {
      await recorder.flush();
    }
  }

  /** How this RLM starts children (children.ts). */
  private spawner() {
    return {
      options: this.opts.given,
      depth: this.depth,
      rootModel: this.rootClient.model,
      dispatcher: () => this.subcalls,
      pool: () => this.childPool(),
      emit: (event: Parameters<EventHub['emit']>[0]) => this.hub.emit(event),
      create: (options: RLMCoreOptions, child: ChildContext) => new RLMCore(options, this.deps, child),
    };
  }

  /** The pool child RLMs take their REPLs from (created by the root on first use). */
  private childPool(): EnvironmentPool {
    if (this.child) return this.child.pool;
    this.ownPool ??= new EnvironmentPool(this.envFactory, this.opts.environmentOptions, this.opts.maxConcurrentChildren);
    return this.ownPool;
  }
}
