import { describe, expect, it } from 'vitest';
import { StorageError } from '../../src/core/errors';
import { approximateSize, iterationSize, sharedPromptPrefix, joinRun, summarizeRun, toStorageError } from '../../src/store/types';
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

describe('prompts stored as what they add', () => {
  const m = (role: 'system' | 'user' | 'assistant', content: string) => ({ role, content });
  const system = m('system', 'sys');

  it('finds the messages a prompt shares with the one before it', () => {
    const first = [system, m('user', 'meta')];
    const second = [...first.map((x) => ({ ...x })), m('assistant', 'r1'), m('user', 'o1')];
    expect(sharedPromptPrefix(first, second)).toBe(2);
    expect(sharedPromptPrefix([], second)).toBe(0);
    expect(sharedPromptPrefix(second, second)).toBe(4);
    // Compaction: the system prompt stays, the rest is new.
    expect(sharedPromptPrefix(second, [system, m('user', 'summary')])).toBe(1);
    // Same content under another role is not the same message.
    expect(sharedPromptPrefix([m('user', 'x')], [m('assistant', 'x')])).toBe(0);
  });

  it('sizes an iteration by the part of its prompt that is stored', () => {
    const prompt = [system, m('user', 'x'.repeat(10_000)), m('assistant', 'reply')];
    const iteration = { iteration: 2, timestamp: 't', prompt, response: 'r', codeBlocks: [], finalAnswer: null, iterationTimeMs: 1, usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 } };
    expect(iterationSize(iteration, 0)).toBe(approximateSize(iteration));
    expect(iterationSize(iteration, 2)).toBeLessThan(300);
    expect(iterationSize(iteration, 3)).toBe(approximateSize({ ...iteration, prompt: [] }));
  });
});
