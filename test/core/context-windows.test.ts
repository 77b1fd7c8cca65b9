import { describe, expect, it } from 'vitest';
import { contextWindowFor, DEFAULT_CONTEXT_WINDOW, estimateTokens } from '../../src/core/context-windows';

describe('contextWindowFor', () => {
  it("uses the client's figure when no override matches", () => {
    expect(contextWindowFor('gpt-5-nano', undefined, 400_000)).toBe(400_000);
    expect(contextWindowFor('gpt-5-nano', { 'claude': 1 }, 400_000)).toBe(400_000);
  });

  it('falls back to the default when neither knows the model', () => {
    expect(contextWindowFor('my-local-model')).toBe(DEFAULT_CONTEXT_WINDOW);
    expect(contextWindowFor('')).toBe(DEFAULT_CONTEXT_WINDOW);
  });

  it("takes an override over the client's figure, the longest matching key first", () => {
    expect(contextWindowFor('gpt-5-nano', { 'gpt-5': 1000 }, 400_000)).toBe(1000);
    expect(contextWindowFor('gpt-5-nano', { 'gpt-5': 1000, 'gpt-5-nano': 500 })).toBe(500);
    expect(contextWindowFor('my-local-model', { 'my-local': 32_768 })).toBe(32_768);
  });

  it('ignores case and a provider prefix before a slash', () => {
    expect(contextWindowFor('openai/GPT-5-mini', { 'gpt-5-mini': 7 })).toBe(7);
  });
});

describe('estimateTokens', () => {
  it('is about four characters a token plus three per message', () => {
    expect(estimateTokens([])).toBe(0);
    expect(estimateTokens([{ content: '' }])).toBe(3);
    expect(estimateTokens([{ content: 'abcd' }, { content: 'abcde' }])).toBe(Math.ceil(9 / 4) + 6);
  });

  it('grows with the conversation', () => {
    const short = estimateTokens([{ content: 'x'.repeat(100) }]);
    const long = estimateTokens([{ content: 'x'.repeat(100) }, { content: 'y'.repeat(400) }]);
    expect(long).toBeGreaterThan(short);
  });
});
