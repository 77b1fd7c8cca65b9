import { describe, expect, it } from 'vitest';
import { StorageError } from '../../src/core/errors';
import { RLMLogger, StorageErrorEvent } from '../../src/store/logger';
import { RecordingStore, replay, sampleTrajectory } from './fixtures';

describe('RLMLogger', () => {
  it('keeps runs in memory without a store', () => {
    const logger = new RLMLogger();
    const live = replay(logger, sampleTrajectory());
    expect(logger.runs).toEqual([live]);
    expect(logger.lastRun).toBe(live);
    expect(logger.lastRun!.iterations).toHaveLength(3);
    logger.clear();
    expect(logger.runs).toEqual([]);
  });

  it('keeps only the most recent runs when told to', () => {
    const logger = new RLMLogger({ keep: 2 });
    const ids = ['a', 'b', 'c'].map((id) => replay(logger, { ...sampleTrajectory(), id }).id);
    expect(logger.runs.map((r) => r.id)).toEqual(ids.slice(1));
  });

  it('writes header, each iteration, then the final header, without blocking the caller', async () => {
    const store = new RecordingStore();
    store.delayMs = 20;
    const logger = new RLMLogger({ store });
    const live = replay(logger, sampleTrajectory());
    // replay() returned before any write finished: the loop never waits on the store.
    expect(store.log).toEqual([]);
    await logger.flush();
    expect(store.log).toEqual(['run run-1 running', 'iteration run-1 1', 'iteration run-1 2', 'iteration run-1 3', 'run run-1 completed']);
    const stored = await store.getRun('run-1');
    expect(stored).toEqual(JSON.parse(JSON.stringify(live)));
    const header = store.runs.get('run-1')!;
    expect(header).toMatchObject({ status: 'completed', model: 'gpt-5-nano', question: 'What is the magic number?', iterationCount: 3 });
    expect(header.incomplete).toBeUndefined();
    expect(header.size).toBeGreaterThan(JSON.stringify(live).length / 2);
    expect(logger.errors).toEqual([]);
  });

  it('the header of each iteration write is a snapshot of that moment', async () => {
    const store = new RecordingStore();
    store.delayMs = 5;
    const logger = new RLMLogger({ store });
    const headers: number[] = [];
    const original = store.writeIteration.bind(store);
    store.writeIteration = (run, it) => {
      headers.push(run.iterationCount);
      return original(run, it);
    };
    replay(logger, sampleTrajectory());
    await logger.flush();
    expect(headers).toEqual([1, 2, 3]);
  });

  it('turns a quota failure into a StorageError (onError and event); the run is unaffected', async () => {
    const store = new RecordingStore();
    store.failWith = (what) => (what === 'iteration run-1 2' ? new DOMException('The quota has been exceeded.', 'QuotaExceededError') : undefined);
    const seen: StorageError[] = [];
    const events: StorageErrorEvent[] = [];
    const logger = new RLMLogger({ store, onError: (e) => seen.push(e) });
    logger.addEventListener('error', (e) => events.push(e as StorageErrorEvent));
    const live = replay(logger, sampleTrajectory());
    await logger.flush();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(StorageError);
    expect(seen[0]).toMatchObject({ name: 'StorageError', reason: 'quota' });
    expect(seen[0]!.message).toMatch(/quota/);
    expect((seen[0]!.cause as DOMException).name).toBe('QuotaExceededError');
    expect(events.map((e) => e.error)).toEqual(seen);
    expect(logger.errors).toEqual(seen);
    // In memory, everything; in the store, what made it, and a header that says so.
    expect(live.iterations).toHaveLength(3);
    expect(logger.lastRun).toBe(live);
    // Writes already issued when the failure came back went on; the count says what is there.
    expect(store.runs.get('run-1')).toMatchObject({ status: 'completed', incomplete: true, iterationCount: store.iterations.get('run-1')!.length });
    expect(store.log).toContain('iteration run-1 1');
    expect(store.log).not.toContain('iteration run-1 2');
  });

  it('a store that throws synchronously or a throwing onError never reaches the caller', async () => {
    const store = new RecordingStore();
    store.writeRun = () => {
      throw new Error('boom');
    };
    const logger = new RLMLogger({
      store,
      onError: () => {
        throw new Error('handler bug');
      },
    });
    const original = console.error;
    console.error = () => undefined;
    try {
      expect(() => replay(logger, sampleTrajectory())).not.toThrow();
      await logger.flush();
    } finally {
      console.error = original;
    }
    expect(logger.errors[0]).toMatchObject({ name: 'StorageError', reason: 'other' });
    expect(logger.errors[0]!.message).toContain('boom');
  });
});
