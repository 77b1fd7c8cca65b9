import { describe, expect, it } from 'vitest';
import { toAnthropicMessages } from '../../src/clients/anthropic';
import type { ChatMessage } from '../../src/core/types';

const sys = (content: string): ChatMessage => ({ role: 'system', content });
const user = (content: string): ChatMessage => ({ role: 'user', content });
const assistant = (content: string): ChatMessage => ({ role: 'assistant', content });

describe('toAnthropicMessages', () => {
  it('moves system messages to `system`', () => {
    const { system, messages } = toAnthropicMessages([sys('You are an RLM.'), user('question')], false);
    expect(system).toEqual([{ type: 'text', text: 'You are an RLM.' }]);
    expect(messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'question' }] }]);
  });

  it('keeps every system message, in order, wherever it stood', () => {
    const { system, messages } = toAnthropicMessages([sys('one'), user('q'), sys('two'), assistant('a')], false);
    expect(system.map((b) => b.text)).toEqual(['one', 'two']);
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant']);
  });

  it('has no system blocks when there is no system message', () => {
    expect(toAnthropicMessages([user('q')], true).system).toEqual([]);
  });

  it('keeps alternating messages as they are', () => {
    const { messages } = toAnthropicMessages([user('u1'), assistant('a1'), user('u2')], false);
    expect(messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'u1' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'a1' }] },
      { role: 'user', content: [{ type: 'text', text: 'u2' }] },
    ]);
  });

  it('merges consecutive messages of the same role into one message of several blocks', () => {
    const { messages } = toAnthropicMessages([sys('s'), user('metadata'), user('prologue'), assistant('a1'), assistant('a2'), user('u')], false);
    expect(messages).toEqual([
      { role: 'user', content: [{ type: 'text', text: 'metadata' }, { type: 'text', text: 'prologue' }] },
      { role: 'assistant', content: [{ type: 'text', text: 'a1' }, { type: 'text', text: 'a2' }] },
      { role: 'user', content: [{ type: 'text', text: 'u' }] },
    ]);
  });

  it('merges user messages that a system message stood between', () => {
    const { messages } = toAnthropicMessages([user('a'), sys('s'), user('b')], false);
    expect(messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }]);
  });

  it('starts with a user message even when the conversation starts with the assistant', () => {
    const { messages } = toAnthropicMessages([sys('s'), assistant('hello')], false);
    expect(messages[0]?.role).toBe('user');
    expect(messages[1]).toEqual({ role: 'assistant', content: [{ type: 'text', text: 'hello' }] });
  });

  it('adds no cache_control when caching is off', () => {
    const { system, messages } = toAnthropicMessages([sys('s'), user('u'), assistant('a'), user('v')], false);
    const blocks = [...system, ...messages.flatMap((m) => m.content)];
    expect(blocks.some((b) => 'cache_control' in b)).toBe(false);
  });

  it('marks the system prompt and the newest block for caching, and nothing else', () => {
    const { system, messages } = toAnthropicMessages([sys('s'), user('meta'), assistant('a1'), user('out1'), user('turn 2')], true);
    expect(system[0]?.cache_control).toEqual({ type: 'ephemeral' });
    const blocks = messages.flatMap((m) => m.content);
    const marked = blocks.filter((b) => b.cache_control);
    expect(marked).toHaveLength(1);
    expect(marked[0]?.text).toBe('turn 2');
    expect(blocks[blocks.length - 1]?.cache_control).toEqual({ type: 'ephemeral' });
  });

  it('marks only the last of several system blocks (at most 4 breakpoints are allowed)', () => {
    const { system } = toAnthropicMessages([sys('one'), sys('two'), user('u')], true);
    expect(system[0]?.cache_control).toBeUndefined();
    expect(system[1]?.cache_control).toEqual({ type: 'ephemeral' });
  });

  it('does not change the input messages', () => {
    const input = [sys('s'), user('u'), user('v')];
    const copy = structuredClone(input);
    toAnthropicMessages(input, true);
    expect(input).toEqual(copy);
  });

  it('gives a byte-stable prefix as the conversation grows', () => {
    const turn1 = [sys('s'), user('meta'), assistant('a1'), user('out1')];
    const turn2 = [...turn1, assistant('a2'), user('out2')];
    const strip = (m: ReturnType<typeof toAnthropicMessages>['messages']) => m.map((x) => ({ ...x, content: x.content.map((b) => b.text) }));
    const one = strip(toAnthropicMessages(turn1, true).messages);
    const two = strip(toAnthropicMessages(turn2, true).messages);
    expect(two.slice(0, one.length)).toEqual(one);
  });
});

describe('toAnthropicMessages after an empty reply', () => {
  it('never sends an empty text block (the API rejects them) when a reply was empty', () => {
    const input: ChatMessage[] = [
      { role: 'system', content: 's' },
      { role: 'user', content: 'metadata' },
      { role: 'assistant', content: '' },
      { role: 'user', content: 'No ```repl block was found...' },
    ];
    const { system, messages } = toAnthropicMessages(input, true);
    for (const block of [...system, ...messages.flatMap((m) => m.content)]) expect(block.text.trim()).not.toBe('');
    // Alternation is kept: the API requires user/assistant turns to alternate.
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
  });
});
