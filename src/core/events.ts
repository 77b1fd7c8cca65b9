/**
 * Events as data: every listener of an RLM (the `onEvent` option, `stream()` readers, a
 * parent RLM relaying its children's events) gets the same typed events, in order.
 */
import type { RunEndedError } from './errors';
import type { CompletionResult, RLMEvent, Trajectory } from './types';

/** The events of one run as an async iterable; `result` settles with the completion. */
export interface RLMStream<T = string> extends AsyncIterable<RLMEvent> {
  result: Promise<CompletionResult<T>>;
}

export class EventHub {
  private readonly listeners = new Set<(event: RLMEvent) => void>();

  constructor(private readonly onEvent?: ((event: RLMEvent) => void) | undefined) {}

  /** Delivers `event` to every listener; a throwing listener is logged, not propagated. */
  emit(event: RLMEvent): void {
    for (const listener of [this.onEvent, ...this.listeners]) {
      try {
        listener?.(event);
      } catch (error) {
        console.error('rlm-web: event listener threw', error);
      }
    }
  }

  /** Whether anyone listens: hot paths (a batch's sub-calls) skip building events nobody reads. */
  get active(): boolean {
    return this.onEvent !== undefined || this.listeners.size > 0;
  }

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: (event: RLMEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

/**
 * Starts a run with `start` and yields the hub's events until the run at `depth` ends
 * (`run_end`, or an `error` event — one is made up when the run failed before it began).
 */
export function streamRun<T>(hub: EventHub, depth: number, start: () => Promise<CompletionResult<T>>): RLMStream<T> {
  const queue: RLMEvent[] = [];
  let wake: (() => void) | undefined;
  let done = false;
  let sawEnd = false;
  const unsubscribe = hub.subscribe((event) => {
    if (event.depth === depth && (event.type === 'run_end' || event.type === 'error')) sawEnd = true;
    queue.push(event);
    wake?.();
  });
  const result = start();
  result
    .catch((error: unknown) => {
      if (!sawEnd) {
        const trajectory = (error as RunEndedError).trajectory;
        queue.push({ type: 'error', runId: trajectory?.id ?? '', depth, error: error as Error, trajectory: trajectory as Trajectory });
      }
    })
    .finally(() => {
      done = true;
      unsubscribe();
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
