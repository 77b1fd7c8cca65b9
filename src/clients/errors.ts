/**
 * Maps errors of the official SDKs (both generated the same way, so their error classes
 * share names) onto rlm-web's LMError family, with messages that say what to do.
 */
import {
  LMAuthenticationError,
  LMConnectionError,
  LMError,
  LMOriginError,
  LMRateLimitError,
  LMResponseError,
  LMTimeoutError,
} from '../core/errors';

interface SDKError {
  name?: string;
  status?: number;
  message?: string;
  constructor?: { name?: string };
}

type ErrorClass = abstract new (...args: never[]) => Error;

/** The SDK's own error classes: matched with instanceof, which survives minification. */
export interface SDKErrorClasses {
  APIUserAbortError?: ErrorClass;
  APIConnectionTimeoutError?: ErrorClass;
  APIConnectionError?: ErrorClass;
}

function kindOf(error: unknown, classes: SDKErrorClasses): string {
  // Timeout before connection: the SDKs' timeout error extends their connection error.
  for (const name of ['APIUserAbortError', 'APIConnectionTimeoutError', 'APIConnectionError'] as const) {
    const cls = classes[name];
    if (cls && error instanceof cls) return name;
  }
  const e = (error ?? {}) as SDKError;
  return e.constructor?.name ?? e.name ?? '';
}

export function toLMError(error: unknown, provider: string, model: string, baseURL: string | undefined, classes: SDKErrorClasses = {}): unknown {
  if (error instanceof LMError) return error;
  // The SDKs wrap what their fetch threw in a connection error: a refused origin is ours.
  const cause = (error as { cause?: unknown } | null)?.cause;
  if (cause instanceof LMOriginError) return cause;
  const e = (error ?? {}) as SDKError;
  const kind = kindOf(error, classes);
  const where = baseURL ? ` at ${baseURL}` : '';
  if (kind === 'APIUserAbortError' || e.name === 'AbortError') {
    return new DOMException('The LM call was aborted.', 'AbortError');
  }
  if (kind === 'APIConnectionTimeoutError') {
    return new LMTimeoutError(`The ${provider} call for model '${model}'${where} timed out. Raise backendOptions.timeoutMs, or check the server's load.`, provider, model, undefined, { cause: error });
  }
  if (kind === 'APIConnectionError') {
    return new LMConnectionError(
      `Could not reach the ${provider} API${where}. Check backendOptions.baseURL, that the server is running, and that it allows requests from this page (CORS).`,
      provider,
      model,
      undefined,
      { cause: error },
    );
  }
  const status = typeof e.status === 'number' ? e.status : undefined;
  const detail = (e.message ?? String(error)).slice(0, 500);
  if (status === 401 || status === 403) {
    return new LMAuthenticationError(`The ${provider} API refused the key (${status})${where}: ${detail}. Check backendOptions.apiKey and that it may use model '${model}'.`, provider, model, status, { cause: error });
  }
  if (status === 429) {
    return new LMRateLimitError(`The ${provider} API is rate-limiting this key (429): ${detail}. Wait and retry, lower maxConcurrentSubcalls, or check the account's credit.`, provider, model, status, { cause: error });
  }
  if (status === 404) {
    return new LMError(`The ${provider} API answered 404${where}: ${detail}. Check the model name '${model}' and backendOptions.baseURL (OpenAI-compatible URLs usually end in /v1).`, provider, model, status, { cause: error });
  }
  if (status !== undefined) {
    return new LMError(`The ${provider} API failed with HTTP ${status}: ${detail}`, provider, model, status, { cause: error });
  }
  if (error instanceof SyntaxError || error instanceof TypeError) {
    return new LMResponseError(`The ${provider} API${where} sent a reply that could not be read: ${detail}`, provider, model, undefined, { cause: error });
  }
  return error;
}

export function malformed(provider: string, model: string, what: string): LMResponseError {
  return new LMResponseError(`The ${provider} API sent a malformed reply for model '${model}': ${what}. Is backendOptions.baseURL an ${provider}-compatible endpoint?`, provider, model);
}
