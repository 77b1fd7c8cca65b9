/**
 * Context window sizes (tokens), for compaction. The window comes from, in order: the
 * `contextWindows` option (the longest key contained in the model name wins), the LM
 * client (which reads the maintained price database, src/clients/prices.ts), then
 * DEFAULT_CONTEXT_WINDOW. No table is kept by hand here: it went stale with every release.
 */
export const DEFAULT_CONTEXT_WINDOW = 128_000;

/**
 * The context window of `model`: an override whose key the name contains (the longest such
 * key wins, so "openai/gpt-5-mini" matches "gpt-5-mini" before "gpt-5"), else `known` (the
 * client's figure), else DEFAULT_CONTEXT_WINDOW.
 */
export function contextWindowFor(model: string, overrides?: Record<string, number>, known?: number): number {
  const name = model.toLowerCase();
  let best: [string, number] | undefined;
  for (const [key, size] of Object.entries(overrides ?? {})) {
    if (name.includes(key.toLowerCase()) && (!best || key.length > best[0].length)) best = [key, size];
  }
  return best?.[1] ?? known ?? DEFAULT_CONTEXT_WINDOW;
}

/** A cheap token estimate (≈4 characters a token), good enough to decide when to compact. */
export function estimateTokens(messages: { content: string }[]): number {
  let chars = 0;
  for (const m of messages) chars += m.content.length;
  return Math.ceil(chars / 4) + 3 * messages.length;
}
