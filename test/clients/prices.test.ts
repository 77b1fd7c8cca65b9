/**
 * List prices from the price database: which provider's list a backend preset reads, cached
 * input priced as such, a reported cost kept, unknown and self-hosted models left unpriced.
 * Expected figures are worked out from the database's own per-token prices, not copied.
 */
import { describe, expect, it } from 'vitest';
import { contextWindowOf, loadPrices, priceCall, priceTargets, withCost } from '../../src/clients/prices';

/** The database's flat price (USD per million tokens) of `key` for a model, or 0. */
async function listPrice(model: string, providerId: string, key: string): Promise<number> {
  const { calcPrice } = await loadPrices();
  const price = calcPrice({}, model, { providerId })?.model_price[key];
  if (typeof price === 'number') return price;
  if (price && typeof price === 'object' && 'base' in price) return (price as { base: number }).base;
  return 0;
}

describe('priceCall', () => {
  it('prices an OpenAI call with its cached input at the cached rate', async () => {
    const input = await listPrice('gpt-5-nano', 'openai', 'input_mtok');
    const cached = await listPrice('gpt-5-nano', 'openai', 'cache_read_mtok');
    const output = await listPrice('gpt-5-nano', 'openai', 'output_mtok');
    expect(input).toBeGreaterThan(cached);
    const cost = await priceCall(priceTargets('openai', 'gpt-5-nano', undefined), { input: 10_000, cacheRead: 4_000, cacheWrite: 0, output: 500 });
    expect(cost).toBeCloseTo((6_000 * input + 4_000 * cached + 500 * output) / 1e6, 12);
  });

  it('prices Anthropic cache writes above plain input', async () => {
    const targets = priceTargets('anthropic', 'claude-sonnet-4-5', undefined);
    const plain = await priceCall(targets, { input: 1_000, cacheRead: 0, cacheWrite: 0, output: 0 });
    const written = await priceCall(targets, { input: 1_000, cacheRead: 0, cacheWrite: 1_000, output: 0 });
    const read = await priceCall(targets, { input: 1_000, cacheRead: 1_000, cacheWrite: 0, output: 0 });
    expect(plain).toBeGreaterThan(0);
    expect(written!).toBeGreaterThan(plain!);
    expect(read!).toBeLessThan(plain!);
  });

  it('reads dated model names and gateway "provider/model" names', async () => {
    const tokens = { input: 1_000, cacheRead: 0, cacheWrite: 0, output: 100 };
    const plain = await priceCall(priceTargets('openai', 'gpt-5', undefined), tokens);
    expect(plain).toBeGreaterThan(0);
    expect(await priceCall(priceTargets('vercel', 'openai/gpt-5', 'https://ai-gateway.vercel.sh/v1'), tokens)).toBe(plain);
    expect(await priceCall(priceTargets('litellm', 'gpt-5', 'http://localhost:4000/v1'), tokens)).toBe(plain);
    expect(await priceCall(priceTargets('anthropic', 'claude-sonnet-4-5-20250929', undefined), tokens)).toBe(await priceCall(priceTargets('anthropic', 'claude-sonnet-4-5', undefined), tokens));
    expect(await priceCall(priceTargets('openrouter', 'openai/gpt-5', 'https://openrouter.ai/api/v1'), tokens)).toBeGreaterThan(0);
  });

  it('falls back to OpenAI prices for an OpenAI-compatible server the database does not know', async () => {
    const tokens = { input: 1_000, cacheRead: 0, cacheWrite: 0, output: 100 };
    expect(await priceCall(priceTargets('openai', 'gpt-5-nano', 'http://127.0.0.1:9/v1'), tokens)).toBe(await priceCall(priceTargets('openai', 'gpt-5-nano', undefined), tokens));
  });

  it('leaves unknown models and self-hosted servers unpriced rather than free', async () => {
    const tokens = { input: 1_000, cacheRead: 0, cacheWrite: 0, output: 100 };
    expect(await priceCall(priceTargets('openai', 'my-fine-tune-xyz', undefined), tokens)).toBeUndefined();
    // A local model named like a cloud one still costs no list price.
    expect(priceTargets('ollama', 'gpt-oss:20b', 'http://localhost:11434/v1')).toEqual([]);
    expect(await priceCall(priceTargets('vllm', 'gpt-5', 'http://gpu:8000/v1'), tokens)).toBeUndefined();
  });
});

describe('withCost', () => {
  it('keeps a cost the API reported', async () => {
    const usage = { inputTokens: 1_000, outputTokens: 10, cachedInputTokens: 0, costUSD: 0.123 };
    expect(await withCost(usage, priceTargets('openai', 'gpt-5', undefined))).toEqual(usage);
  });

  it('adds the list price when the API gave none, and nothing for an unknown model', async () => {
    const usage = { inputTokens: 1_000, outputTokens: 10, cachedInputTokens: 0 };
    expect((await withCost(usage, priceTargets('openai', 'gpt-5', undefined))).costUSD).toBeGreaterThan(0);
    expect((await withCost(usage, priceTargets('openai', 'scripted-root', undefined))).costUSD).toBeUndefined();
  });
});

describe('contextWindowOf', () => {
  it('knows the windows of listed models and says nothing of others', async () => {
    expect(await contextWindowOf(priceTargets('anthropic', 'claude-sonnet-4-5', undefined))).toBeGreaterThanOrEqual(200_000);
    expect(await contextWindowOf(priceTargets('openai', 'gpt-5-mini', undefined))).toBeGreaterThanOrEqual(128_000);
    expect(await contextWindowOf(priceTargets('openai', 'my-local-model', undefined))).toBeUndefined();
    expect(await contextWindowOf(priceTargets('ollama', 'llama3.2', undefined))).toBeUndefined();
  });
});
