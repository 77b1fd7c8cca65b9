/**
 * Messages API through the official `@anthropic-ai/sdk`. The system message moves to
 * `system`; the stable prefix of the growing conversation is marked for prompt caching.
 */
import type { BackendOptions } from '../core/options';
import type { ChatMessage, LMClient, LMRequest, LMResult, ResponseFormat, SamplingArgs } from '../core/types';
import { malformed, toLMError } from './errors';
import { priceTargets, withCost } from './prices';
import { checkedMessages } from '../core/messages';
import { SDKClient } from './sdk-client';
import { requestOptions } from './sdk-options';
import { providerSchema, readStructured, type ProviderSchema } from './structured';

type AnthropicModule = typeof import('@anthropic-ai/sdk');
let sdk: Promise<AnthropicModule> | undefined;

const DEFAULT_MAX_OUTPUT_TOKENS = 8192;

/** The SDK's own default, given explicitly so that the client's origin is known before it is built. */
const ANTHROPIC_BASE_URL = 'https://api.anthropic.com';

interface TextBlock {
  type: 'text';
  text: string;
  cache_control?: { type: 'ephemeral' };
}

/**
 * Claude through the official `@anthropic-ai/sdk` (loaded on first use).
 *
 * @example
 * const rlm = new RLM({ backend: new AnthropicClient({ model: 'claude-sonnet-4-5', apiKey }) });
 */
export class AnthropicClient extends SDKClient<InstanceType<AnthropicModule['default']>> implements LMClient {
  constructor(options: BackendOptions) {
    super(options, 'anthropic', ANTHROPIC_BASE_URL);
  }

  protected createClient() {
    return (sdk ??= import('@anthropic-ai/sdk')).then(({ default: Anthropic }) => this.build(Anthropic));
  }

  async complete(request: LMRequest): Promise<LMResult> {
    const checked = checkedMessages(request.messages);
    const client = await this.sdkClient();
    const { system, messages } = toAnthropicMessages(checked, request.cachePrefix !== undefined);
    const structured = request.responseFormat ? await anthropicSchema(request.responseFormat) : undefined;
    const sampled = anthropicSampling(request.sampling, this.options.extraBody);
    let reply: unknown;
    try {
      reply = await client.messages.create(
        {
          ...this.options.extraBody,
          model: this.model,
          max_tokens: this.options.maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS,
          ...(system.length > 0 ? { system } : {}),
          messages,
          ...sampled,
          // The format joins the effort (or extraBody's output_config) rather than replacing it.
          ...(structured ? { output_config: { ...objectOf(sampled.output_config ?? this.options.extraBody?.output_config), format: { type: 'json_schema', schema: structured.schema } } } : {}),
        } as never,
        requestOptions(request.signal, request.timeoutMs),
      );
    } catch (error) {
      throw toLMError(error, this.provider, this.model, this.options.baseURL, await sdk);
    }
    const blocks = (reply as { content?: { type: string; text?: string; thinking?: string }[] }).content;
    if (!Array.isArray(blocks)) throw malformed(this.provider, this.model, 'no content array');
    const text = blocks.filter((b) => b.type === 'text').map((b) => b.text ?? '').join('');
    const reasoning = blocks.filter((b) => b.type === 'thinking').map((b) => b.thinking ?? '').join('') || undefined;
    const usage = (reply as { usage?: Record<string, number | null | undefined> }).usage ?? {};
    const cacheRead = usage.cache_read_input_tokens ?? 0;
    const cacheWrite = usage.cache_creation_input_tokens ?? 0;
    return {
      text: text.trim().length > 0 ? text : (reasoning ?? ''),
      reasoning,
      usage: await withCost(
        {
          // Anthropic reports cached tokens apart from input_tokens; count all input here.
          inputTokens: (usage.input_tokens ?? 0) + cacheRead + cacheWrite,
          outputTokens: usage.output_tokens ?? 0,
          cachedInputTokens: cacheRead,
        },
        priceTargets(this.provider, this.model, this.options.baseURL),
        // Cache writes cost more than plain input.
        cacheWrite,
      ),
      model: typeof (reply as { model?: unknown }).model === 'string' ? (reply as { model: string }).model : this.model,
      ...(structured ? { parsed: readStructured(text, structured.wrapped, this.provider, this.model) } : {}),
    };
  }
}

/**
 * Structured output (`output_config.format`): the schema rewritten by the SDK's own helper
 * into the subset the API accepts (constraints it cannot enforce move into descriptions;
 * validation still enforces them). A schema the helper cannot rewrite is sent as it is.
 */
async function anthropicSchema(format: ResponseFormat): Promise<ProviderSchema> {
  const out = providerSchema(format);
  const { jsonSchemaOutputFormat } = await import('@anthropic-ai/sdk/helpers/json-schema');
  try {
    return { ...out, schema: jsonSchemaOutputFormat(out.schema as never).schema };
  } catch {
    return out;
  }
}

function objectOf(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/**
 * Splits out system messages and merges consecutive same-role messages (the API wants
 * alternation). With caching on, the system prompt and the newest message carry
 * cache_control: the next call's prefix then hits the cache written by this one.
 */
export function toAnthropicMessages(input: ChatMessage[], cache: boolean): { system: TextBlock[]; messages: { role: 'user' | 'assistant'; content: TextBlock[] }[] } {
  const system: TextBlock[] = [];
  const messages: { role: 'user' | 'assistant'; content: TextBlock[] }[] = [];
  for (const m of input) {
    if (m.role === 'system') {
      system.push({ type: 'text', text: m.content });
      continue;
    }
    // The API rejects empty text blocks; an empty reply still keeps its turn.
    const text = m.content.trim().length > 0 ? m.content : '(empty reply)';
    const last = messages[messages.length - 1];
    if (last && last.role === m.role) last.content.push({ type: 'text', text });
    else messages.push({ role: m.role, content: [{ type: 'text', text }] });
  }
  if (messages[0]?.role === 'assistant') messages.unshift({ role: 'user', content: [{ type: 'text', text: '(continue)' }] });
  if (cache) {
    const lastSystem = system[system.length - 1];
    if (lastSystem) lastSystem.cache_control = { type: 'ephemeral' };
    const lastMessage = messages[messages.length - 1];
    const lastBlock = lastMessage?.content[lastMessage.content.length - 1];
    if (lastBlock) lastBlock.cache_control = { type: 'ephemeral' };
  }
  return { system, messages };
}

/**
 * Sampling args as Messages API parameters (only those set). The effort joins any
 * `output_config` already given in `extraBody` rather than replacing it.
 */
export function anthropicSampling(sampling: SamplingArgs | undefined, extraBody?: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!sampling) return out;
  if (sampling.temperature !== undefined) out.temperature = sampling.temperature;
  if (sampling.topP !== undefined) out.top_p = sampling.topP;
  if (sampling.maxOutputTokens !== undefined) out.max_tokens = sampling.maxOutputTokens;
  if (sampling.stop !== undefined) out.stop_sequences = sampling.stop;
  if (sampling.reasoningEffort !== undefined) {
    const given = extraBody?.output_config;
    out.output_config = { ...(typeof given === 'object' && given !== null ? given : {}), effort: sampling.reasoningEffort };
  }
  return out;
}
