/**
 * Backend names to clients. Adding a provider is one class plus one line here.
 */
import { ConfigurationError } from '../core/errors';
import type { BackendSpec } from '../core/options';
import type { LMClient } from '../core/types';
import { AnthropicClient } from './anthropic';
import { OpenAIClient } from './openai';
import { ownBackendOptions } from './sdk-options';

/** OpenAI-compatible presets: name → default base URL (undefined: the user must give one). */
export const OPENAI_COMPATIBLE: Readonly<Record<string, string | undefined>> = {
  openai: undefined,
  openrouter: 'https://openrouter.ai/api/v1',
  vercel: 'https://ai-gateway.vercel.sh/v1',
  ollama: 'http://localhost:11434/v1',
  lmstudio: 'http://localhost:1234/v1',
  vllm: undefined,
  litellm: 'http://localhost:4000/v1',
};

const NEEDS_BASE_URL = new Set(['vllm']);

/** The client for a backend name (or the `LMClient` itself); throws ConfigurationError for an unknown name. */
export function createClient(spec: BackendSpec): LMClient {
  const { backend } = spec;
  if (typeof backend === 'object') return backend;
  const given = spec.backendOptions;
  const options = given ? ownBackendOptions(given) : undefined;
  if (!options?.model) throw new ConfigurationError(`backendOptions.model is required for backend '${backend}'.`);
  if (backend === 'anthropic') return new AnthropicClient(options);
  if (Object.hasOwn(OPENAI_COMPATIBLE, backend)) {
    if (NEEDS_BASE_URL.has(backend) && !options.baseURL) {
      throw new ConfigurationError(`backend '${backend}' needs backendOptions.baseURL (for example http://localhost:8000/v1).`);
    }
    const preset = Object.hasOwn(OPENAI_COMPATIBLE, backend) ? OPENAI_COMPATIBLE[backend] : undefined;
    return new OpenAIClient({ ...options, baseURL: options.baseURL ?? preset }, backend);
  }
  throw new ConfigurationError(`Unknown backend '${backend}'. Use one of: anthropic, ${Object.keys(OPENAI_COMPATIBLE).join(', ')}, or pass an object implementing LMClient.`);
}
