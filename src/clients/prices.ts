/**
 * Prices and context windows from a maintained database: `@pydantic/genai-prices` (MIT; its
 * data ships inside the package and new versions follow the providers' price pages). It is
 * imported on first use, so the data (~90 KB gzipped) is a chunk of its own that a page
 * loads only once an LM call has answered, never part of its initial bundle.
 *
 * Updating the prices: bump the pinned `@pydantic/genai-prices` version in package.json (or
 * `npm update @pydantic/genai-prices`) and rebuild; nothing is fetched at run time.
 */
import type { LMUsage } from '../core/types';

type GenaiPrices = typeof import('@pydantic/genai-prices');
let loading: Promise<GenaiPrices> | undefined;

/** The price database, imported once (a lazy chunk). */
export function loadPrices(): Promise<GenaiPrices> {
  loading ??= import('@pydantic/genai-prices');
  return loading;
}

/** One call's tokens as the database counts them: `input` includes the cache reads and writes. */
export interface CallTokens {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
}

/** Where a model's price is looked up. */
interface PriceTarget {
  model: string;
  providerId?: string | undefined;
  providerApiUrl?: string | undefined;
}

/** Self-hosted presets: the model runs on the user's own machine, so no price list applies. */
const SELF_HOSTED = new Set(['ollama', 'lmstudio', 'vllm']);
/** Gateways whose model names are "provider/model" and that add no margin of their own. */
const ROUTED = new Set(['vercel', 'litellm']);

/**
 * Where to look `model` up for a backend preset, or the targets to try in order. Empty for
 * self-hosted servers (a local model has no list price).
 */
export function priceTargets(backend: string, model: string, baseURL: string | undefined): PriceTarget[] {
  if (SELF_HOSTED.has(backend)) return [];
  if (backend === 'anthropic') return [{ model, providerId: 'anthropic' }];
  if (backend === 'openrouter') return [{ model, providerId: 'openrouter' }];
  if (ROUTED.has(backend)) {
    const slash = model.indexOf('/');
    return slash > 0 ? [{ model: model.slice(slash + 1), providerId: model.slice(0, slash) }] : [{ model }];
  }
  // 'openai' and other OpenAI-compatible names: the server's own price list when the
  // database knows its URL (Groq, Together, ...), else OpenAI's.
  return baseURL ? [{ model, providerApiUrl: baseURL }, { model, providerId: 'openai' }] : [{ model, providerId: 'openai' }];
}

function find(prices: GenaiPrices, targets: PriceTarget[], usage: Record<string, number>) {
  for (const target of targets) {
    const options = target.providerId ? { providerId: target.providerId } : target.providerApiUrl ? { providerApiUrl: target.providerApiUrl } : {};
    try {
      const result = prices.calcPrice(usage, target.model, options);
      if (result) return result;
    } catch {
      // A malformed name or an unknown provider: try the next target.
    }
  }
  return null;
}

/** USD for one call at list prices (cached input priced as such), or undefined when the model is not in the database. */
export async function priceCall(targets: PriceTarget[], tokens: CallTokens): Promise<number | undefined> {
  if (targets.length === 0) return undefined;
  const prices = await loadPrices();
  const usage = { input_tokens: tokens.input, output_tokens: tokens.output, cache_read_tokens: tokens.cacheRead, cache_write_tokens: tokens.cacheWrite };
  const total = find(prices, targets, usage)?.total_price;
  return typeof total === 'number' && Number.isFinite(total) ? total : undefined;
}

/** The model's context window in tokens, or undefined when the database does not know it. */
export async function contextWindowOf(targets: PriceTarget[]): Promise<number | undefined> {
  if (targets.length === 0) return undefined;
  const prices = await loadPrices();
  return find(prices, targets, {})?.model.context_window;
}

/** `usage` with its cost: the API's own figure when it gave one, else the database's. */
export async function withCost(usage: LMUsage, targets: PriceTarget[], cacheWrite = 0): Promise<LMUsage> {
  if (usage.costUSD !== undefined) return usage;
  const costUSD = await priceCall(targets, { input: usage.inputTokens, output: usage.outputTokens, cacheRead: usage.cachedInputTokens, cacheWrite }).catch(() => undefined);
  return costUSD === undefined ? usage : { ...usage, costUSD };
}
