import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../src/core/errors';
import type { ContextInput } from '../../src/core/types';
import { encodeContext, encodeUTF8 } from '../../src/repl/context-bytes';

const reference = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder('utf-8', { fatal: true }).decode(bytes);

/** Byte equality without an element-by-element deep compare (slow for big arrays). */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength).toBe(expected.byteLength);
  expect(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength).equals(Buffer.from(expected))).toBe(true);
}

function bytesOf(encoded: ReturnType<typeof encodeContext>): Uint8Array {
  if (!('bytes' in encoded)) throw new Error('expected bytes, got a blob');
  return encoded.bytes;
}

describe('encodeUTF8', () => {
  it('encodes the empty string to no bytes', () => {
    expect(encodeUTF8('')).toEqual(new Uint8Array(0));
  });

  it('encodes ASCII one byte a character', () => {
    const text = 'The magic number is 42.\n'.repeat(1000);
    const out = encodeUTF8(text);
    expect(out.byteLength).toBe(text.length);
    expectSameBytes(out, reference(text));
  });

  it.each([
    ['Latin-1 (2 bytes)', 'café naïve résumé'],
    ['CJK (3 bytes)', '日本語のテキスト'],
    ['emoji (surrogate pairs, 4 bytes)', '😀🎉👍🏽'],
    ['mixed, non-ASCII at the very end', `${'a'.repeat(100)}€`],
    ['mixed, non-ASCII at the very start', `€${'a'.repeat(100)}`],
    ['ZWJ sequence', '👩‍👩‍👧‍👦 family'],
  ])('matches TextEncoder for %s', (_label, text) => {
    const out = encodeUTF8(text);
    expect(out).toEqual(reference(text));
    expect(decode(out)).toBe(text);
  });

  it('grows the buffer as often as needed for long non-ASCII text', () => {
    const text = `${'x'.repeat(5000)}${'€😀ü'.repeat(5000)}${'y'.repeat(5000)}`;
    const out = encodeUTF8(text);
    expectSameBytes(out, reference(text));
    expect(decode(out)).toBe(text);
  });

  it('encodes a text that is all 4-byte characters', () => {
    const text = '𝄞'.repeat(10_000);
    expectSameBytes(encodeUTF8(text), reference(text));
  });

  it('replaces lone surrogates with U+FFFD as TextEncoder does', () => {
    for (const text of ['a\uD800b', 'end\uD83D', '\uDC00start', `${'z'.repeat(40)}\uD800`]) {
      const out = encodeUTF8(text);
      expect(out).toEqual(reference(text));
      expect(decode(out)).toContain('\uFFFD');
    }
  });
});

describe('encodeContext', () => {
  it('sends a string as UTF-8 text', () => {
    const encoded = encodeContext('héllo');
    expect(encoded.kind).toBe('text');
    expect(decode(bytesOf(encoded))).toBe('héllo');
  });

  it('sends arrays and objects as JSON', () => {
    const list = encodeContext(['a', 1, { b: null }]);
    expect(list.kind).toBe('json');
    expect(JSON.parse(decode(bytesOf(list)))).toEqual(['a', 1, { b: null }]);

    const dict = encodeContext({ title: 'Ünïcode', n: [1, 2] });
    expect(dict.kind).toBe('json');
    expect(JSON.parse(decode(bytesOf(dict)))).toEqual({ title: 'Ünïcode', n: [1, 2] });
  });

  it('passes a Blob through without reading it', () => {
    const blob = new Blob(['file text']);
    const encoded = encodeContext(blob);
    expect(encoded.kind).toBe('text');
    expect('blob' in encoded && encoded.blob).toBe(blob);
  });

  it('copies an ArrayBuffer as text bytes, leaving the caller’s buffer usable', () => {
    const buffer = reference('raw bytes').buffer as ArrayBuffer;
    const encoded = encodeContext(buffer);
    expect(encoded.kind).toBe('text');
    const bytes = bytesOf(encoded);
    expect(decode(bytes)).toBe('raw bytes');
    expect(bytes.buffer).not.toBe(buffer);
  });

  it('takes exactly the viewed bytes of a typed-array view', () => {
    const whole = reference('0123456789');
    const view = whole.subarray(3, 7);
    const encoded = encodeContext(view);
    expect(encoded.kind).toBe('text');
    const bytes = bytesOf(encoded);
    expect(decode(bytes)).toBe('3456');
    // A copy of just the view: transferring it must not detach the caller's buffer.
    expect(bytes.buffer.byteLength).toBe(4);
    expect(bytes.buffer).not.toBe(whole.buffer);
  });

  it('takes the viewed bytes of a DataView and of a wider typed array', () => {
    const whole = reference('abcdefgh');
    const dv = new DataView(whole.buffer, 2, 3);
    expect(decode(bytesOf(encodeContext(dv)))).toBe('cde');
    const u16 = new Uint16Array(whole.buffer, 2, 2);
    expect(decode(bytesOf(encodeContext(u16)))).toBe('cdef');
  });

  it('rejects objects JSON cannot carry with a ConfigurationError', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => encodeContext(cyclic)).toThrow(ConfigurationError);
    expect(() => encodeContext({ n: 1n } as unknown as ContextInput)).toThrow(/JSON/);
  });

  it('rejects numbers, booleans and undefined with a ConfigurationError', () => {
    for (const bad of [42, true, undefined, null]) {
      expect(() => encodeContext(bad as unknown as ContextInput)).toThrow(ConfigurationError);
    }
  });
});
