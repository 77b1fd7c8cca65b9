/**
 * Chat Completions through the official `openai` SDK: OpenAI itself and every
 * OpenAI-compatible server (OpenRouter, vLLM, Ollama, LM Studio, LiteLLM).
 */
import type { BackendOptions } from '../core/options';
import type { LMClient, LMRequest, LMResult, LMUsage, SamplingArgs } from '../core/types';
import { LMResponseError } from '../core/errors';
import { malformed, toLMError } from './errors';
import { priceTargets, withCost } from './prices';
import { checkedMessages } from '../core/messages';
import { SDKClient } from './sdk-client';
import { requestOptions } from './sdk-options';
import { isStrictReady, providerSchema, readStructured } from './structured';

type OpenAIModule = typeof import('openai');
let sdk: Promise<OpenAIModule> | undefined;

/** The SDK's own default, given explicitly so that the client's origin is known before it is built. */
const OPENAI_BASE_URL = 'https://api.openai.com/v1';

interface ChatUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number } | null;
  cost?: number;
  cost_details?: { upstream_inference_cost?: number } | null;
}

/**
 * OpenAI and every OpenAI-compatible server through the official `openai` SDK (loaded on first use).
 *
 * @example
 * const client = new OpenAIClient({ model: 'llama3.1', baseURL: 'http://localhost:11434/v1' }, 'ollama');
 */
export class OpenAIClient extends SDKClient<InstanceType<OpenAIModule['default']>> implements LMClient {
  constructor(options: BackendOptions, provider = 'openai') {
    super(options, provider, OPENAI_BASE_URL);
  }

  protected createClient() {
    // `idempotencyHeader` is read from the client but never set by the OpenAI class.
    return (sdk ??= import('openai')).then(({ default: OpenAI }) => this.build(OpenAI, ['idempotencyHeader']));
  }

  async complete(request: LMRequest): Promise<LMResult> {
    const messages = checkedMessages(request.messages);
    const client = await this.sdkClient();
    const structured = request.responseFormat ? providerSchema(request.responseFormat) : undefined;
    let reply: unknown;
    try {
      const body: Record<string, unknown> = { ...this.options.extraBody, model: this.model, messages };
      if (this.options.maxOutputTokens !== undefined) body.max_completion_tokens = this.options.maxOutputTokens;
      Object.assign(body, openAISampling(request.sampling));
      if (structured) body.response_format = { type: 'json_schema', json_schema: { name: structured.name, schema: structured.schema, strict: isStrictReady(structured.schema) } };
      reply = await client.chat.completions.create(body as never, requestOptions(request.signal, request.timeoutMs));
    } catch (error) {
      throw toLMError(error, this.provider, this.model, this.options.baseURL, await sdk);
    }
    const choice = (reply as { choices?: { message?: Record<string, unknown> }[] }).choices?.[0];
    if (!choice?.message) throw malformed(this.provider, this.model, 'no choices[0].message');
    const message = choice.message;
    const content = typeof message.content === 'string' ? message.content : '';
    if (structured && typeof message.refusal === 'string' && message.refusal) {
      throw new LMResponseError(`Model '${this.model}' refused the structured request: ${message.refusal.slice(0, 300)}`, this.provider, this.model);
    }
    // Reasoning models on compatible servers may put everything in a reasoning field.
    const reasoning = [message.reasoning_content, message.reasoning].find((r): r is string => typeof r === 'string' && r.length > 0);
    const usage = (reply as { usage?: ChatUsage }).usage ?? {};
    const cost = usage.cost ?? usage.cost_details?.upstream_inference_cost;
    const lmUsage: LMUsage = {
      inputTokens: usage.prompt_tokens ?? 0,
      outputTokens: usage.completion_tokens ?? 0,
      cachedInputTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
      costUSD: typeof cost === 'number' ? cost : undefined,
    };
    return {
      text: content.trim().length > 0 ? content : (reasoning ?? ''),
      reasoning,
      // A cost the API reports (OpenRouter, gateways) wins over list prices.
      usage: await withCost(lmUsage, priceTargets(this.provider, this.model, this.options.baseURL)),
      model: typeof (reply as { model?: unknown }).model === 'string' ? (reply as { model: string }).model : this.model,
      ...(structured ? { parsed: readStructured(content, structured.wrapped, this.provider, this.model) } : {}),
    };
  }
}

/** Sampling args as Chat Completions parameters (only those set). */
export function openAISampling(sampling: SamplingArgs | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!sampling) return out;
  if (sampling.temperature !== undefined) out.temperature = sampling.temperature;
  if (sampling.topP !== undefined) out.top_p = sampling.topP;
  if (sampling.maxOutputTokens !== undefined) out.max_completion_tokens = sampling.maxOutputTokens;
  if (sampling.reasoningEffort !== undefined) out.reasoning_effort = sampling.reasoningEffort;
  if (sampling.stop !== undefined) out.stop = sampling.stop;
  return out;
}
