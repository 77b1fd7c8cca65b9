/**
 * Token and cost accounting. A child run's tracker reports to its parent's, so a parent
 * sees (and its limits count) everything spent beneath it as it happens.
 */
import type { LMUsage, ModelUsage, UsageSummary } from './types';

export function emptyUsage(): UsageSummary {
  return { models: {}, calls: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, costUSD: 0, unpricedCalls: 0 };
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
    const entry = this.entry(model);
    entry.calls += 1;
    entry.inputTokens += usage.inputTokens;
    entry.outputTokens += usage.outputTokens;
    entry.cachedInputTokens += usage.cachedInputTokens;
    entry.costUSD += usage.costUSD ?? 0;
    if (usage.costUSD === undefined) entry.unpricedCalls = (entry.unpricedCalls ?? 0) + 1;
    for (const listener of this.listeners) listener(model, usage);
    this.parent?.add(model, usage);
  }

  /** Starts from usage already spent (a resumed run's): counted here, not passed to a parent. */
  seed(summary: UsageSummary): void {
    for (const [model, m] of Object.entries(summary.models)) accumulate(this.entry(model), m);
  }

  private entry(model: string): ModelUsage {
    let entry = this.models.get(model);
    if (!entry) {
      entry = { calls: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, costUSD: 0, unpricedCalls: 0 };
      this.models.set(model, entry);
    }
    return entry;
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
      accumulate(out, m);
    }
    return out;
  }
}

/** Adds the counts of `m` to `into`. */
function accumulate(into: ModelUsage, m: ModelUsage): void {
  into.calls += m.calls;
  into.inputTokens += m.inputTokens;
  into.outputTokens += m.outputTokens;
  into.cachedInputTokens += m.cachedInputTokens;
  into.costUSD += m.costUSD;
  into.unpricedCalls = (into.unpricedCalls ?? 0) + (m.unpricedCalls ?? 0);
}

/**
 * Usage of a single call, as a summary (for sub-call records): what a fresh tracker given
 * this one call would report, built directly (it runs once per sub-call).
 */
export function summarizeCall(model: string, usage: LMUsage): UsageSummary {
  const priced = usage.costUSD !== undefined;
  const counts = (): ModelUsage => ({
    calls: 1,
    inputTokens: usage.inputTokens,
    outputTokens: usage.outputTokens,
    cachedInputTokens: usage.cachedInputTokens,
    costUSD: usage.costUSD ?? 0,
    unpricedCalls: priced ? 0 : 1,
  });
  return { models: { [model]: counts() }, ...counts() };
}

/**
 * The models whose cost is (partly) unknown in `usage`: `costUSD` leaves their calls out.
 * Show "cost unknown for <model>" for them rather than $0.
 */
export function unpricedModels(usage: UsageSummary): string[] {
  return Object.entries(usage.models)
    .filter(([, m]) => (m.unpricedCalls ?? 0) > 0)
    .map(([model]) => model);
}
