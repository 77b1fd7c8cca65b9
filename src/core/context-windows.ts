/**
 * Context window sizes (tokens) by model-name key, for compaction. The longest key
 * contained in the model name wins; unknown models get DEFAULT_CONTEXT_WINDOW. Override
 * with `contextWindows`.
 */
export const DEFAULT_CONTEXT_WINDOW = 128_000;

/** Context window sizes (tokens) by model-name substring, used to decide when to compact. */
export const CONTEXT_WINDOWS: Readonly<Record<string, number>> = {
  'gpt-5': 272_000,
  'gpt-4.1': 1_047_576,
  'gpt-4o': 128_000,
  'gpt-4': 128_000,
  o1: 200_000,
  o3: 200_000,
  'o4-mini': 200_000,
  'claude-3': 200_000,
  'claude-sonnet-4': 200_000,
  'claude-opus-4': 200_000,
  'claude-haiku-4': 200_000,
  'gemini-2.5': 1_048_576,
  'gemini-2.0': 1_048_576,
  'qwen3': 131_072,
  'llama-3': 131_072,
  'deepseek': 128_000,
};

/** The context window of `model`: the longest matching key of `overrides` merged over the table, else the default. */
export function contextWindowFor(model: string, overrides?: Record<string, number>): number {
  const table = { ...CONTEXT_WINDOWS, ...overrides };
  const name = model.toLowerCase();
  // The longest key contained in the name wins, so provider-prefixed names
  // ("openai/gpt-5", "us.anthropic.claude-sonnet-4-...") match too.
  let best: [string, number] | undefined;
  for (const [key, size] of Object.entries(table)) {
    if (name.includes(key.toLowerCase()) && (!best || key.length > best[0].length)) best = [key, size];
  }
  return best ? best[1] : DEFAULT_CONTEXT_WINDOW;
}

/** A cheap token estimate (≈4 characters a token), good enough to decide when to compact. */
export function estimateTokens(messages: { content: string }[]): number {
  let chars = 0;
  for (const m of messages) chars += m.content.length;
  return Math.ceil(chars / 4) + 3 * messages.length;
}
