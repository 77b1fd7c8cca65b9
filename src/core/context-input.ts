/** What the loop can tell about a context before it reaches Python. */
import { ConfigurationError } from './errors';
import type { ContextDescription, ContextInput } from './types';

/** Type and size of a context as the root model's metadata message states them. */
export function describeInput(context: ContextInput): ContextDescription & { bytes?: number | undefined } {
  if (typeof context === 'string') return { type: 'str', length: context.length };
  if (typeof Blob !== 'undefined' && context instanceof Blob) return { type: 'str', length: context.size, bytes: context.size };
  if (context instanceof ArrayBuffer) return { type: 'str', length: context.byteLength, bytes: context.byteLength };
  if (ArrayBuffer.isView(context)) return { type: 'str', length: context.byteLength, bytes: context.byteLength };
  if (Array.isArray(context)) return { type: 'list', length: context.length };
  if (context !== null && typeof context === 'object') return { type: 'dict', length: Object.keys(context).length };
  throw new ConfigurationError(`Unsupported context type '${typeof context}': pass a string, an array, a plain object, a Blob/File or an ArrayBuffer.`);
}

export function isEmptyContext(context: ContextInput): boolean {
  if (typeof context === 'string') return context.length === 0;
  if (Array.isArray(context)) return context.length === 0;
  if (typeof Blob !== 'undefined' && context instanceof Blob) return context.size === 0;
  if (context instanceof ArrayBuffer || ArrayBuffer.isView(context)) return context.byteLength === 0;
  if (context !== null && typeof context === 'object') return Object.keys(context).length === 0;
  return context === null || context === undefined;
}

/** A context as prompt text, for plain LM calls at the depth limit. */
export async function contextAsText(context: ContextInput): Promise<string> {
  if (typeof context === 'string') return context;
  if (typeof Blob !== 'undefined' && context instanceof Blob) return context.text();
  if (context instanceof ArrayBuffer || ArrayBuffer.isView(context)) return new TextDecoder().decode(context);
  return JSON.stringify(context);
}
