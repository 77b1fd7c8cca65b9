/**
 * freezeIntrinsics in a realm of its own (vitest runs each file in its own worker, so this
 * file's freeze reaches no other test): the pollution of issue 22 fails, and the code that
 * assigns properties the frozen prototypes hold — both SDKs' error helpers set `name` on an
 * Error, class hierarchies set `constructor`, objects get their own `toString` — still works.
 */
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { beforeAll, describe, expect, it } from 'vitest';
import { freezeIntrinsics } from '../../ui/freeze-intrinsics';

beforeAll(() => {
  freezeIntrinsics();
});

describe('freezeIntrinsics', () => {
  it('freezes the prototypes and the constructors', () => {
    for (const target of [Object.prototype, Function.prototype, Array.prototype, Promise.prototype, Error.prototype, Object, Reflect, URL.prototype, Headers.prototype]) {
      expect(Object.isFrozen(target)).toBe(true);
    }
    expect(Object.isFrozen(Object.getPrototypeOf([][Symbol.iterator]()))).toBe(true);
    freezeIntrinsics(); // a second call does nothing
  });

  it('refuses what the bridge let Python write: a value, a setter, a replaced method', () => {
    expect(Reflect.set(Object.prototype, 'defaultBaseURL', 'http://attacker')).toBe(false);
    expect(() => Object.defineProperty(Object.prototype, 'apiKey', { set() {} })).toThrow(TypeError);
    expect(() => {
      (Object.prototype as Record<string, unknown>).toString = () => 'x';
    }).toThrow(TypeError);
    expect(() => {
      Function.prototype.call = () => undefined;
    }).toThrow(TypeError);
    expect(({} as Record<string, unknown>).defaultBaseURL).toBeUndefined();
    expect(Object.prototype.toString.call([])).toBe('[object Array]');
  });

  it('still lets objects override what their prototypes hold (the override mistake is tamed)', () => {
    const error = new Error('boom');
    error.name = 'CustomError';
    expect(String(error)).toBe('CustomError: boom');
    const plain: Record<string, unknown> = {};
    plain.toString = () => 'mine';
    expect(String(plain)).toBe('mine');
    function Base(this: object) {}
    function Derived(this: object) {}
    Derived.prototype = Object.create(Base.prototype as object);
    Derived.prototype.constructor = Derived;
    expect(new (Derived as unknown as new () => object)().constructor).toBe(Derived);
  });

  it('leaves both SDKs working: clients build, errors are made as before', async () => {
    const openai = new OpenAI({ apiKey: 'k', dangerouslyAllowBrowser: true, baseURL: 'http://127.0.0.1:9/v1', maxRetries: 0, fetch: () => Promise.reject(new Error('offline')) });
    await expect(openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(OpenAI.APIConnectionError);
    const anthropic = new Anthropic({ apiKey: 'k', dangerouslyAllowBrowser: true, baseURL: 'http://127.0.0.1:9', maxRetries: 0, fetch: () => Promise.reject({ name: 'DOMException', message: 'thrown as a plain object' }) });
    await expect(anthropic.messages.create({ model: 'm', max_tokens: 1, messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(Anthropic.APIConnectionError);
    const status = OpenAI.APIError.generate(401, { error: { message: 'bad key' } }, 'bad key', new Headers());
    expect(status).toBeInstanceOf(OpenAI.AuthenticationError);
  });
});
