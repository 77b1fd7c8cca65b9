import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BudgetExceededError,
  CancellationError,
  ErrorThresholdExceededError,
  LimitExceededError,
  RunEndedError,
  TimeoutExceededError,
  TokenLimitExceededError,
} from '../../src/core/errors';
import { RunGuard, type Limits } from '../../src/core/limits';
import { UsageTracker } from '../../src/core/usage';

function guardWith(limits: Limits, partial: string | undefined = 'best so far', signal?: AbortSignal) {
  const usage = new UsageTracker();
  let clock = 1_000;
  const guard = new RunGuard(limits, usage, () => partial, signal, () => clock);
  return {
    usage,
    guard,
    advance(ms: number) {
      clock += ms;
    },
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('RunGuard without limits', () => {
  it('never stops on usage alone', () => {
    const { usage, guard } = guardWith({});
    usage.add('m', { inputTokens: 1e9, outputTokens: 1e9, cachedInputTokens: 0, costUSD: 1e6 });
    expect(() => guard.check()).not.toThrow();
    expect(guard.signal.aborted).toBe(false);
    expect(guard.reason).toBeUndefined();
    guard.dispose();
  });
});

describe('RunGuard budget', () => {
  it('aborts the signal with BudgetExceededError as soon as the cost passes maxBudget', () => {
    const { usage, guard } = guardWith({ maxBudget: 0.05 }, 'partial answer');
    usage.add('m', { inputTokens: 10, outputTokens: 10, cachedInputTokens: 0, costUSD: 0.03 });
    expect(guard.signal.aborted).toBe(false);
    usage.add('m', { inputTokens: 10, outputTokens: 10, cachedInputTokens: 0, costUSD: 0.03 });
    expect(guard.signal.aborted).toBe(true);
    const reason = guard.reason;
    expect(reason).toBeInstanceOf(BudgetExceededError);
    expect(reason).toBeInstanceOf(LimitExceededError);
    expect(reason).toBeInstanceOf(RunEndedError);
    expect(reason?.name).toBe('BudgetExceededError');
    expect(reason?.partialAnswer).toBe('partial answer');
    expect((reason as BudgetExceededError).limit).toBe('max_budget');
    expect((reason as BudgetExceededError).used).toBeCloseTo(0.06, 10);
    expect((reason as BudgetExceededError).allowed).toBe(0.05);
    expect(reason?.message).toContain('maxBudget');
    expect(() => guard.check()).toThrow(BudgetExceededError);
    guard.dispose();
  });

  it('counts spending reported by a child tracker', () => {
    const { usage, guard } = guardWith({ maxBudget: 0.01 });
    const child = new UsageTracker(usage);
    child.add('sub', { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0, costUSD: 0.02 });
    expect(guard.reason).toBeInstanceOf(BudgetExceededError);
    guard.dispose();
  });

  it('allows spending exactly the budget', () => {
    const { usage, guard } = guardWith({ maxBudget: 0.5 });
    usage.add('m', { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0, costUSD: 0.5 });
    expect(() => guard.check()).not.toThrow();
    guard.dispose();
  });
});

describe('RunGuard tokens', () => {
  it('aborts with TokenLimitExceededError when input + output passes maxTokens', () => {
    const { usage, guard } = guardWith({ maxTokens: 100 }, 'so far');
    usage.add('m', { inputTokens: 60, outputTokens: 40, cachedInputTokens: 0 });
    expect(guard.signal.aborted).toBe(false);
    usage.add('m', { inputTokens: 1, outputTokens: 0, cachedInputTokens: 0 });
    const reason = guard.reason as TokenLimitExceededError;
    expect(reason).toBeInstanceOf(TokenLimitExceededError);
    expect(reason.limit).toBe('max_tokens');
    expect(reason.used).toBe(101);
    expect(reason.allowed).toBe(100);
    expect(reason.partialAnswer).toBe('so far');
    expect(() => guard.check()).toThrow(TokenLimitExceededError);
    guard.dispose();
  });

  it('keeps the first reason when several limits are crossed', () => {
    const { usage, guard } = guardWith({ maxTokens: 10, maxBudget: 0.001 });
    usage.add('m', { inputTokens: 50, outputTokens: 0, cachedInputTokens: 0, costUSD: 1 });
    const first = guard.reason;
    expect(first).toBeInstanceOf(LimitExceededError);
    usage.add('m', { inputTokens: 50, outputTokens: 0, cachedInputTokens: 0, costUSD: 1 });
    expect(guard.reason).toBe(first);
    guard.dispose();
  });
});

describe('RunGuard time', () => {
  it('fires TimeoutExceededError when maxTimeMs passes, without any call to check()', () => {
    vi.useFakeTimers();
    const usage = new UsageTracker();
    const guard = new RunGuard({ maxTimeMs: 5_000 }, usage, () => 'partial at timeout');
    vi.advanceTimersByTime(4_999);
    expect(guard.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(guard.signal.aborted).toBe(true);
    const reason = guard.reason as TimeoutExceededError;
    expect(reason).toBeInstanceOf(TimeoutExceededError);
    expect(reason.limit).toBe('max_time');
    expect(reason.allowed).toBe(5_000);
    expect(reason.used).toBe(5_000);
    expect(reason.partialAnswer).toBe('partial at timeout');
    expect(() => guard.check()).toThrow(TimeoutExceededError);
    guard.dispose();
  });

  it('reads the partial answer at the moment the time runs out', () => {
    vi.useFakeTimers();
    let partial: string | undefined;
    const guard = new RunGuard({ maxTimeMs: 100 }, new UsageTracker(), () => partial);
    partial = 'written later';
    vi.advanceTimersByTime(100);
    expect(guard.reason?.partialAnswer).toBe('written later');
    guard.dispose();
  });

  it('does not fire after dispose()', () => {
    vi.useFakeTimers();
    const guard = new RunGuard({ maxTimeMs: 100 }, new UsageTracker(), () => undefined);
    guard.dispose();
    vi.advanceTimersByTime(1_000);
    expect(guard.signal.aborted).toBe(false);
  });

  it('measures elapsed time with the given clock', () => {
    const { guard, advance } = guardWith({});
    expect(guard.elapsedMs()).toBe(0);
    advance(250);
    expect(guard.elapsedMs()).toBe(250);
    guard.dispose();
  });
});

describe('RunGuard cancellation', () => {
  it('turns the caller aborting into CancellationError', () => {
    const controller = new AbortController();
    const { guard } = guardWith({}, 'partial', controller.signal);
    expect(guard.signal.aborted).toBe(false);
    controller.abort();
    expect(guard.signal.aborted).toBe(true);
    expect(guard.reason).toBeInstanceOf(CancellationError);
    expect(guard.reason?.partialAnswer).toBe('partial');
    expect(() => guard.check()).toThrow(CancellationError);
    guard.dispose();
  });

  it('is stopped from the start by an already-aborted signal', () => {
    const { guard } = guardWith({}, undefined, AbortSignal.abort());
    expect(guard.reason).toBeInstanceOf(CancellationError);
    guard.dispose();
  });

  it('stops listening to the caller after dispose()', () => {
    const controller = new AbortController();
    const { guard } = guardWith({}, undefined, controller.signal);
    guard.dispose();
    controller.abort();
    expect(guard.signal.aborted).toBe(false);
  });

  it('keeps a limit as the reason when the caller aborts afterwards', () => {
    const controller = new AbortController();
    const { usage, guard } = guardWith({ maxTokens: 1 }, undefined, controller.signal);
    usage.add('m', { inputTokens: 5, outputTokens: 0, cachedInputTokens: 0 });
    controller.abort();
    expect(guard.reason).toBeInstanceOf(TokenLimitExceededError);
    guard.dispose();
  });
});

describe('RunGuard errors', () => {
  it('throws ErrorThresholdExceededError after maxErrors consecutive failing iterations', () => {
    const { guard } = guardWith({ maxErrors: 3 }, 'partial');
    guard.recordIteration('NameError: a');
    guard.recordIteration('NameError: b');
    expect(guard.signal.aborted).toBe(false);
    let thrown: unknown;
    try {
      guard.recordIteration('NameError: c');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ErrorThresholdExceededError);
    const e = thrown as ErrorThresholdExceededError;
    expect(e.limit).toBe('max_errors');
    expect(e.used).toBe(3);
    expect(e.allowed).toBe(3);
    expect(e.lastError).toBe('NameError: c');
    expect(e.partialAnswer).toBe('partial');
    expect(guard.reason).toBe(e);
    expect(guard.signal.aborted).toBe(true);
    guard.dispose();
  });

  it('resets the count on a clean iteration', () => {
    const { guard } = guardWith({ maxErrors: 2 });
    guard.recordIteration('E1');
    guard.recordIteration(undefined);
    guard.recordIteration('E2');
    guard.recordIteration(undefined);
    guard.recordIteration('E3');
    expect(guard.signal.aborted).toBe(false);
    expect(() => guard.recordIteration('E4')).toThrow(ErrorThresholdExceededError);
    guard.dispose();
  });

  it('never stops on errors without maxErrors', () => {
    const { guard } = guardWith({});
    for (let i = 0; i < 100; i++) guard.recordIteration(`E${i}`);
    expect(guard.signal.aborted).toBe(false);
    guard.dispose();
  });
});

describe('RunGuard.remaining', () => {
  it('gives a child what is left of budget, time and tokens', () => {
    const { usage, guard, advance } = guardWith({ maxBudget: 1, maxTimeMs: 10_000, maxTokens: 1_000, maxErrors: 4 });
    usage.add('m', { inputTokens: 300, outputTokens: 100, cachedInputTokens: 0, costUSD: 0.25 });
    advance(2_500);
    const left = guard.remaining();
    expect(left.maxBudget).toBeCloseTo(0.75, 10);
    expect(left.maxTimeMs).toBe(7_500);
    expect(left.maxTokens).toBe(600);
    expect(left.maxErrors).toBe(4);
    guard.dispose();
  });

  it('leaves unset limits unset', () => {
    const { guard } = guardWith({});
    const left = guard.remaining();
    expect(left.maxBudget).toBeUndefined();
    expect(left.maxTimeMs).toBeUndefined();
    expect(left.maxTokens).toBeUndefined();
    guard.dispose();
  });

  it('never goes below zero', () => {
    const { usage, guard, advance } = guardWith({ maxBudget: 0.1, maxTimeMs: 100, maxTokens: 10 });
    usage.add('m', { inputTokens: 50, outputTokens: 50, cachedInputTokens: 0, costUSD: 1 });
    advance(500);
    expect(guard.remaining()).toMatchObject({ maxBudget: 0, maxTimeMs: 0, maxTokens: 0 });
    guard.dispose();
  });
});
