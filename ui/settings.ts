/**
 * Settings shared by the demo and the extension: provider presets, models, API key, limits,
 * what is wrong with them, and the RLM options they make. Where they are kept is each
 * app's business (the demo: localStorage; the extension: chrome.storage).
 */
import type { BackendSpec, JSONSchema, RLMOptions } from '../src/index';

export type PresetId = 'openai' | 'anthropic' | 'openrouter' | 'local';

export interface Preset {
  id: PresetId;
  label: string;
  backend: string;
  rootModel: string;
  subModel: string;
  /** Shown as the base URL field's default; the field is shown only when editable. */
  baseURL: string;
  needsKey: boolean;
  keyHint: string;
  /** Where the SDK sends requests when no base URL is set (hosted presets); '' for 'local'. */
  defaultOrigin: string;
}

export const PRESETS: readonly Preset[] = [
  { id: 'openai', label: 'OpenAI', backend: 'openai', rootModel: 'gpt-5-mini', subModel: 'gpt-5-nano', baseURL: '', needsKey: true, keyHint: 'sk-…', defaultOrigin: 'https://api.openai.com' },
  { id: 'anthropic', label: 'Anthropic', backend: 'anthropic', rootModel: 'claude-sonnet-4-5', subModel: 'claude-haiku-4-5', baseURL: '', needsKey: true, keyHint: 'sk-ant-…', defaultOrigin: 'https://api.anthropic.com' },
  { id: 'openrouter', label: 'OpenRouter', backend: 'openrouter', rootModel: 'openai/gpt-5-mini', subModel: 'openai/gpt-5-nano', baseURL: 'https://openrouter.ai/api/v1', needsKey: true, keyHint: 'sk-or-…', defaultOrigin: 'https://openrouter.ai' },
  { id: 'local', label: 'Local server (Ollama, vLLM, LM Studio)', backend: 'openai', rootModel: 'qwen3:8b', subModel: 'qwen3:8b', baseURL: 'http://localhost:11434/v1', needsKey: false, keyHint: 'optional', defaultOrigin: '' },
];

/** Hosts a 'local' server may be on: this computer. */
const LOOPBACK_HOSTS = ['localhost', '127.0.0.1'];

/**
 * Where the demo page and the extension's panel may send LM requests: the `connect-src` of
 * their CSPs besides 'self' (demo/index.html writes it out; the extension's build renders it
 * into the manifest). The hosted presets' origins and a server on this computer, on any port.
 */
export const LM_CONNECT_SOURCES: readonly string[] = [
  ...PRESETS.map((p) => p.defaultOrigin).filter((origin) => origin !== ''),
  ...LOOPBACK_HOSTS.flatMap((host) => [`http://${host}:*`, `https://${host}:*`]),
];

export interface Settings {
  preset: PresetId;
  rootModel: string;
  subModel: string;
  baseURL: string;
  apiKey: string;
  rememberKey: boolean;
  maxIterations: number;
  maxDepth: number;
  /** USD; 0 means no limit. */
  maxBudget: number;
  /** Minutes; 0 means no limit. */
  maxMinutes: number;
  /** How Python blocks on sub-calls: 'auto' (SharedArrayBuffer on a cross-origin isolated page, else JSPI) or 'jspi'. */
  bridge: 'auto' | 'jspi';
  /** A JSON Schema for the answer, as typed; '' for a text answer. Pages without the field keep ''. */
  answerSchema: string;
}

export function presetOf(id: string): Preset {
  return PRESETS.find((p) => p.id === id) ?? PRESETS[0]!;
}

export function defaultSettings(preset: PresetId = 'openai'): Settings {
  const p = presetOf(preset);
  return { preset: p.id, rootModel: p.rootModel, subModel: p.subModel, baseURL: p.baseURL, apiKey: '', rememberKey: false, maxIterations: 20, maxDepth: 1, maxBudget: 1, maxMinutes: 10, bridge: 'auto', answerSchema: '' };
}

/** What the settings say that is wrong, in words that say what to do; undefined when fine. */
export function validateSettings(s: Settings): string | undefined {
  const preset = presetOf(s.preset);
  if (!s.rootModel.trim()) return 'Enter a root model name in Settings.';
  if (preset.needsKey && !s.apiKey.trim()) return `Enter your ${preset.label} API key in Settings. It stays in this tab unless you tick "Remember on this device".`;
  if (preset.id === 'local') {
    try {
      const url = new URL(s.baseURL);
      if (!/^https?:$/.test(url.protocol)) throw new Error('protocol');
    } catch {
      return 'Enter the base URL of your local server in Settings, e.g. http://localhost:11434/v1 for Ollama.';
    }
    // The page's CSP would refuse the connection: say so before a run fails on it.
    if (!LOOPBACK_HOSTS.includes(new URL(s.baseURL).hostname)) {
      return `This page sends LM requests only to the providers in Settings and to a server on this computer (localhost or 127.0.0.1), not to ${new URL(s.baseURL).host}. Run the server locally, or reach it through a local proxy such as LiteLLM.`;
    }
  }
  if (!(s.maxIterations >= 1)) return 'Max iterations must be at least 1.';
  if (!(s.maxDepth >= 1)) return 'Max depth must be at least 1.';
  return answerSchemaProblem(s);
}

/** What is wrong with the answer format, if anything: it must be a JSON object (a JSON Schema). */
export function answerSchemaProblem(s: Settings): string | undefined {
  const text = (s.answerSchema ?? '').trim();
  if (!text) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return `The answer format is not valid JSON (${(error as Error).message}). Paste a JSON Schema, e.g. {"type": "array", "items": {"type": "object"}}, or leave the field empty for a text answer.`;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return 'The answer format must be a JSON Schema object, e.g. {"type": "object", "properties": {…}}, or empty for a text answer.';
  return undefined;
}

/** The answer format as a JSON Schema for `completion({ schema })`; undefined for a text answer (or one that answerSchemaProblem refuses). */
export function answerSchemaOf(s: Settings): JSONSchema | undefined {
  if (answerSchemaProblem(s) || !(s.answerSchema ?? '').trim()) return undefined;
  return JSON.parse(s.answerSchema) as JSONSchema;
}

/** RLM options for these settings (without onEvent and logger). */
export function toRLMOptions(s: Settings): RLMOptions {
  const preset = presetOf(s.preset);
  const baseURL = preset.id === 'local' ? s.baseURL.trim() : undefined;
  const backendOptions = { model: s.rootModel.trim(), apiKey: s.apiKey.trim() || undefined, baseURL };
  const sub = s.subModel.trim();
  const otherBackends: BackendSpec[] = sub ? [{ backend: preset.backend, backendOptions: { ...backendOptions, model: sub } }] : [];
  return {
    backend: preset.backend,
    backendOptions,
    otherBackends,
    maxIterations: Math.round(s.maxIterations),
    maxDepth: Math.round(s.maxDepth),
    maxBudget: s.maxBudget > 0 ? s.maxBudget : undefined,
    maxTimeMs: s.maxMinutes > 0 ? s.maxMinutes * 60_000 : undefined,
    environmentOptions: { bridge: s.bridge === 'jspi' ? 'jspi' : 'auto' },
  };
}

/** The origin the run's LM requests go to (the base URL's for 'local'); undefined if the URL is not valid. */
export function endpointOrigin(s: Settings): string | undefined {
  const preset = presetOf(s.preset);
  if (preset.id !== 'local') return preset.baseURL ? new URL(preset.baseURL).origin : preset.defaultOrigin;
  try {
    const url = new URL(s.baseURL.trim());
    return /^https?:$/.test(url.protocol) ? url.origin : undefined;
  } catch {
    return undefined;
  }
}
