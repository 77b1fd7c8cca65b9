import { describe, expect, it } from 'vitest';
import { InvalidPromptError } from '../../src/core/errors';
import { checkedMessages } from '../../src/core/messages';

describe('checkedMessages', () => {
  it('makes a string one user message', () => {
    expect(checkedMessages('Summarize')).toEqual([{ role: 'user', content: 'Summarize' }]);
  });

  it('copies a list of messages with string content, as fresh objects', () => {
    const input = [
      { role: 'system', content: 's' },
      { role: 'user', content: 'u', extra: 'dropped' },
      { role: 'assistant', content: '' },
    ];
    const out = checkedMessages(input);
    expect(out).toEqual([
      { role: 'system', content: 's' },
      { role: 'user', content: 'u' },
      { role: 'assistant', content: '' },
    ]);
    expect(out[1]).not.toBe(input[1]);
  });

  it.each([
    ['a number', 42, /not a number/],
    ['null', null, /not null/],
    ['an object', { role: 'user', content: 'x' }, /not an object/],
    ['content parts', [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://x' } }] }], /message 0 has content a list/],
    ['a content object', [{ role: 'user', content: { toString: () => 'x' } }], /content an object/],
    ['an unknown role', [{ role: 'tool', content: 'x' }], /role 'tool'/],
    ['a string item', ['hello'], /message 0 must be a \{role, content\} object/],
    ['a missing content', [{ role: 'user' }], /has content nothing/],
  ])('refuses %s with InvalidPromptError', (_what, prompt, message) => {
    expect(() => checkedMessages(prompt)).toThrow(InvalidPromptError);
    expect(() => checkedMessages(prompt)).toThrow(message);
  });

  it('reads only own data properties: getters and inherited fields do not count', () => {
    let called = false;
    const getter = {
      role: 'user',
      get content() {
        called = true;
        return 'x';
      },
    };
    expect(() => checkedMessages([getter])).toThrow(InvalidPromptError);
    expect(called).toBe(false);
    const inherited = Object.create({ role: 'user', content: 'x' }) as object;
    expect(() => checkedMessages([inherited])).toThrow(InvalidPromptError);
    Object.defineProperty(Object.prototype, 'content', { value: 'polluted', configurable: true, writable: true });
    try {
      expect(() => checkedMessages([{ role: 'user' }])).toThrow(InvalidPromptError);
    } finally {
      delete (Object.prototype as Record<string, unknown>).content;
    }
  });

  it('refuses holes in a list', () => {
    // eslint-disable-next-line no-sparse-arrays
    expect(() => checkedMessages([{ role: 'user', content: 'a' }, , { role: 'user', content: 'b' }])).toThrow(/message 1/);
  });
});
