/**
 * The one check every prompt passes before an LM client sends it: a string, or a list of
 * `{ role, content }` messages whose content is a string. Whatever the prompt came from (the
 * loop, a Python `llm_query`, a remote sandbox), the SDK then sees only fresh objects holding
 * plain text, never content parts, getters or objects from another realm.
 */
import { InvalidPromptError } from './errors';
import type { ChatMessage, ChatRole } from './types';

const ROLES: ReadonlySet<string> = new Set<ChatRole>(['system', 'user', 'assistant']);

/** Messages of one request at most (a conversation, not a data channel). */
const MAX_MESSAGES = 100_000;

/**
 * The prompt as messages the SDKs may send: a string becomes one user message; a list is
 * checked item by item and copied. Only own data properties are read, so an accessor or a
 * property inherited from a polluted `Object.prototype` never stands in for `role` or
 * `content`. Throws `InvalidPromptError` (saying which item and why) for anything else.
 *
 * @example
 * checkedMessages('Summarize this'); // [{ role: 'user', content: 'Summarize this' }]
 * checkedMessages([{ role: 'user', content: [{ type: 'image_url' }] }]); // throws InvalidPromptError
 */
export function checkedMessages(prompt: unknown): ChatMessage[] {
  if (typeof prompt === 'string') return [{ role: 'user', content: String(prompt) }];
  if (!Array.isArray(prompt)) {
    throw new InvalidPromptError(`A prompt must be a string or a list of {role, content} messages, not ${describe(prompt)}.`);
  }
  if (prompt.length > MAX_MESSAGES) throw new InvalidPromptError(`A prompt holds at most ${MAX_MESSAGES} messages; this one has ${prompt.length}.`);
  const out: ChatMessage[] = [];
  for (let i = 0; i < prompt.length; i++) {
    const item: unknown = ownValue(prompt, String(i));
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      throw new InvalidPromptError(`Prompt message ${i} must be a {role, content} object, not ${describe(item)}.`);
    }
    const role = ownValue(item, 'role');
    const content = ownValue(item, 'content');
    if (typeof role !== 'string' || !ROLES.has(role)) {
      throw new InvalidPromptError(`Prompt message ${i} has role ${describe(role)}; use 'system', 'user' or 'assistant'.`);
    }
    if (typeof content !== 'string') {
      throw new InvalidPromptError(`Prompt message ${i} has content ${describe(content)}; content must be a string (content parts, images and files are not sent).`);
    }
    out.push({ role: role as ChatRole, content: String(content) });
  }
  return out;
}

/** An own data property's value; undefined for an accessor, an inherited or a missing one. */
export function ownValue(target: object, key: string): unknown {
  const descriptor = Object.getOwnPropertyDescriptor(target, key);
  return descriptor && Object.hasOwn(descriptor, 'value') ? descriptor.value : undefined;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return `'${value.slice(0, 40)}'`;
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
