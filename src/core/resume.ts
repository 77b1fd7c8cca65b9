/**
 * Resuming a stored run: check that it can be continued, rebuild its REPL by replaying its
 * finished cells with their recorded sub-call and tool results (Python's requests are
 * answered from the record: no LM is called), check each replayed cell against the stored
 * one, and rebuild the conversation the next turn is sent.
 */
import { describeInput } from './context-input';
import { ResumeError, ReplayMismatchError } from './errors';
import { storedFeedback } from './turn';
import type { ChatMessage, CodeBlockRecord, ContextInput, HostReply, HostRequest, IterationRecord, ReplEnvironment, RunStatus, SubcallRecord, ToolCallRecord, Trajectory } from './types';

/** Where `resume()` reads stored runs: an `IndexedDBTrajectoryStore` is one. */
export interface RunSource {
  getRun(id: string): Promise<Trajectory | undefined>;
  /** The context kept with the run, if any. */
  getContext?(id: string): Promise<ContextInput | undefined>;
}

/** Options of `resume()`. */
export interface ResumeOptions {
  /** The run's context, when the store did not keep it (see RLMLogger's `keepContextBytes`). Default: the stored one. */
  context?: ContextInput | undefined;
  /** Where the run is stored. Default: the store of this RLM's logger (`new RLMLogger({ store })`). */
  store?: RunSource | undefined;
  /** Cancels the resumed run, the replay included. Default: none. */
  signal?: AbortSignal | undefined;
}

/** A stored run that can be continued, with what the continuation needs. */
export interface ResumePlan {
  /** The stored run, its finished iterations only. */
  stored: Trajectory;
  context: ContextInput;
  /** Time the run had already taken (ms), counted against maxTimeMs. */
  elapsedMs: number;
}

const RESUMABLE: readonly RunStatus[] = ['interrupted', 'failed', 'cancelled', 'imported'];

/** Loads and checks a stored run. Throws ResumeError saying what is missing or why not. */
export async function planResume(runId: string, source: RunSource | undefined, options: ResumeOptions, rootModel: string): Promise<ResumePlan> {
  if (!source) {
    throw new ResumeError(`resume('${runId}') needs the store the run was written to: give the RLM a logger with a store (new RLMLogger({ store })) or pass { store }.`, 'no_store', runId);
  }
  const run = await source.getRun(runId);
  if (!run) throw new ResumeError(`There is no stored run '${runId}' in this store.`, 'not_found', runId);
  if (run.status === 'completed') throw new ResumeError(`Run '${runId}' already completed; there is nothing to resume.`, 'not_resumable', runId);
  if (run.status === 'running') {
    throw new ResumeError(`Run '${runId}' is still running (in this page or another tab). Wait for it to end, or close the tab running it.`, 'not_resumable', runId);
  }
  if (!RESUMABLE.includes(run.status)) throw new ResumeError(`Run '${runId}' has status '${run.status}' and cannot be resumed.`, 'not_resumable', runId);
  if (run.config.depth !== 0) throw new ResumeError(`Run '${runId}' is a child RLM's run; resume the root run instead.`, 'not_resumable', runId);
  if (run.schema) throw new ResumeError(`Run '${runId}' held its answer to a schema; runs with typed answers cannot be resumed yet. Start it again with completion().`, 'not_resumable', runId);
  if (run.config.rootModel !== rootModel) {
    throw new ResumeError(`Run '${runId}' was made with root model '${run.config.rootModel}', this RLM uses '${rootModel}'. Resume it with an RLM configured like the original.`, 'not_resumable', runId);
  }
  const iterations = run.iterations.filter((it) => !it.partial);
  const last = iterations[iterations.length - 1];
  if (last?.finalAnswer != null) throw new ResumeError(`Run '${runId}' already has its answer; there is nothing to resume.`, 'not_resumable', runId);
  for (const it of iterations) {
    const cut = it.codeBlocks.findIndex((b) => b.interrupted);
    if (cut >= 0) {
      throw new ResumeError(
        `Run '${runId}' cannot be resumed: cell ${cut + 1} of iteration ${it.iteration} was interrupted (cell timeout), so what it left in the REPL cannot be replayed faithfully.`,
        'not_resumable',
        runId,
      );
    }
  }
  const context = options.context ?? (await source.getContext?.(runId));
  if (context === undefined) {
    const { type, length } = run.context;
    throw new ResumeError(
      `Run '${runId}' needs its context to be replayed, and the store did not keep it (a Python ${type} of ${length} ${type === 'str' ? 'characters' : 'items'}; ` +
        `contexts over RLMLogger's keepContextBytes are not kept). Pass the same context again: rlm.resume('${runId}', { context }).`,
      'context_missing',
      runId,
    );
  }
  const given = describeInput(context);
  // Bytes (a File) become a str of unknown length until decoded: compare what can be compared,
  // the byte sizes when both are known.
  const lengths = given.bytes === undefined && run.context.bytes === undefined;
  const bytes = given.bytes !== undefined && run.context.bytes !== undefined;
  if (given.type !== run.context.type || (lengths && given.length !== run.context.length) || (bytes && given.bytes !== run.context.bytes)) {
    const size = (c: typeof given) => (c.bytes !== undefined ? `${c.bytes} bytes` : `length ${c.length}`);
    throw new ResumeError(
      `The context given for run '${runId}' is a ${given.type} of ${size(given)}; the run's was a ${run.context.type} of ${size(run.context)}. Pass the run's own context.`,
      'context_mismatch',
      runId,
    );
  }
  const elapsedMs = run.executionTimeMs ?? iterations.reduce((n, it) => n + it.iterationTimeMs, 0);
  return { stored: { ...run, iterations }, context, elapsedMs };
}

/**
 * Answers Python's requests during the replay of one cell from its record, in order: the
 * prompts (and tool names) must be the ones the record holds, else the replay has diverged.
 */
export class CellReplay {
  private subcall = 0;
  private tool = 0;
  /** The first divergence: what differed, what was recorded, what was asked. */
  divergence: { field: string; expected: string; actual: string } | undefined;

  constructor(private readonly record: CodeBlockRecord) {}

  async handle(request: HostRequest): Promise<HostReply> {
    if (this.divergence) return { error: 'replay diverged from the stored run' };
    if (request.op === 'tool') {
      const recorded: ToolCallRecord | undefined = this.record.toolCalls?.[this.tool++];
      if (!recorded || recorded.name !== request.name) return this.diverge('toolCalls', recorded?.name ?? '(no further tool call)', request.name);
      return recorded.error !== undefined ? { error: recorded.error } : { value: recorded.value };
    }
    const recorded: SubcallRecord[] = this.record.subcalls.slice(this.subcall, this.subcall + request.prompts.length);
    this.subcall += request.prompts.length;
    for (let k = 0; k < request.prompts.length; k++) {
      const prompt = request.prompts[k]!;
      if (recorded[k]?.prompt !== prompt) return this.diverge('subcalls', recorded[k]?.prompt ?? '(no further sub-call)', prompt);
    }
    return { results: recorded.map((r) => (r.error !== undefined ? `Error: ${r.error}` : r.response)) };
  }

  /** The divergence after the cell ran, including requests the record has but the replay never made. */
  check(): { field: string; expected: string; actual: string } | undefined {
    if (this.divergence) return this.divergence;
    const leftSub = this.record.subcalls[this.subcall];
    if (leftSub) return { field: 'subcalls', expected: leftSub.prompt, actual: '(no further sub-call)' };
    const leftTool = this.record.toolCalls?.[this.tool];
    if (leftTool) return { field: 'toolCalls', expected: leftTool.name, actual: '(no further tool call)' };
    return undefined;
  }

  private diverge(field: string, expected: string, actual: string): HostReply {
    this.divergence = { field, expected, actual };
    return { error: 'replay diverged from the stored run' };
  }
}

/** What a replay needs of the loop: the REPL, the cell settings, and where Python's requests go. */
export interface ReplayTarget {
  env: ReplEnvironment;
  cellTimeoutMs: number;
  signal: AbortSignal;
  /** Routes Python's requests to `replay` (undefined: back to the live sub-call dispatcher). */
  answerFrom(replay: CellReplay | undefined): void;
  /** Called after each iteration's cells are replayed. */
  replayed?(iteration: IterationRecord): Promise<void> | undefined;
}

/** Replays every stored cell in order; throws ReplayMismatchError at the first cell that differs. */
export async function replayCells(runId: string, iterations: readonly IterationRecord[], target: ReplayTarget): Promise<number> {
  let cells = 0;
  for (const it of iterations) {
    for (let b = 0; b < it.codeBlocks.length; b++) {
      const record = it.codeBlocks[b]!;
      const replay = new CellReplay(record);
      target.answerFrom(replay);
      let result;
      try {
        result = await target.env.execute(record.code, { timeoutMs: target.cellTimeoutMs, signal: target.signal });
      } finally {
        target.answerFrom(undefined);
      }
      target.signal.throwIfAborted();
      const diverged = replay.check();
      if (diverged) throw new ReplayMismatchError(runId, it.iteration, b, diverged.field, diverged.expected, diverged.actual);
      for (const field of ['stdout', 'stderr', 'errorType'] as const) {
        const expected = record[field] ?? '';
        const actual = result[field] ?? '';
        if (expected !== actual) throw new ReplayMismatchError(runId, it.iteration, b, field, expected, actual);
      }
      cells++;
    }
    await target.replayed?.(it);
  }
  return cells;
}

/**
 * The conversation the next turn is sent: the last stored iteration's prompt, its reply, and
 * what the model was told after it, followed by `nextTurn`.
 */
export function resumedMessages(last: IterationRecord, maxOutputChars: number, nextTurn: string): ChatMessage[] {
  return [
    ...last.prompt.map((m) => ({ ...m })),
    { role: 'assistant', content: last.response },
    { role: 'user', content: `${storedFeedback(last, maxOutputChars)}\n\n${nextTurn}` },
  ];
}
