/**
 * What a trajectory store is, to the logger and to the JSONL importer: a place that takes a
 * run's header and its finished iterations as they happen, and gives runs back.
 */
import { StorageError } from '../core/errors';
import type { ChatMessage, ContextInput, IterationRecord, Trajectory } from '../core/types';
import type { StoredStep } from './steps';

/** A run without its iterations: what `listRuns()` returns, newest first. */
export interface RunSummary extends Omit<Trajectory, 'iterations'> {
  /** The root model (`config.rootModel`). */
  model: string;
  /** The question (`rootPrompt`), cut to 500 characters; undefined when the run had none. */
  question?: string | undefined;
  /** Iterations stored so far. */
  iterationCount: number;
  /** Approximate size of the stored run in bytes (string characters plus a few per value). */
  size: number;
  /** ISO time of the last write. */
  updatedAt: string;
  /** Some iterations could not be stored (quota, failure): the stored copy has gaps. */
  incomplete?: boolean | undefined;
}

/**
 * Where `RLMLogger` and `importJSONL` write. Writes issued one after the other must be
 * applied in that order (IndexedDB orders transactions over the same stores that way).
 */
export interface TrajectoryStore {
  /**
   * Writes a run's header. While the header says `status: 'running'`, the run is live in
   * this store: other pages do not mark it interrupted.
   */
  writeRun(run: RunSummary): Promise<void>;
  /** Writes one finished iteration together with the run's updated header, atomically. */
  writeIteration(run: RunSummary, iteration: IterationRecord): Promise<void>;
  hasRun(id: string): Promise<boolean>;
  /** Runs, newest first. */
  listRuns(options?: ListRunsOptions): Promise<RunSummary[]>;
  /** A run with its iterations, or undefined when there is none with that id. */
  getRun(id: string): Promise<Trajectory | undefined>;
  deleteRun(id: string): Promise<void>;
  clear(): Promise<void>;
  /**
   * Durable steps: writes steps of the iteration in progress with the run's header. The next
   * `writeIteration` of the run replaces them. Optional: without it only whole iterations are kept.
   */
  writeSteps?(run: RunSummary, steps: StoredStep[]): Promise<void>;
  /** Keeps a run's context for `resume()`. Optional. */
  writeContext?(runId: string, context: ContextInput): Promise<void>;
  /** The context kept for a run, or undefined. Optional. */
  getContext?(runId: string): Promise<ContextInput | undefined>;
}

/** Which runs `listRuns` returns. */
export interface ListRunsOptions {
  /** At most this many runs. Default: all. */
  limit?: number | undefined;
}

const QUESTION_CHARS = 500;

/** The header of a trajectory as it is now (a shallow snapshot: safe to write later). */
export function summarizeRun(trajectory: Trajectory, iterationCount: number, size: number, incomplete = false): RunSummary {
  const { iterations: _iterations, ...rest } = trajectory;
  const summary: RunSummary = {
    ...rest,
    model: trajectory.config.rootModel,
    question: trajectory.rootPrompt?.slice(0, QUESTION_CHARS),
    iterationCount,
    size,
    updatedAt: new Date().toISOString(),
  };
  if (incomplete) summary.incomplete = true;
  return summary;
}

/** A trajectory rebuilt from a stored header and its iterations. */
export function joinRun(summary: RunSummary, iterations: IterationRecord[]): Trajectory {
  const { model: _m, question: _q, iterationCount: _c, size: _s, updatedAt: _u, incomplete: _i, ...rest } = summary;
  return { ...rest, iterations };
}

/**
 * Approximate size in bytes of a JSON-able value: string lengths plus a few bytes per value.
 * Walks the value instead of stringifying it, so a 50 MB record costs no 50 MB string.
 */
export function approximateSize(value: unknown): number {
  let size = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') size += v.length + 2;
    else if (typeof v === 'number' || typeof v === 'boolean') size += 8;
    else if (Array.isArray(v)) {
      size += 2;
      for (const item of v) stack.push(item);
    } else if (v !== null && typeof v === 'object') {
      size += 2;
      for (const [k, item] of Object.entries(v)) {
        size += k.length + 3;
        stack.push(item);
      }
    } else size += 4;
  }
  return size;
}

/**
 * How many leading messages `prompt` shares with `previous` (same role, same content): an
 * iteration's prompt is the previous one's plus the turn in between, unless compaction
 * rewrote it. Compares string identity first, so a shared prefix costs little to find.
 */
export function sharedPromptPrefix(previous: readonly ChatMessage[], prompt: readonly ChatMessage[]): number {
  const n = Math.min(previous.length, prompt.length);
  let i = 0;
  while (i < n && previous[i]!.role === prompt[i]!.role && previous[i]!.content === prompt[i]!.content) i++;
  return i;
}

/** Approximate stored size of `iteration` when its prompt is kept from message `promptFrom` on. */
export function iterationSize(iteration: IterationRecord, promptFrom: number): number {
  const { prompt, ...rest } = iteration;
  // The key 'prompt' counts as approximateSize counts keys (length + 3).
  return approximateSize(rest) + 9 + approximateSize(prompt.slice(promptFrom));
}

/** Any failure of a storage API as a StorageError with the reason a caller can act on. */
export function toStorageError(error: unknown, action: string): StorageError {
  if (error instanceof StorageError) return error;
  const name = typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined;
  const detail = error instanceof Error ? error.message : String(error);
  if (name === 'QuotaExceededError') {
    return new StorageError(
      `Could not ${action}: the browser's storage quota for this site is full (${detail}). Delete or export old runs (store.deleteRun, store.clear) to make room.`,
      'quota',
      { cause: error },
    );
  }
  if (name === 'VersionError') {
    return new StorageError(
      `Could not ${action}: the trajectory database was upgraded by a newer version of rlm-web (${detail}). Reload the page with the newer version, or use another database name.`,
      'unavailable',
      { cause: error },
    );
  }
  if (name === 'InvalidStateError' || name === 'UnknownError' || name === 'SecurityError') {
    return new StorageError(`Could not ${action}: IndexedDB is not available here (${detail}). Private windows and some embedded views disable it.`, 'unavailable', { cause: error });
  }
  return new StorageError(`Could not ${action}: ${name ? `${String(name)}: ` : ''}${detail}`, 'other', { cause: error });
}
