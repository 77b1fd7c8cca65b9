import { describe, expect, it } from 'vitest';
import { describeError } from '../../src/core/errors';
import { resolveOptions, runConfig } from '../../src/core/options';
import { redactOptions, redactURL, redactURLs, redactValue } from '../../src/core/redact';

describe('redactURL', () => {
  it('drops userinfo, query and fragment; keeps scheme, host, port and path', () => {
    expect(redactURL('https://u:p@host/v1?key=abc')).toBe('https://host/v1');
    expect(redactURL('http://user@127.0.0.1:8080/api/#token=x')).toBe('http://127.0.0.1:8080/api/');
    expect(redactURL('wss://u:p@relay.example/socket?token=t')).toBe('wss://relay.example/socket');
    expect(redactURL('https://api.openai.com')).toBe('https://api.openai.com');
    expect(redactURL('https://api.openai.com/')).toBe('https://api.openai.com/');
  });

  it('replaces a URL that does not parse whole (it may still hold a secret)', () => {
    expect(redactURL('https://u:p@[bad')).toBe('[URL removed]');
  });
});

describe('redactURLs', () => {
  it('redacts every URL inside free text, such as an SDK error quoting its base URL', () => {
    expect(redactURLs('Connection error. (POST https://me:s3cret@llm.local/v1/chat?api-key=abc failed), retry https://x.dev/a#k')).toBe(
      'Connection error. (POST https://llm.local/v1/chat failed), retry https://x.dev/a',
    );
    expect(redactURLs('no URL here; ftp://a:b@c stays as written')).toBe('no URL here; ftp://a:b@c stays as written');
  });

  it('describeError applies it to what trajectories record', () => {
    expect(describeError(new TypeError('fetch https://u:p@h/v1?key=k failed'))).toBe('TypeError: fetch https://h/v1 failed');
    expect(describeError('https://u:p@h/?key=k')).toBe('https://h/');
  });
});

describe('redactValue', () => {
  it('drops secret-named keys at any depth, in objects and arrays', () => {
    const out = redactValue({
      model: 'm',
      apiKey: 'sk-1',
      extraBody: { reasoning_effort: 'low', api_key: 'sk-2', nested: [{ authToken: 't', keep: 1 }, { 'x-api-key': 'k' }] },
      defaultHeaders: { 'X-Custom': 'v' },
      headers: { Authorization: 'Bearer x' },
      fetchOptions: { credentials: 'include', mode: 'cors', cookie: 'c' },
      password: 'p',
      client_secret: 's',
      maxTokens: 10,
      maxOutputTokens: 20,
    });
    expect(out).toEqual({
      model: 'm',
      extraBody: { reasoning_effort: 'low', nested: [{ keep: 1 }, {}] },
      fetchOptions: { mode: 'cors' },
      maxTokens: 10,
      maxOutputTokens: 20,
    });
  });

  it('redacts URLs in every string, a URL object too', () => {
    expect(redactValue({ baseURL: 'https://u:p@host/v1?key=abc', list: ['see https://a:b@c.dev/x?y=1'], proxy: new URL('https://u:p@p.dev/?t=1') })).toEqual({
      baseURL: 'https://host/v1',
      list: ['see https://c.dev/x'],
      proxy: 'https://p.dev/',
    });
  });

  it('never throws: cycles, functions, symbols, class instances, bigints, throwing getters, depth', () => {
    const cyclic: Record<string, unknown> = { name: 'a' };
    cyclic.self = cyclic;
    cyclic.list = [cyclic, 1];
    const hostile = Object.defineProperty({ ok: 1 }, 'boom', {
      enumerable: true,
      get() {
        throw new Error('no');
      },
    });
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i < 100; i++) deep = (deep.next = {}) as Record<string, unknown>;
    class Client {
      key = 'sk-hidden';
    }
    const out = redactValue({
      cyclic,
      fetch: () => 1,
      sym: Symbol('s'),
      client: new Client(),
      blob: new Blob(['x']),
      map: new Map([['apiKey', 'k']]),
      big: 10n,
      when: new Date(0),
      hostile,
      root,
      fns: [() => 1, 2],
      nothing: null,
      undef: undefined,
    }) as Record<string, any>;
    expect(out.cyclic).toEqual({ name: 'a', self: '[circular]', list: ['[circular]', 1] });
    expect('fetch' in out || 'sym' in out).toBe(false);
    expect(out.client).toBe('[Client]');
    expect(out.blob).toBe('[Blob]');
    expect(out.map).toBe('[Map]');
    expect(out.big).toBe('10');
    expect(out.when).toBe('1970-01-01T00:00:00.000Z');
    expect(out.hostile).toEqual({ ok: 1 });
    expect(out.fns).toEqual([null, 2]);
    expect(out.nothing).toBeNull();
    expect(JSON.stringify(out)).toContain('[nested too deep]');
    expect(JSON.stringify(out)).not.toContain('sk-hidden');
    // What it returns can be stored: IndexedDB clones it.
    expect(() => structuredClone(out)).not.toThrow();
  });

  it("keeps a key like '__proto__' as data, polluting nothing", () => {
    const out = redactOptions(JSON.parse('{"__proto__":{"polluted":1},"a":1}') as object);
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.hasOwn(out, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('runConfig: the recorded run config', () => {
  it('keeps no secret of nested backend and environment options', () => {
    const options = resolveOptions({
      backend: 'openai',
      backendOptions: { model: 'gpt-5-nano', apiKey: 'sk-root', baseURL: 'https://u:p@host/v1?key=abc', headers: { 'OpenAI-Organization': 'org' }, extraBody: { api_key: 'sk-body', reasoning_effort: 'low' } },
      otherBackends: [{ backend: 'anthropic', backendOptions: { model: 'claude', apiKey: 'sk-other', baseURL: 'https://proxy.dev/anthropic?token=t' } }],
      environment: 'remote',
      environmentOptions: { proxyURL: 'https://bob:pw@proxy.example:8443/rlm?token=abc', token: 'bearer', onLog: () => undefined, nested: { secret: 's', list: [{ password: 'p' }] } },
    });
    const config = runConfig(options, 'gpt-5-nano', 0);
    expect(config.backendOptions).toEqual({ model: 'gpt-5-nano', baseURL: 'https://host/v1', extraBody: { reasoning_effort: 'low' } });
    expect(config.otherBackends).toEqual([{ backend: 'anthropic', backendOptions: { model: 'claude', baseURL: 'https://proxy.dev/anthropic' } }]);
    expect(config.environmentOptions).toEqual({ proxyURL: 'https://proxy.example:8443/rlm', nested: { list: [{}] } });
    expect(JSON.stringify(config)).not.toMatch(/sk-|bearer|abc|pw@|org/);
  });
});
