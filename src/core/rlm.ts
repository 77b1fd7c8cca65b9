/**
 * The RLM loop. The root model writes ```repl code turn after turn; the REPL runs it; the
 * model's sub-calls (llm_query, rlm_query, tools) come back here to be answered with the
 * page's LM clients, metered against the run's limits. The steps live in their own files:
 * options, events, recorder, session, turn, compaction, subcalls, children, plain (the call at
 * the depth limit), resume, schema-answers.
 */
import { raceAbort } from './abort';
import { runChild, type ChildContext } from './children';
import { Compactor } from './compaction';
import { checkEmptyBlob, describeInput, isEmptyContext } from './context-input';
import { ConfigurationError, RLMError, StorageError } from './errors';
import { EventHub, streamRun, type RLMStream } from './events';
import { RunGuard } from './limits';
import { DEFAULT_ANSWER_ATTEMPTS, resolveOptions, runConfig, SUBCALL_CHARS, type BackendSpec, type CompletionOptions, type ResolvedOptions, type RLMCoreOptions } from './options';
import { plainCompletion } from './plain';
import { EnvironmentPool } from './pool';
import { buildAnswerFormatSection, buildMetadataMessage, buildOpening, buildSystemPrompt, buildTurnPrompt, FINAL_REQUEST, FINAL_REQUEST_STRUCTURED, withOrchestratorGuidance } from './prompts';
import { RunRecorder } from './recorder';
import { STRUCTURED_ANSWER_VARIABLE, toJSONText } from './schema';
import { AnswerChecker } from './schema-answers';
import { CellReplay, planResume, replayCells, resumedMessages, type ResumeOptions, type ResumePlan, type RunSource } from './resume';
import type { Run } from './run';
import { Session } from './session';
import { SubcallDispatcher } from './subcalls';
import { describeTools, normalizeTools, type NormalizedTool } from './tools';
import { playFinalTurn, playTurn, storedFeedback, type TurnSetup } from './turn';
import type { ChatMessage, CompletionResult, ContextInput, EndReason, EnvironmentFactory, IterationRecord, JSONSchema, LMClient, ReplEnvironment, ReplInfo } from './types';
import type { StandardSchemaV1 } from '@standard-schema/spec';
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
  /** REPLs for child RLMs: the root's own, shared by every descendant of one run. */
  private ownPool: EnvironmentPool | undefined;
  /** Closing the last run's pool of child REPLs (see renew()). */
  private retiringPool: Promise<void> = Promise.resolve();
  private active: Run | undefined;
  /** Set while a resume replays a stored cell. */
  private replaying: CellReplay | undefined;
  private closed = false;
  /** Whether the REPL was last told to hand answers back as JSON. */
  private structuredAnswers = false;

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
      (prompt, model, run, signal, call, schema) => runChild(this.spawner(), prompt, model, run, signal, call, schema),
    );
    this.session = new Session(
      { factory: this.envFactory, environmentOptions: this.opts.environmentOptions, tools: this.tools, persistent: this.opts.persistent, pool: child?.pool },
      // During a resume's replay, Python's requests are answered from the stored run.
      { handle: (request, signal) => this.replaying?.handle(request) ?? this.subcalls.handle(request, signal), refused: (reason) => this.subcalls.refused(reason) },
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

  /**
   * The REPL's bridge and boot time, once it has booted. Between completions (without
   * `persistent`): the next completion's REPL once it has booted, until then the last one's.
   */
  get replInfo(): ReplInfo | undefined {
    return this.session.info;
  }

  /**
   * Boots the REPL now (it otherwise boots during the first root LM call), and with
   * `maxDepth` > 1 the REPL of the first child RLM too. Between completions it resolves when
   * the spare REPL the next completion takes has booted.
   */
  async warmUp(): Promise<ReplInfo> {
    const started = this.session.start();
    this.warmChildren();
    return started;
  }

  /** Releases the REPL worker(s), spares included. The instance cannot be used afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    await this.session.close();
    const pool = this.ownPool;
    this.ownPool = undefined;
    await pool?.close();
    await this.retiringPool;
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
  stream(context: ContextInput, options?: CompletionOptions & { schema?: undefined }): RLMStream;
  stream<T>(context: ContextInput, options: CompletionOptions & { schema: StandardSchemaV1<unknown, T> }): RLMStream<T>;
  stream<T = unknown>(context: ContextInput, options: CompletionOptions & { schema: JSONSchema }): RLMStream<T>;
  stream(context: ContextInput, options?: CompletionOptions): RLMStream<unknown>;
  stream(context: ContextInput, options: CompletionOptions = {}): RLMStream<unknown> {
    return streamRun(this.hub, this.depth, () => this.completion(context, options));
  }

  /**
   * Answers `options.rootPrompt` about `context` (or, without a root prompt, the request the
   * context itself states). Rejects with a RunEndedError subclass when a limit or the
   * signal ends the run, with the partial answer attached.
   *
   * With `options.schema` the answer is validated (failures are fed back to the model, up
   * to `maxAnswerAttempts`, then AnswerValidationError) and `response` is the validated
   * value, typed from a Standard Schema (or `T` for a JSON Schema).
   *
   * @example
   * const Verdict = z.object({ guilty: z.boolean(), evidence: z.array(z.string()) });
   * const { response } = await rlm.completion(transcript, { rootPrompt: 'Who did it?', schema: Verdict });
   * response.evidence; // string[]
   */
  completion(context: ContextInput, options?: CompletionOptions & { schema?: undefined }): Promise<CompletionResult>;
  completion<T>(context: ContextInput, options: CompletionOptions & { schema: StandardSchemaV1<unknown, T> }): Promise<CompletionResult<T>>;
  completion<T = unknown>(context: ContextInput, options: CompletionOptions & { schema: JSONSchema }): Promise<CompletionResult<T>>;
  completion(context: ContextInput, options?: CompletionOptions): Promise<CompletionResult<unknown>>;
  async completion(context: ContextInput, options: CompletionOptions = {}): Promise<CompletionResult<unknown>> {
    this.assertIdle();
    // Input errors throw before any run state exists: nothing to clean up.
    const answers = options.schema === undefined ? undefined : await AnswerChecker.create(options.schema, options.maxAnswerAttempts ?? DEFAULT_ANSWER_ATTEMPTS, this.opts.maxAnswerChars);
    if (this.depth >= this.opts.maxDepth) {
      return plainCompletion({ client: this.rootClient, hub: this.hub, logger: this.opts.given.logger, config: runConfig(this.opts, this.rootClient.model, this.depth), depth: this.depth, parentUsage: this.child?.parentUsage, parentCallId: this.child?.parentCallId, sampling: this.opts.samplingArgs, maxAnswerChars: this.opts.maxAnswerChars }, context, options, answers);
    }
    const described = describeInput(context);
    if (isEmptyContext(context)) {
      await checkEmptyBlob(context);
      throw new ConfigurationError('The context is empty: pass the text (or data, or a File) the question is about as the first argument of completion().');
    }
    const run = this.beginRun(options, described, answers);
    // Kept (by a logger that keeps contexts) so that resume() can replay the run's cells.
    if (!this.opts.persistent) run.recorder.keepContext(context);
    return this.drive(run, context, options.rootPrompt, answers);
  }

  /**
   * Continues a stored run that did not finish (a closed tab, a crash, a limit, a stop). The
   * REPL is rebuilt by replaying the run's finished cells with their recorded sub-call and tool
   * results — no LM is called for them — and each replayed cell must print what the stored
   * one printed; then the loop goes on from the next turn with the stored conversation, under
   * the same run id, its limits counting what the run had already spent.
   *
   * Rejects with ResumeError (no store, no such run, nothing to resume, the context is
   * missing or different) or ReplayMismatchError before any new LM call; with a
   * RunEndedError subclass when the continued run is stopped, as completion() does.
   *
   * @example
   * const logger = new RLMLogger({ store: new IndexedDBTrajectoryStore() });
   * const rlm = new RLM({ ...sameOptionsAsBefore, logger });
   * const [last] = await logger.store.listRuns();
   * if (last.status === 'interrupted') console.log((await rlm.resume(last.id)).response);
   */
  async resume(runId: string, options: ResumeOptions = {}): Promise<CompletionResult> {
    this.assertIdle();
    if (this.depth > 0) throw new RLMError('resume() is for root runs.');
    if (this.opts.persistent) throw new ConfigurationError('resume() needs an RLM without persistent: true (a persistent REPL holds state from earlier completions that a replay cannot rebuild).');
    const source = options.store ?? (this.opts.given.logger as { store?: RunSource } | undefined)?.store;
    const plan = await planResume(runId, source, options, this.rootClient.model);
    this.assertIdle();
    const run = this.beginRun({ rootPrompt: plan.stored.rootPrompt, signal: options.signal }, plan.stored.context, undefined, plan);
    // A context given again is kept now, so that a later resume of this run finds it.
    if (options.context !== undefined) run.recorder.keepContext(plan.context);
    // Runs with typed answers are not resumed (planResume), so the response is the answer's text.
    return (await this.drive(run, plan.context, plan.stored.rootPrompt, undefined, plan)) as CompletionResult;
  }

  /** The loop: a fresh run from turn 1, or a resumed one from after its replay. */
  private async drive(run: Run, context: ContextInput, rootPrompt: string | undefined, answers: AnswerChecker | undefined, resumed?: ResumePlan): Promise<CompletionResult<unknown>> {
    const { guard, recorder } = run;
    const until = <T>(promise: Promise<T>): Promise<T> => raceAbort(promise, guard.signal);
    const before = resumed?.elapsedMs ?? 0;
    const elapsed = () => before + guard.elapsedMs();
    try {
      const opened = this.session.open(context, recorder, this.hub);
      // Children's REPLs boot while the root's first LM call is in flight.
      this.warmChildren();
      const { env, index } = opened;
      const sampling = this.opts.samplingArgs;
      const compactor = this.opts.compaction ? new Compactor(this.rootClient, env, { threshold: this.opts.compactionThreshold, contextWindows: this.opts.given.contextWindows, sampling }) : undefined;
      const ready = compactor ? compactor.prepare(opened.ready) : opened.ready;
      ready.catch(() => undefined);
      const setup: TurnSetup = { client: this.rootClient, env, ready: this.answerMode(env, ready, answers !== undefined), cellTimeoutMs: this.opts.cellTimeoutMs, maxOutputChars: this.opts.maxOutputChars, maxAnswerChars: this.opts.maxAnswerChars, sampling, answers };
      const metadata = buildMetadataMessage({ rootPrompt, contexts: [resumed?.stored.context ?? recorder.trajectory.context], contextName: index === 0 ? 'context' : `context_${index}`, subcallChars: SUBCALL_CHARS });
      const opening = buildOpening(metadata, this.opts.userPrologue);
      const turnPrompt = (i: number) => buildTurnPrompt({ iteration: i, maxIterations: this.opts.maxIterations, contextCount: index + 1, historyCount: this.session.historyCount });
      let messages: ChatMessage[] = [
        { role: 'system', content: this.systemPrompt(answers) },
        { role: 'user', content: `${opening}\n\n${turnPrompt(0)}` },
      ];
      const done = resumed?.stored.iterations ?? [];
      if (resumed) {
        const nextTurn = (n: number) => (n < this.opts.maxIterations ? turnPrompt(n) : FINAL_REQUEST);
        // Compaction's `history` gets each replayed turn, as the original run's cells saw it.
        const replayed = (it: IterationRecord) => compactor?.record([{ role: 'assistant', content: it.response }, { role: 'user', content: storedFeedback(it, this.opts.maxOutputChars) }], until);
        messages = (await this.replay(run, env, ready, done, nextTurn, replayed)) ?? messages;
        recorder.start();
      }
      let response: string | undefined;
      let value: unknown;
      let endReason: EndReason = 'answer';
      for (let i = done.length; i < this.opts.maxIterations && response === undefined; i++) {
        guard.check();
        if (compactor && (await compactor.due(messages))) messages = await compactor.compact(run, messages, opening, turnPrompt(i));
        const turn = await playTurn(setup, run, messages, i + 1);
        recorder.iteration(turn.record);
        if (turn.invalid) throw turn.invalid;
        if (turn.answer !== null) {
          response = turn.answer;
          value = turn.value;
          break;
        }
        guard.recordIteration(turn.errors);
        const next = i + 1 < this.opts.maxIterations ? turnPrompt(i + 1) : answers ? FINAL_REQUEST_STRUCTURED : FINAL_REQUEST;
        messages.push({ role: 'user', content: `${turn.feedback}\n\n${next}` });
        await compactor?.record([{ role: 'assistant', content: turn.record.response }, { role: 'user', content: turn.feedback }], until);
      }
      if (response === undefined) {
        endReason = 'max_iterations';
        guard.check();
        const final = await playFinalTurn(setup, run, messages, Math.max(this.opts.maxIterations, done.length) + 1);
        recorder.iteration(final.record);
        if (final.invalid) throw final.invalid;
        response = final.answer;
        value = final.value;
      }
      await this.session.saveHistory(messages, this.opts.compaction, until);
      return answers ? recorder.succeed(toJSONText(value, response), endReason, elapsed(), { value }) : recorder.succeed(response, endReason, elapsed());
    } catch (caught) {
      throw recorder.fail(guard.reason ?? caught, elapsed(), run.bestPartial);
    } finally {
      await this.endRun(run);
    }
  }

  /**
   * Rebuilds a resumed run's REPL from its stored cells (answered from the record, never an LM)
   * and returns the conversation for the next turn (undefined when no turn had finished).
   */
  private async replay(
    run: Run,
    env: ReplEnvironment,
    ready: Promise<void>,
    done: IterationRecord[],
    nextTurn: (n: number) => string,
    replayed: (it: IterationRecord) => Promise<void> | undefined,
  ): Promise<ChatMessage[] | undefined> {
    const started = performance.now();
    await raceAbort(ready, run.guard.signal);
    const cells = await replayCells(run.base.runId, done, {
      env,
      cellTimeoutMs: this.opts.cellTimeoutMs,
      signal: run.guard.signal,
      answerFrom: (replay) => (this.replaying = replay),
      replayed,
    });
    this.hub.emit({ type: 'resumed', ...run.base, iterations: done.length, cells, replayMs: performance.now() - started });
    const last = done[done.length - 1];
    return last && resumedMessages(last, this.opts.maxOutputChars, nextTurn(last.iteration));
  }

  private assertIdle(): void {
    if (this.closed) throw new RLMError('This RLM was closed; create a new one.');
    if (this.active) throw new RLMError('completion() is already running on this RLM; await it first or use another RLM instance.');
  }

  private beginRun(options: CompletionOptions, context: ReturnType<typeof describeInput>, answers: AnswerChecker | undefined, resumed?: ResumePlan): Run {
    const usage = new UsageTracker(this.child?.parentUsage);
    // A resumed run counts what it had spent; its clock goes on from where it stopped.
    if (resumed) usage.seed(resumed.stored.usage);
    const limits = resumed && this.opts.limits.maxTimeMs !== undefined ? { ...this.opts.limits, maxTimeMs: Math.max(0, this.opts.limits.maxTimeMs - resumed.elapsedMs) } : this.opts.limits;
    const recorder = new RunRecorder(this.hub, this.opts.given.logger, usage, {
      config: runConfig(this.opts, this.rootClient.model, this.depth),
      depth: this.depth,
      rootPrompt: options.rootPrompt,
      context,
      parentCallId: this.child?.parentCallId,
      resumeFrom: resumed?.stored,
    });
    if (answers) recorder.trajectory.schema = answers.schema.recorded;
    let bestPartial: () => string | undefined = () => undefined;
    const guard = new RunGuard(limits, usage, () => bestPartial(), options.signal);
    const run: Run = { base: recorder.base, usage, hub: this.hub, recorder, guard, cellSubcalls: undefined, cellTools: undefined, bestPartial: undefined };
    bestPartial = () => run.bestPartial;
    this.active = run;
    // A resumed run starts (and is written) once its replay has succeeded: a failed replay leaves the stored run as it was.
    if (!resumed) recorder.start();
    return run;
  }

  private async endRun(run: Run): Promise<void> {
    run.guard.dispose();
    this.active = undefined;
    // Child RLMs are one-shot: give their REPL back now.
    if (this.depth > 0 && !this.opts.persistent) await this.close().catch(() => undefined);
    else if (!this.opts.persistent) this.renew();
    await run.recorder.flush();
  }

  /**
   * After a root run without `persistent`: the Python it ran ends with it — its REPL and its
   * children's interpreter, either of which its code may have patched — and the next
   * completion's boot now, in the background (session.ts).
   */
  private renew(): void {
    this.session.renew();
    const pool = this.ownPool;
    if (!pool || this.closed) return;
    this.ownPool = undefined;
    this.retiringPool = Promise.all([this.retiringPool, pool.close()]).then(() => {
      if (!this.closed) this.warmChildren();
    });
  }

  private systemPrompt(answers: AnswerChecker | undefined): string {
    const answerFormat = answers ? buildAnswerFormatSection(answers.schema.jsonSchema, answers.schema.recorded.vendor) : undefined;
    const custom = this.opts.given.customSystemPrompt;
    const prompt =
      custom !== undefined
        ? answerFormat ? `${custom}\n\n${answerFormat}` : custom
        : buildSystemPrompt({
            recursive: this.depth + 1 < this.opts.maxDepth,
            tools: describeTools(this.tools),
            subcallChars: SUBCALL_CHARS,
            maxOutputChars: this.opts.maxOutputChars,
            compaction: this.opts.compaction,
            answerFormat,
          });
    return this.opts.orchestrator ? withOrchestratorGuidance(prompt) : prompt;
  }

  /**
   * Tells the REPL (once it is ready) whether answers go back as JSON (runs with a schema)
   * or as str(); a persistent REPL may have been told otherwise by the previous run.
   */
  private answerMode(env: ReplEnvironment, ready: Promise<void>, structured: boolean): Promise<void> {
    if (!structured && !this.structuredAnswers) return ready;
    this.structuredAnswers = structured;
    const told = ready.then(() => env.setVariable(STRUCTURED_ANSWER_VARIABLE, structured, true));
    told.catch(() => undefined);
    return told;
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

  /** When this RLM can start children: their first REPL boots now, not at the first rlm_query. */
  private warmChildren(): void {
    if (this.depth + 1 < this.opts.maxDepth) this.childPool().warm();
  }

  /** The pool child RLMs take their REPLs from (created by the root on first use). */
  private childPool(): EnvironmentPool {
    if (this.child) return this.child.pool;
    this.ownPool ??= new EnvironmentPool(this.envFactory, this.opts.environmentOptions, this.opts.maxConcurrentChildren);
    return this.ownPool;
  }
}
