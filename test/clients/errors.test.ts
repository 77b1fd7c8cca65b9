import * as Anthropic from '@anthropic-ai/sdk';
import * as OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import {
  LMAuthenticationError,
  LMConnectionError,
  LMError,
  LMRateLimitError,
  LMResponseError,
  LMTimeoutError,
} from '../../src/core/errors';
import { malformed, toLMError } from '../../src/clients/errors';

// Both SDKs are generated the same way; the mapping must hold for either.
const sdks = [
  ['openai', OpenAI],
  ['anthropic', Anthropic],
] as const;

describe.each(sdks)('toLMError with the %s SDK', (provider, sdk) => {
  const map = (error: unknown, baseURL?: string) => toLMError(error, provider, 'm-1', baseURL);
  const apiError = (status: number, message: string) => sdk.APIError.generate(status, { error: { message } }, message, new Headers());

  it('maps 401 and 403 to LMAuthenticationError with the status', () => {
    for (const status of [401, 403]) {
      const mapped = map(apiError(status, 'invalid x-api-key'));
      expect(mapped).toBeInstanceOf(LMAuthenticationError);
      expect(mapped).toBeInstanceOf(LMError);
      const e = mapped as LMAuthenticationError;
      expect(e.name).toBe('LMAuthenticationError');
      expect(e.status).toBe(status);
      expect(e.provider).toBe(provider);
      expect(e.model).toBe('m-1');
      expect(e.message).toContain('apiKey');
      expect(e.message).toContain('invalid x-api-key');
      expect(e.cause).toBeInstanceOf(sdk.APIError);
    }
  });

  it('maps 429 to LMRateLimitError', () => {
    const e = map(apiError(429, 'slow down')) as LMRateLimitError;
    expect(e).toBeInstanceOf(LMRateLimitError);
    expect(e.status).toBe(429);
    expect(e.message).toContain('429');
  });

  it('maps 404 to an LMError that names the model and the base URL', () => {
    const e = map(apiError(404, 'no such model'), 'http://127.0.0.1:9/v1') as LMError;
    expect(e.constructor).toBe(LMError);
    expect(e.status).toBe(404);
    expect(e.message).toContain("'m-1'");
    expect(e.message).toContain('http://127.0.0.1:9/v1');
  });

  it('maps other statuses to a plain LMError with the status', () => {
    for (const status of [400, 500, 503]) {
      const e = map(apiError(status, `failure ${status}`)) as LMError;
      expect(e.constructor).toBe(LMError);
      expect(e.status).toBe(status);
      expect(e.message).toContain(`HTTP ${status}`);
    }
  });

  it('maps a connection error to LMConnectionError mentioning CORS and the base URL', () => {
    const e = map(new sdk.APIConnectionError({ message: 'Connection error.' }), 'http://localhost:1/v1') as LMConnectionError;
    expect(e).toBeInstanceOf(LMConnectionError);
    expect(e.status).toBeUndefined();
    expect(e.message).toContain('CORS');
    expect(e.message).toContain('http://localhost:1/v1');
  });

  it('maps a timeout to LMTimeoutError, not LMConnectionError', () => {
    const e = map(new sdk.APIConnectionTimeoutError());
    expect(e).toBeInstanceOf(LMTimeoutError);
    expect((e as Error).message).toContain('timeoutMs');
  });

  it('maps a user abort to a DOMException named AbortError', () => {
    const e = map(new sdk.APIUserAbortError());
    expect(e).toBeInstanceOf(DOMException);
    expect((e as DOMException).name).toBe('AbortError');
  });
});

describe('toLMError without an SDK class', () => {
  const map = (error: unknown) => toLMError(error, 'openai', 'm', undefined);

  it('passes an LMError through unchanged', () => {
    const original = new LMRateLimitError('x', 'openai', 'm', 429);
    expect(map(original)).toBe(original);
  });

  it('maps any error carrying a numeric status', () => {
    const e = map(Object.assign(new Error('nope'), { status: 401 }));
    expect(e).toBeInstanceOf(LMAuthenticationError);
  });

  it('maps an AbortError by name', () => {
    const e = map(new DOMException('aborted', 'AbortError'));
    expect((e as DOMException).name).toBe('AbortError');
  });

  it('maps unreadable replies (SyntaxError, TypeError) to LMResponseError', () => {
    expect(map(new SyntaxError('Unexpected token < in JSON'))).toBeInstanceOf(LMResponseError);
    expect(map(new TypeError("Cannot read properties of undefined (reading 'choices')"))).toBeInstanceOf(LMResponseError);
  });

  it('returns anything else as it is', () => {
    const odd = new RangeError('odd');
    expect(map(odd)).toBe(odd);
  });

  it('does not crash on null or a string', () => {
    expect(() => map(null)).not.toThrow();
    expect(map('boom')).toBe('boom');
  });
});

describe('malformed', () => {
  it('is an LMResponseError naming the provider, the model and what was wrong', () => {
    const e = malformed('anthropic', 'claude-x', 'no content array');
    expect(e).toBeInstanceOf(LMResponseError);
    expect(e.name).toBe('LMResponseError');
    expect(e.provider).toBe('anthropic');
    expect(e.message).toContain('claude-x');
    expect(e.message).toContain('no content array');
    expect(e.message).toContain('baseURL');
  });
});
