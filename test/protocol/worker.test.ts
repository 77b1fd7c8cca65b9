/**
 * The reply codec of the page↔worker protocol: the page encodes every reply once, the same
 * bytes on both bridges (returned through Comlink on JSPI, written into shared memory on
 * SAB), and the worker reads back from shared memory exactly what the page encoded. Python
 * decodes them (src/python/pyodide_glue.py); `decode` here does what it does.
 */
import { describe, expect, it } from 'vitest';
import {
  armSharedBuffer,
  encodeReply,
  FORMAT_RESULTS,
  INITIAL_SHARED_BYTES,
  readSharedReply,
  writeSharedReply,
  type HostReply,
  type SharedPayload,
} from '../../src/protocol/worker';

/** What Python's _rlm_decode does with a payload. */
function decode(bytes: SharedPayload): HostReply {
  const decoder = new TextDecoder();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getInt32(0, true) !== FORMAT_RESULTS) return JSON.parse(decoder.decode(bytes.subarray(4))) as HostReply;
  const count = view.getInt32(4, true);
  const results: string[] = [];
  let pos = 8 + 4 * count;
  for (let i = 0; i < count; i++) {
    const n = view.getInt32(8 + 4 * i, true);
    results.push(decoder.decode(bytes.subarray(pos, pos + n)));
    pos += n;
  }
  expect(pos).toBe(bytes.byteLength);
  return { results };
}

/** Page writes the reply of call `seq`; the worker reads it, resuming with a larger buffer if needed. */
function roundTrip(reply: HostReply, bufferBytes = INITIAL_SHARED_BYTES, seq = 7): { reply: HostReply; payload: SharedPayload; resumed: number } {
  let buffer = new SharedArrayBuffer(bufferBytes);
  armSharedBuffer(buffer, seq);
  const payload = encodeReply(reply);
  let written = writeSharedReply(buffer, seq, payload);
  let resumed = 0;
  for (;;) {
    const read = readSharedReply(buffer, 20);
    if (read.status === 'ready') return { reply: decode(read.reply), payload: read.reply, resumed };
    if (read.status !== 'too-small') throw new Error(`unexpected ${read.status} after ${written}`);
    expect(written).toBe('too-small');
    resumed++;
    buffer = read.buffer;
    armSharedBuffer(buffer, seq);
    written = writeSharedReply(buffer, seq, payload);
  }
}

const REPLIES: [string, HostReply][] = [
  ['no results', { results: [] }],
  ['one empty result', { results: [''] }],
  ['short results', { results: ['a', 'bc', '', 'def'] }],
  ['a 3 MB result (larger than the first buffer)', { results: ['x'.repeat(3_000_000)] }],
  ['1,000 results', { results: Array.from({ length: 1000 }, (_, i) => `result ${i}`) }],
  ['unicode: accents, CJK, emoji, a NUL', { results: ['naïve 日本 🙂', 'é'.repeat(700_000), 'a\u0000b'] }],
  ['a tool value', { value: { rows: [1, null, 'three'], nested: { ok: true } } }],
  ['a null tool value', { value: null }],
  ['an error', { error: 'LMError: quota exceeded — try later' }],
];

describe('shared reply codec', () => {
  for (const [name, reply] of REPLIES) {
    it(`round-trips ${name}`, () => {
      const out = roundTrip(reply);
      expect(out.reply).toEqual(reply);
      // The SAB path hands Python exactly what the JSPI path does.
      const direct = encodeReply(reply);
      expect(decode(direct)).toEqual(reply);
      expect(Buffer.compare(out.payload, direct)).toBe(0);
    });
  }

  it('a reply larger than the buffer is written again after the worker resumes with a larger one', () => {
    const reply = { results: ['y'.repeat(5000), 'z'] };
    const out = roundTrip(reply, 64);
    expect(out.resumed).toBe(1);
    expect(out.reply).toEqual(reply);
    const json = roundTrip({ value: 'w'.repeat(10_000) }, 32);
    expect(json.resumed).toBe(1);
    expect(json.reply).toEqual({ value: 'w'.repeat(10_000) });
  });

  it('a too-small answer grows the buffer at least twofold, and enough for the payload', () => {
    const buffer = new SharedArrayBuffer(1024);
    armSharedBuffer(buffer, 1);
    expect(writeSharedReply(buffer, 1, encodeReply({ results: ['q'.repeat(100_000)] }))).toBe('too-small');
    const read = readSharedReply(buffer);
    if (read.status !== 'too-small') throw new Error(read.status);
    expect(read.buffer.byteLength).toBeGreaterThanOrEqual(100_000 + 4 + 4 + 16);
    const small = new SharedArrayBuffer(1024);
    armSharedBuffer(small, 2);
    expect(writeSharedReply(small, 2, encodeReply({ results: ['q'.repeat(1500)] }))).toBe('too-small');
    const grown = readSharedReply(small);
    expect(grown.status === 'too-small' && grown.buffer.byteLength).toBeGreaterThanOrEqual(2048);
  });

  it('a late reply to an abandoned call (stale sequence number) is not written', () => {
    const buffer = new SharedArrayBuffer(1024);
    armSharedBuffer(buffer, 2);
    expect(writeSharedReply(buffer, 1, encodeReply({ results: ['late'] }))).toBe('stale');
    expect(readSharedReply(buffer)).toEqual({ status: 'pending' });
    expect(writeSharedReply(buffer, 2, encodeReply({ results: ['current'] }))).toBe('written');
    const read = readSharedReply(buffer);
    expect(read.status === 'ready' && decode(read.reply)).toEqual({ results: ['current'] });
  });

  it('a blocked read checks for interrupts between slices, and an interrupt ends the wait', () => {
    const buffer = new SharedArrayBuffer(1024);
    armSharedBuffer(buffer, 3);
    let slices = 0;
    expect(() =>
      readSharedReply(buffer, 5, () => {
        if (++slices === 3) throw new Error('KeyboardInterrupt');
      }),
    ).toThrow('KeyboardInterrupt');
    expect(slices).toBe(3);
  });

  it('grows its buffer for text that is not ASCII, wherever it comes in a batch', () => {
    const byteLengths = (payload: SharedPayload) => {
      const view = new DataView(payload.buffer, payload.byteOffset);
      return Array.from({ length: view.getInt32(4, true) }, (_, i) => view.getInt32(8 + 4 * i, true));
    };
    const reply = { results: ['ascii first', '🙂'.repeat(10_000), 'ü'] };
    const payload = encodeReply(reply);
    expect(byteLengths(payload)).toEqual([11, 40_000, 2]);
    expect(decode(payload)).toEqual(reply);
    // Multi-byte text last, after a long ASCII run that fills the first buffer exactly.
    const last = { results: ['a'.repeat(5000), 'é'.repeat(3000), '日本'] };
    expect(decode(encodeReply(last))).toEqual(last);
    expect(byteLengths(encodeReply(last))).toEqual([5000, 6000, 6]);
  });

  it('encodes a lone surrogate as U+FFFD, as TextEncoder does', () => {
    const payload = encodeReply({ results: ['a\ud800b'] });
    expect(decode(payload)).toEqual({ results: ['a\ufffdb'] });
  });
});
