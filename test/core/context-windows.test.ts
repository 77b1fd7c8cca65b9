import { describe, expect, it } from 'vitest';
import { CONTEXT_WINDOWS, contextWindowFor, DEFAULT_CONTEXT_WINDOW, estimateTokens } from '../../src/core/context-windows';

describe('contextWindowFor', () => {
  it('matches a model name by prefix', () => {
    expect(contextWindowFor('gpt-5-nano')).toBe(CONTEXT_WINDOWS['gpt-5']);
    expect(contextWindowFor('claude-sonnet-4-5')).toBe(200_000);
  });

  it('prefers the longest matching prefix', () => {
    // 'gpt-4.1' and 'gpt-4' both match; the longer one wins.
    expect(contextWindowFor('gpt-4.1-mini')).toBe(1_047_576);
    expect(contextWindowFor('gpt-4-turbo')).toBe(128_000);
  });

  it('ignores case and a provider prefix before a slash', () => {
    expect(contextWindowFor('openai/GPT-5-mini')).toBe(CONTEXT_WINDOWS['gpt-5']);
    expect(contextWindowFor('google/gemini-2.5-pro')).toBe(1_048_576);
  });

  it('falls back to the default for unknown models', () => {
    expect(contextWindowFor('my-local-model')).toBe(DEFAULT_CONTEXT_WINDOW);
    expect(contextWindowFor('')).toBe(DEFAULT_CONTEXT_WINDOW);
  });

  it('takes overrides over the built-in table, and new prefixes', () => {
    expect(contextWindowFor('gpt-5-nano', { 'gpt-5': 1000 })).toBe(1000);
    expect(contextWindowFor('gpt-5-nano', { 'gpt-5-nano': 500 })).toBe(500);
    expect(contextWindowFor('my-local-model', { 'my-local': 32_768 })).toBe(32_768);
  });

  it('does not change the built-in table when overridden', () => {
    contextWindowFor('gpt-5', { 'gpt-5': 1 });
    expect(contextWindowFor('gpt-5')).toBe(272_000);
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
