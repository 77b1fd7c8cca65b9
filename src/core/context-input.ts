/** What the loop can tell about a context before it reaches Python. */
import { ConfigurationError, ContextReadError } from './errors';
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
  if (typeof Blob !== 'undefined' && context instanceof Blob) {
    try {
      return await context.text();
    } catch (error) {
      throw asContextReadError(error, context);
    }
  }
  if (context instanceof ArrayBuffer || ArrayBuffer.isView(context)) return new TextDecoder().decode(context);
  return JSON.stringify(context);
}

/**
 * Rejects with a {@link ContextReadError} when an empty Blob is in fact a File that can no
 * longer be read: Chromium takes a File's size from disk when first asked, and a File deleted
 * before then reports 0 bytes.
 */
export async function checkEmptyBlob(context: ContextInput): Promise<void> {
  if (typeof Blob === 'undefined' || !(context instanceof Blob) || context.size > 0) return;
  try {
    // Reading the whole (claimed empty) Blob makes the browser look at the file itself.
    await context.arrayBuffer();
  } catch (error) {
    throw asContextReadError(error, context);
  }
}

/**
 * `error` as a {@link ContextReadError} when it is the browser failing to read `blob` (a
 * DOMException NotReadableError or NotFoundError, which cross workers and frames as plain
 * errors with that name); any other error unchanged.
 */
export function asContextReadError(error: unknown, blob: Blob): unknown {
  const name = (error as { name?: unknown } | null)?.name;
  if (name !== 'NotReadableError' && name !== 'NotFoundError') return error;
  const fileName = typeof File !== 'undefined' && blob instanceof File ? blob.name : undefined;
  const what = fileName === undefined ? `The context Blob (${blob.size} bytes)` : `The context File '${fileName}' (${blob.size} bytes)`;
  // Chromium: NotFoundError when the file is gone, NotReadableError when it changed or a Blob was not kept.
  const why =
    name === 'NotFoundError'
      ? 'it is no longer on disk: it was moved or deleted after it was picked. Pick it again and start the run again.'
      : 'a File is read from disk only when the run loads it, and this one was changed (or its permission lost) after it was picked: pick it again and start the run again. ' +
        'A Blob built in memory can be more than the browser keeps for Blobs: build the context from a File on disk, or pass a smaller one.';
  return new ContextReadError(`${what} could not be read by the browser (${name}): ${why}`, fileName, blob.size, { cause: error });
}
