/**
 * What ends a running cell early (its timeout, or the run's signal), and what the model is
 * told when stopping it cost the REPL its state. Shared by every REPL.
 */
import type { CellResult } from '../core/types';

export interface CellDeadline {
  /** Resolves with the reason the cell must stop; never rejects. */
  stop: Promise<'timeout' | 'abort'>;
  /** Clears the timer and the signal listener. */
  dispose(): void;
}

export function cellDeadline(timeoutMs: number, signal: AbortSignal | undefined): CellDeadline {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<'timeout' | 'abort'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
    onAbort = () => resolve('abort');
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
  return {
    stop,
    dispose() {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    },
  };
}

/** The result of a cell whose REPL had to be replaced: `message` says what survived. */
export function restartedCellResult(errorType: string, message: string, started: number): CellResult {
  return {
    stdout: '',
    stderr: `${errorType}: ${message}\n`,
    locals: [],
    executionTimeMs: performance.now() - started,
    finalAnswer: null,
    errorType,
    interrupted: true,
    restarted: true,
  };
}
