/**
 * What ends a running cell early: its timeout, or the run's signal.
 */
/** A running cell's deadline; dispose of it when the cell ends. */
export interface CellDeadline {
  /** Resolves with the reason the cell must stop; never rejects. */
  stop: Promise<'timeout' | 'abort'>;
  /** Clears the timer and the signal listener. */
  dispose(): void;
}

/** Starts the deadline of a cell: `timeoutMs` from now, or earlier when `signal` aborts. */
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
