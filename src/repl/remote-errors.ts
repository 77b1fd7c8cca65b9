/**
 * Errors of the remote environment (a sandbox behind rlm-web-proxy). Each says what to
 * check; `status` and `code` are the proxy's when it answered.
 */
import { RLMError } from '../core/errors';

/** The remote environment's proxy refused or failed a request; `status` and `code` say which. */
export class ProxyError extends RLMError {
  override name = 'ProxyError';
  constructor(
    message: string,
    /** HTTP status, when the proxy answered. */
    readonly status?: number,
    /** The proxy's error code (e.g. 'too_many_sandboxes'), when it sent one. */
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** 401: the token is missing or not one the proxy accepts. */
export class ProxyAuthenticationError extends ProxyError {
  override name = 'ProxyAuthenticationError';
}

/** The proxy refuses requests from this page's origin (CORS). */
export class ProxyOriginError extends ProxyError {
  override name = 'ProxyOriginError';
}

/** The proxy could not be reached, or the connection dropped mid-request. */
export class ProxyConnectionError extends ProxyError {
  override name = 'ProxyConnectionError';
}

/** 429: this token already has the proxy's maximum number of sandboxes. */
export class ProxyQuotaError extends ProxyError {
  override name = 'ProxyQuotaError';
}

/** The sandbox failed to start, or its process died (out of memory, killed). */
export class SandboxCrashedError extends ProxyError {
  override name = 'SandboxCrashedError';
}

/** The proxy deleted the sandbox: idle too long, or past its maximum lifetime. */
export class SandboxExpiredError extends ProxyError {
  override name = 'SandboxExpiredError';
}
