import { describe, expect, it } from 'vitest';
import { emptyLMUsage, emptyUsage, summarizeCall, unpricedModels, UsageTracker } from '../../src/core/usage';
import type { LMUsage } from '../../src/core/types';

const call = (inputTokens: number, outputTokens: number, extra: Partial<LMUsage> = {}): LMUsage => ({ inputTokens, outputTokens, cachedInputTokens: 0, ...extra });

describe('UsageTracker', () => {
  it('starts empty', () => {
    const t = new UsageTracker();
    expect(t.summary()).toEqual(emptyUsage());
    expect(t.totalTokens).toBe(0);
    expect(t.costUSD).toBe(0);
  });

  it('sums calls, tokens, cached tokens and cost per model', () => {
    const t = new UsageTracker();
    t.add('root', call(100, 10, { cachedInputTokens: 40, costUSD: 0.01 }));
    t.add('root', call(200, 20, { cachedInputTokens: 60, costUSD: 0.02 }));
    t.add('sub', call(5, 1));
    const s = t.summary();
    expect(s.models.root).toEqual({ calls: 2, inputTokens: 300, outputTokens: 30, cachedInputTokens: 100, costUSD: 0.01 + 0.02, unpricedCalls: 0 });
    expect(s.models.sub).toEqual({ calls: 1, inputTokens: 5, outputTokens: 1, cachedInputTokens: 0, costUSD: 0, unpricedCalls: 1 });
  });

  it('totals every model in the summary', () => {
    const t = new UsageTracker();
    t.add('a', call(10, 1, { costUSD: 0.5 }));
    t.add('b', call(20, 2, { cachedInputTokens: 5, costUSD: 0.25 }));
    const s = t.summary();
    expect(s.calls).toBe(2);
    expect(s.inputTokens).toBe(30);
    expect(s.outputTokens).toBe(3);
    expect(s.cachedInputTokens).toBe(5);
    expect(s.costUSD).toBeCloseTo(0.75, 10);
    expect(t.totalTokens).toBe(33);
    expect(t.costUSD).toBeCloseTo(0.75, 10);
  });

  it('leaves a call of unknown cost out of the cost and counts it as unpriced', () => {
    const t = new UsageTracker();
    t.add('m', call(1, 1));
    t.add('priced', call(1, 1, { costUSD: 0.5 }));
    expect(t.costUSD).toBe(0.5);
    expect(t.summary().models.m?.costUSD).toBe(0);
    expect(t.summary().unpricedCalls).toBe(1);
    expect(unpricedModels(t.summary())).toEqual(['m']);
  });

  it('seeds a resumed run with the usage already spent, without telling the parent', () => {
    const parent = new UsageTracker();
    const t = new UsageTracker(parent);
    const before = summarizeCall('m', call(10, 2, { costUSD: 0.25 }));
    t.seed(before);
    t.add('m', call(1, 1, { costUSD: 0.25 }));
    expect(t.summary().models.m).toEqual({ calls: 2, inputTokens: 11, outputTokens: 3, cachedInputTokens: 0, costUSD: 0.5, unpricedCalls: 0 });
    expect(t.costUSD).toBe(0.5);
    expect(parent.summary().calls).toBe(1);
  });

  it('reports to every ancestor as calls happen', () => {
    const root = new UsageTracker();
    const child = new UsageTracker(root);
    const grandchild = new UsageTracker(child);
    grandchild.add('leaf', call(7, 3, { costUSD: 0.1 }));
    child.add('mid', call(1, 1));
    expect(grandchild.summary().calls).toBe(1);
    expect(child.summary().calls).toBe(2);
    expect(root.summary().calls).toBe(2);
    expect(root.summary().models.leaf).toEqual({ calls: 1, inputTokens: 7, outputTokens: 3, cachedInputTokens: 0, costUSD: 0.1, unpricedCalls: 0 });
    expect(root.totalTokens).toBe(12);
    expect(root.costUSD).toBeCloseTo(0.1, 10);
  });

  it('does not report upwards from a parent to a child', () => {
    const root = new UsageTracker();
    const child = new UsageTracker(root);
    root.add('m', call(1, 1));
    expect(child.summary().calls).toBe(0);
  });

  it('tells listeners of each call, including calls made below', () => {
    const root = new UsageTracker();
    const child = new UsageTracker(root);
    const seen: [string, number][] = [];
    root.onAdd((model, usage) => seen.push([model, usage.inputTokens]));
    root.add('a', call(1, 0));
    child.add('b', call(2, 0));
    expect(seen).toEqual([
      ['a', 1],
      ['b', 2],
    ]);
  });

  it('returns summaries that later calls do not change', () => {
    const t = new UsageTracker();
    t.add('m', call(1, 1));
    const before = t.summary();
    t.add('m', call(1, 1));
    expect(before.calls).toBe(1);
    expect(before.models.m?.calls).toBe(1);
  });
});

describe('summarizeCall and the empty values', () => {
  it('summarizes one call', () => {
    const s = summarizeCall('m', call(3, 4, { cachedInputTokens: 1, costUSD: 0.002 }));
    expect(s).toEqual({
      models: { m: { calls: 1, inputTokens: 3, outputTokens: 4, cachedInputTokens: 1, costUSD: 0.002, unpricedCalls: 0 } },
      calls: 1,
      inputTokens: 3,
      outputTokens: 4,
      cachedInputTokens: 1,
      costUSD: 0.002,
      unpricedCalls: 0,
    });
  });

  it('equals what a tracker given only that call reports, priced or not', () => {
    for (const usage of [call(3, 4, { cachedInputTokens: 1, costUSD: 0.002 }), call(7, 0), emptyLMUsage()]) {
      const tracker = new UsageTracker();
      tracker.add('model-a', usage);
      expect(summarizeCall('model-a', usage)).toEqual(tracker.summary());
    }
  });

  it('gives each call summary its own objects', () => {
    const a = summarizeCall('m', call(1, 1));
    a.models.m!.calls = 9;
    expect(a.calls).toBe(1);
    expect(summarizeCall('m', call(1, 1)).models.m?.calls).toBe(1);
  });

  it('gives fresh empty objects', () => {
    const a = emptyUsage();
    a.calls = 5;
    expect(emptyUsage().calls).toBe(0);
    expect(emptyLMUsage()).toEqual({ inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 });
  });
});
