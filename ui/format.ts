/** Numbers and sizes as people read them. */

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

export function formatCount(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

export function formatCost(usd: number): string {
  if (usd === 0) return '$0';
  return usd < 0.01 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

/** The models of `usage` with calls of unknown cost (the price database does not list them). */
export function unpricedOf(usage: { models: Record<string, { unpricedCalls?: number | undefined } | undefined> }): string[] {
  return Object.keys(usage.models).filter((model) => (usage.models[model]?.unpricedCalls ?? 0) > 0);
}

/** A run's cost: list or reported prices, and the models whose cost is unknown (never shown as $0). */
export function formatRunCost(usd: number, unpriced: readonly string[]): string {
  if (unpriced.length === 0) return formatCost(usd);
  const unknown = `cost unknown for ${unpriced.join(', ')}`;
  return usd > 0 ? `${formatCost(usd)} + ${unknown}` : unknown;
}

export function formatDate(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** Creates an element with text content only (never HTML). */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
