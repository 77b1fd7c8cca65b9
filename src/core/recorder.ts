/**
 * The run recorder: one trajectory from `run_start` to `run_end` (or `error`), written to
 * the logger as it goes. Both the loop and the plain call at the depth limit record
 * through it.
 */
import { CancellationError, describeError, RunEndedError } from './errors';
import type { EventHub } from './events';
import { newId } from './ids';
import type { UsageTracker } from './usage';
import { emptyUsage } from './usage';
import type { CompletionResult, ContextDescription, ContextInput, EndReason, IterationRecord, RLMEvent, RunConfig, RunStep, Trajectory, TrajectorySink } from './types';

/** What every event of a run carries. */
export interface RunBase {
  runId: string;
  depth: number;
  /** A child run: the `rlm_query` call that started it. */
  parentCallId?: string | undefined;
}

/** What a run's record starts from. */
export interface RecorderInit {
  config: RunConfig;
  depth: number;
  rootPrompt: string | undefined;
  context: ContextDescription & { bytes?: number | undefined };
  parentCallId?: string | undefined;
  /** A resumed run: its stored trajectory (finished iterations only), continued under its own id. */
  resumeFrom?: Trajectory | undefined;
}

export class RunRecorder {
  readonly trajectory: Trajectory;
  readonly base: RunBase;

  /** The cell running now, for the steps its sub-calls make. */
  private cell: { iteration: number; block: number } | undefined;
  private unsubscribe: (() => void) | undefined;
  /** Whether the logger was told the run started (a resume whose replay fails never is). */
  private started = false;

  constructor(
    private readonly hub: EventHub,
    private readonly logger: TrajectorySink | undefined,
    private readonly usage: UsageTracker,
    init: RecorderInit,
  ) {
    const from = init.resumeFrom;
    this.trajectory = {
      id: from?.id ?? newId(),
      startedAt: from?.startedAt ?? new Date().toISOString(),
      config: init.config,
      rootPrompt: init.rootPrompt,
      context: init.context,
      iterations: from ? [...from.iterations] : [],
      status: 'running',
      usage: from ? usage.summary() : emptyUsage(),
    };
    this.base = init.parentCallId === undefined ? { runId: this.trajectory.id, depth: init.depth } : { runId: this.trajectory.id, depth: init.depth, parentCallId: init.parentCallId };
  }

  start(): void {
    this.started = true;
    this.hub.emit({ type: 'run_start', ...this.base, config: this.trajectory.config, rootPrompt: this.trajectory.rootPrompt });
    this.log((l) => l.runStarted(this.trajectory));
    if (this.logger?.stepRecorded) this.unsubscribe = this.hub.subscribe((event) => this.step(event));
  }

  /** Hands the run's context to the logger, to be kept for `resume()`. */
  keepContext(context: ContextInput): void {
    this.log((l) => l.contextGiven?.(this.trajectory, context));
  }

  /**
   * Durable steps: the run's own events that matter after a closed tab — the reply before its
   * code runs, each sub-call as it finishes, each finished cell — go to the logger at once.
   */
  private step(event: RLMEvent): void {
    if (event.runId !== this.base.runId) return;
    let step: RunStep | undefined;
    if (event.type === 'lm_response') {
      step = { kind: 'reply', iteration: event.iteration, timestamp: new Date().toISOString(), response: event.text, reasoning: event.reasoning, usage: event.usage };
    } else if (event.type === 'code_start') {
      this.cell = { iteration: event.iteration, block: event.block };
    } else if (event.type === 'subcall_end' && this.cell) {
      step = { kind: 'subcall', ...this.cell, record: event.record };
    } else if (event.type === 'code_end') {
      this.cell = undefined;
      step = { kind: 'cell', iteration: event.iteration, block: event.block, record: event.record };
    }
    if (step) {
      const recorded = step;
      this.log((l) => l.stepRecorded?.(this.trajectory, recorded));
    }
  }

  iteration(record: IterationRecord): void {
    this.trajectory.iterations.push(record);
    this.trajectory.usage = this.usage.summary();
    // The write is issued first: a listener that reads the store on iteration_end sees it.
    this.log((l) => l.iterationFinished(this.trajectory, record));
    this.hub.emit({ type: 'iteration_end', ...this.base, record });
    this.hub.emit({ type: 'usage', ...this.base, usage: this.trajectory.usage });
  }

  /** `structured`: runs with a schema, the validated value (`response` is then its JSON text). */
  succeed(response: string, endReason: EndReason, executionTimeMs: number, structured?: { value: unknown }): CompletionResult<unknown> {
    this.unsubscribe?.();
    const t = this.trajectory;
    Object.assign(t, { status: 'completed', endReason, response, usage: this.usage.summary(), executionTimeMs });
    const result: CompletionResult<unknown> = { response: structured ? structured.value : response, usage: t.usage, executionTimeMs, trajectory: t };
    if (this.started) this.log((l) => l.runEnded(t));
    this.hub.emit({ type: 'run_end', ...this.base, result });
    return result;
  }

  /** Records the failure; returns `error` with the partial answer, usage and trajectory attached. */
  fail(error: unknown, executionTimeMs: number, partialAnswer?: string | undefined): unknown {
    this.unsubscribe?.();
    const t = this.trajectory;
    t.usage = this.usage.summary();
    t.executionTimeMs = executionTimeMs;
    t.error = describeError(error);
    if (error instanceof RunEndedError) {
      const cancelled = error instanceof CancellationError;
      t.status = cancelled ? 'cancelled' : 'failed';
      t.endReason = cancelled ? 'cancelled' : ((error as { limit?: EndReason }).limit ?? 'error');
      // The latest reply, even one that arrived after the limit was crossed.
      error.partialAnswer = partialAnswer ?? error.partialAnswer;
      error.usage = t.usage;
      error.trajectory = t;
    } else {
      t.status = 'failed';
      t.endReason = 'error';
    }
    if (this.started) this.log((l) => l.runEnded(t));
    this.hub.emit({ type: 'error', ...this.base, error: error as Error, trajectory: t });
    return error;
  }

  /** Waits for the logger's pending writes; a store failure is logged, never thrown. */
  async flush(): Promise<void> {
    await this.logger?.flush().catch((error: unknown) => console.error('rlm-web: trajectory store failed', error));
  }

  private log(write: (logger: TrajectorySink) => void): void {
    if (!this.logger) return;
    try {
      write(this.logger);
    } catch (error) {
      console.error('rlm-web: trajectory logger failed', error);
    }
  }
}
