import { describe, expect, it } from 'vitest';
import { StorageError } from '../../src/core/errors';
import { approximateSize, joinRun, summarizeRun, toStorageError } from '../../src/store/types';
import { sampleTrajectory } from './fixtures';

describe('store helpers', () => {
  it('maps storage exceptions to StorageError reasons', () => {
    expect(toStorageError(new DOMException('full', 'QuotaExceededError'), 'save').reason).toBe('quota');
    expect(toStorageError(new DOMException('newer', 'VersionError'), 'open').reason).toBe('unavailable');
    expect(toStorageError(new DOMException('gone', 'InvalidStateError'), 'open').reason).toBe('unavailable');
    expect(toStorageError(new Error('odd'), 'save')).toMatchObject({ name: 'StorageError', reason: 'other', message: 'Could not save: Error: odd' });
    const blocked = new StorageError('held', 'blocked');
    expect(toStorageError(blocked, 'open')).toBe(blocked);
  });

  it('summarizes a run without its iterations and joins it back', () => {
    const t = sampleTrajectory();
    const summary = summarizeRun(t, 3, 1234);
    expect(summary).not.toHaveProperty('iterations');
    expect(summary).toMatchObject({ id: 'run-1', model: 'gpt-5-nano', question: 'What is the magic number?', iterationCount: 3, size: 1234, status: 'completed' });
    expect(summary.incomplete).toBeUndefined();
    expect(summarizeRun(t, 1, 1, true).incomplete).toBe(true);
    expect(summarizeRun({ ...t, rootPrompt: 'q'.repeat(2000) }, 0, 0).question).toHaveLength(500);
    expect(joinRun(summary, t.iterations)).toEqual(t);
  });

  it('approximates the JSON size of a record without stringifying it', () => {
    const t = sampleTrajectory();
    const json = JSON.stringify(t).length;
    const size = approximateSize(t);
    expect(size).toBeGreaterThan(json * 0.7);
    expect(size).toBeLessThan(json * 1.5);
    expect(approximateSize('x'.repeat(1_000_000))).toBe(1_000_002);
  });
});
