/**
 * `RLMLogger`: the trajectory sink the loop reports to. It keeps runs in memory and, given a
 * store, writes them as they happen — the header when a run starts, the durable steps of the
 * iteration in progress (the reply before its code runs, each sub-call and cell as it
 * finishes), each iteration (with the updated header) in its own transaction when it
 * finishes, the final header at the end — and keeps the run's context for `resume()`.
 *
 * Writes are issued at once and never awaited by the loop; `flush()` (awaited by the loop at
 * the end of a run) waits for them. A failed write never reaches the run: it becomes a
 * StorageError, passed to `onError` and dispatched as a `StorageErrorEvent`.
 */
import { StorageError } from '../core/errors';
import type { ChatMessage, ContextInput, IterationRecord, RunStep, Trajectory, TrajectorySink } from '../core/types';
import { contextSize, type StoredStep } from './steps';
import { approximateSize, iterationSize, sharedPromptPrefix, summarizeRun, toStorageError, type TrajectoryStore } from './types';

/** Contexts kept for resume() by default: up to 64 MiB. */
const KEEP_CONTEXT_BYTES = 64 * 1024 * 1024;

/** Options of `new RLMLogger(...)`. */
export interface RLMLoggerOptions {
  /** Where to write runs as they happen. Default: none (memory only). */
  store?: TrajectoryStore | undefined;
  /** Called with each storage failure. Default: none (failures are still dispatched as 'error' events and kept in `errors`). */
  onError?: ((error: StorageError) => void) | undefined;
  /** How many recent runs to keep in memory. Default: Infinity (all). */
  keep?: number | undefined;
  /**
   * Contexts up to this size (bytes, approximately) are kept in the store with their run, so
   * that `rlm.resume(runId)` can replay it; larger ones must be passed again
   * (`resume(runId, { context })`). 0 keeps none. Default: 67 108 864 (64 MiB).
   */
  keepContextBytes?: number | undefined;
}

/** Dispatched by RLMLogger (type 'error') when the store refused a write. */
export class StorageErrorEvent extends Event {
  constructor(readonly error: StorageError) {
    super('error');
  }
}

/** What the logger knows about a run it is writing. */
interface RunState {
  /** Iterations written, or being written. */
  iterations: number;
  /** Iterations whose write succeeded. */
  stored: number;
  size: number;
  /** The last iteration's prompt: stores keep what a prompt adds to it, and the size counts that. */
  lastPrompt: { iteration: number; prompt: ChatMessage[] } | undefined;
  /** A write of this run failed: later iterations are not written, the header says so. */
  failed: boolean;
  pending: Set<Promise<void>>;
  /** Durable steps: the next step's number, the steps not yet written, and whether a write is out. */
  nextStep: number;
  steps: StoredStep[];
  writingSteps: boolean;
  stepsScheduled: boolean;
}

/**
 * Records every run of an RLM: in memory, and in a store when given one.
 *
 * @example
 * const logger = new RLMLogger({ store: new IndexedDBTrajectoryStore(), onError: (e) => console.warn(e.message) });
 * const rlm = new RLM({ backend: 'openai', backendOptions, logger });
 * await rlm.completion(text);
 * logger.lastRun; // the trajectory, also in IndexedDB
 */
export class RLMLogger extends EventTarget implements TrajectorySink {
  /** The store runs are written to, if any. */
  readonly store: TrajectoryStore | undefined;
  /** Storage failures so far, oldest first. */
  readonly errors: StorageError[] = [];
  private readonly onError: ((error: StorageError) => void) | undefined;
  private readonly keep: number;
  private readonly keepContextBytes: number;
  private readonly memory: Trajectory[] = [];
  private readonly states = new Map<string, RunState>();
  private readonly pending = new Set<Promise<void>>();

  constructor(options: RLMLoggerOptions = {}) {
    super();
    this.store = options.store;
    this.onError = options.onError;
    this.keep = options.keep ?? Infinity;
    this.keepContextBytes = options.keepContextBytes ?? KEEP_CONTEXT_BYTES;
  }

  /** The runs logged, oldest first (the live trajectories the loop returns). */
  get runs(): readonly Trajectory[] {
    return this.memory;
  }

  /** The most recent run, if any. */
  get lastRun(): Trajectory | undefined {
    return this.memory[this.memory.length - 1];
  }

  /** Forgets the runs held in memory (stored copies stay). */
  clear(): void {
    this.memory.length = 0;
  }

  runStarted(trajectory: Trajectory): void {
    this.memory.push(trajectory);
    if (this.memory.length > this.keep) this.memory.splice(0, this.memory.length - this.keep);
    if (!this.store) return;
    const state: RunState = { iterations: trajectory.iterations.length, stored: 0, size: 0, lastPrompt: undefined, failed: false, pending: new Set(), nextStep: 0, steps: [], writingSteps: false, stepsScheduled: false };
    state.size = approximateSize(summarizeRun(trajectory, 0, 0)) + trajectory.iterations.reduce((n, it) => n + approximateSize(it), 0);
    this.states.set(trajectory.id, state);
    const store = this.store;
    const header = summarizeRun(trajectory, state.iterations, state.size);
    this.track(state, 'save the run', () => store.writeRun(header));
  }

  iterationFinished(trajectory: Trajectory, iteration: IterationRecord): void {
    const store = this.store;
    const state = this.states.get(trajectory.id);
    if (!store || !state || state.failed) return;
    state.iterations++;
    const last = state.lastPrompt;
    state.size += iterationSize(iteration, last && last.iteration === iteration.iteration - 1 ? sharedPromptPrefix(last.prompt, iteration.prompt) : 0);
    state.lastPrompt = { iteration: iteration.iteration, prompt: iteration.prompt };
    // Steps not yet written belong to this iteration: its record replaces them.
    state.steps.length = 0;
    const header = summarizeRun(trajectory, state.iterations, state.size);
    this.track(state, `save iteration ${iteration.iteration}`, () => store.writeIteration(header, iteration), () => state.stored++);
  }

  runEnded(trajectory: Trajectory): void {
    const store = this.store;
    const state = this.states.get(trajectory.id);
    if (!store || !state) return;
    this.states.delete(trajectory.id);
    // The steps of an iteration the run stopped in go out now, before the final header.
    this.writeSteps(state, trajectory, true);
    // The final header goes last, once this run's other writes are settled, so that it
    // knows whether they all made it.
    const before = Promise.allSettled(state.pending);
    const final = summarizeRun(trajectory, state.iterations, state.size);
    const write = before.then(() => store.writeRun(state.failed ? { ...final, iterationCount: state.stored, incomplete: true } : final));
    this.track(state, 'save the finished run', () => write);
  }

  /**
   * A durable step. Steps made in one burst share a transaction; while one write is out, the
   * next ones wait and go together, so a batch of many instant sub-calls costs a few writes.
   */
  stepRecorded(trajectory: Trajectory, step: RunStep): void {
    const state = this.states.get(trajectory.id);
    if (!this.store?.writeSteps || !state || state.failed) return;
    state.steps.push({ ...step, seq: state.nextStep++ });
    if (state.stepsScheduled) return;
    state.stepsScheduled = true;
    queueMicrotask(() => {
      state.stepsScheduled = false;
      this.writeSteps(state, trajectory, false);
    });
  }

  /** Keeps the run's context in the store when it is small enough (`keepContextBytes`). */
  contextGiven(trajectory: Trajectory, context: ContextInput): void {
    const store = this.store;
    const state = this.states.get(trajectory.id);
    if (!store?.writeContext || !state || contextSize(context) > this.keepContextBytes) return;
    this.track(state, 'keep the context of the run', () => store.writeContext!(trajectory.id, context), undefined, false);
  }

  private writeSteps(state: RunState, trajectory: Trajectory, now: boolean): void {
    const store = this.store;
    if (!store?.writeSteps || state.steps.length === 0 || (state.writingSteps && !now)) return;
    const steps = state.steps.splice(0);
    const header = summarizeRun(trajectory, state.iterations, state.size);
    state.writingSteps = true;
    this.track(
      state,
      'save the running iteration',
      () =>
        store.writeSteps!(header, steps).finally(() => {
          state.writingSteps = false;
          this.writeSteps(state, trajectory, false);
        }),
      undefined,
      false,
    );
  }

  /** Waits for every write issued so far. Never rejects: failures went to `onError`. */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** Issues a write; a failed `critical` one stops the run's later iteration writes (the header says it is incomplete). */
  private track(state: RunState, action: string, write: () => Promise<void>, onSuccess?: () => void, critical = true): void {
    let promise: Promise<void>;
    try {
      promise = write();
    } catch (error) {
      promise = Promise.reject(error);
    }
    const settled = promise.then(
      () => onSuccess?.(),
      (error: unknown) => {
        if (critical) state.failed = true;
        this.report(toStorageError(error, action));
      },
    );
    state.pending.add(settled);
    this.pending.add(settled);
    void settled.finally(() => {
      state.pending.delete(settled);
      this.pending.delete(settled);
    });
  }

  private report(error: StorageError): void {
    this.errors.push(error);
    try {
      this.onError?.(error);
    } catch (thrown) {
      console.error('rlm-web: RLMLogger onError threw', thrown);
    }
    this.dispatchEvent(new StorageErrorEvent(error));
  }
}
