/** What both SDK constructors take from BackendOptions, with the same defaults. */
import type { BackendOptions } from '../core/options';

/** The constructor options both SDKs take, from BackendOptions. */
export function sdkOptions(options: BackendOptions) {
  return {
    // Local servers take any key; the SDKs insist on one.
    apiKey: options.apiKey || 'not-needed',
    baseURL: options.baseURL ?? null,
    // The key is the user's own, typed into their page: see the README's security notes.
    dangerouslyAllowBrowser: true,
    maxRetries: options.maxRetries ?? 2,
    timeout: options.timeoutMs ?? 120_000,
    defaultHeaders: options.headers ?? {},
  };
}
