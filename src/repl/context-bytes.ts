/**
 * Turns a context into what crosses to the worker: UTF-8 bytes (transferred, not copied)
 * or a Blob (streamed into Python in slices). Text never crosses as a JS string: that
 * would mean a per-character conversion on the other side.
 */
import { ConfigurationError } from '../core/errors';
import type { ContextInput } from '../core/types';
import type { ContextKind } from '../protocol/worker';

export type EncodedContext = { kind: ContextKind; bytes: Uint8Array } | { kind: ContextKind; blob: Blob };

/**
 * UTF-8 encodes `text` into one buffer sized for ASCII first and grown only if needed:
 * `encodeInto` into a preallocated buffer is several times faster than `encode` for big
 * strings and avoids a second copy.
 */
export function encodeUTF8(text: string): Uint8Array {
  const encoder = new TextEncoder();
  let buffer = new Uint8Array(text.length + 16);
  let read = 0;
  let written = 0;
  for (;;) {
    const r = encoder.encodeInto(read === 0 ? text : text.slice(read), buffer.subarray(written));
    read += r.read;
    written += r.written;
    if (read >= text.length) break;
    // Non-ASCII text: at most 3 bytes per remaining UTF-16 unit.
    const grown = new Uint8Array(written + (text.length - read) * 3 + 16);
    grown.set(buffer.subarray(0, written));
    buffer = grown;
  }
  return buffer.subarray(0, written);
}

export function encodeContext(context: ContextInput): EncodedContext {
  if (typeof context === 'string') return { kind: 'text', bytes: encodeUTF8(context) };
  if (typeof Blob !== 'undefined' && context instanceof Blob) return { kind: 'text', blob: context };
  if (context instanceof ArrayBuffer) return { kind: 'text', bytes: new Uint8Array(context.slice(0)) };
  if (ArrayBuffer.isView(context)) {
    return { kind: 'text', bytes: new Uint8Array(context.buffer.slice(context.byteOffset, context.byteOffset + context.byteLength)) };
  }
  if (context !== null && typeof context === 'object') {
    let json: string | undefined;
    try {
      json = JSON.stringify(context);
    } catch (error) {
      throw new ConfigurationError(`The context could not be converted to JSON (${(error as Error).message}). Pass plain arrays and objects, or a string.`);
    }
    if (json === undefined) throw new ConfigurationError('The context could not be converted to JSON.');
    return { kind: 'json', bytes: encodeUTF8(json) };
  }
  throw new ConfigurationError(`Unsupported context type '${typeof context}': pass a string, an array, a plain object, a Blob/File or an ArrayBuffer.`);
}
