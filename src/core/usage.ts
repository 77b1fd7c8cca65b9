/**
 * Token and cost accounting. A child run's tracker reports to its parent's, so a parent
 * sees (and its limits count) everything spent beneath it as it happens.
 */
import type { LMUsage, ModelUsage, UsageSummary } from './types';

export function emptyUsage(): UsageSummary {
  return { models: {}, calls: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, costUSD: 0 };
}

export function emptyLMUsage(): LMUsage {
  return { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 };
}

export class UsageTracker {
  private readonly models = new Map<string, ModelUsage>();
  private readonly listeners: ((model: string, usage: LMUsage) => void)[] = [];

  constructor(private readonly parent?: UsageTracker) {}

  /** Records one call's usage here and in every ancestor. */
  add(model: string, usage: LMUsage): void {
    const entry = this.models.get(model) ?? { calls: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, costUSD: 0 };
    entry.calls += 1;
    entry.inputTokens += usage.inputTokens;
    entry.outputTokens += usage.outputTokens;
    entry.cachedInputTokens += usage.cachedInputTokens;
    entry.costUSD += usage.costUSD ?? 0;
    this.models.set(model, entry);
    for (const listener of this.listeners) listener(model, usage);
    this.parent?.add(model, usage);
  }

  onAdd(listener: (model: string, usage: LMUsage) => void): void {
    this.listeners.push(listener);
  }

  get totalTokens(): number {
    let n = 0;
    for (const m of this.models.values()) n += m.inputTokens + m.outputTokens;
    return n;
  }

  get costUSD(): number {
    let n = 0;
    for (const m of this.models.values()) n += m.costUSD;
    return n;
  }

  summary(): UsageSummary {
    const out = emptyUsage();
    for (const [model, m] of this.models) {
      out.models[model] = { ...m };
      out.calls += m.calls;
      out.inputTokens += m.inputTokens;
      out.outputTokens += m.outputTokens;
      out.cachedInputTokens += m.cachedInputTokens;
      out.costUSD += m.costUSD;
    }
    return out;
  }
}

/** Usage of a single call, as a summary (for sub-call records). */
export function summarizeCall(model: string, usage: LMUsage): UsageSummary {
  const tracker = new UsageTracker();
  tracker.add(model, usage);
  return tracker.summary();
}
