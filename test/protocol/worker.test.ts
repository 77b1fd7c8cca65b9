/**
 * The SharedArrayBuffer reply codec of the page↔worker protocol: what the page writes, the
 * worker reads back unchanged — and it agrees with the JSPI path's packing, since Python
 * unpacks both the same way (src/python/pyodide_glue.py).
 */
import { describe, expect, it } from 'vitest';
import {
  armSharedBuffer,
  encodeSharedReply,
  INITIAL_SHARED_BYTES,
  packReply,
  readSharedReply,
  writeSharedReply,
  type HostReply,
  type PackedReply,
} from '../../src/protocol/worker';

/** What Python's _rlm_unpack does with a packed reply. */
function unpack(packed: PackedReply): HostReply {
  if (packed.kind === 'json') return JSON.parse(packed.json) as HostReply;
  const decoder = new TextDecoder();
  const results: string[] = [];
  let pos = 0;
  for (const n of packed.lengths) {
    results.push(decoder.decode(packed.bytes.subarray(pos, pos + n)));
    pos += n;
  }
  return { results };
}

/** Page writes the reply of call `seq`; the worker reads it, resuming with a larger buffer if needed. */
function roundTrip(reply: HostReply, bufferBytes = INITIAL_SHARED_BYTES, seq = 7): { reply: HostReply; packed: PackedReply; resumed: number } {
  let buffer = new SharedArrayBuffer(bufferBytes);
  armSharedBuffer(buffer, seq);
  const payload = encodeSharedReply(reply);
  let written = writeSharedReply(buffer, seq, payload);
  let resumed = 0;
  for (;;) {
    const read = readSharedReply(buffer, 20);
    if (read.status === 'ready') return { reply: unpack(read.reply), packed: read.reply, resumed };
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
      expect(unpack(packReply(reply))).toEqual(reply);
      if (out.packed.kind === 'results') {
        const packed = packReply(reply) as Extract<PackedReply, { kind: 'results' }>;
        expect(out.packed.lengths).toEqual(packed.lengths);
        expect(Buffer.compare(out.packed.bytes, packed.bytes)).toBe(0);
      }
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
    expect(writeSharedReply(buffer, 1, encodeSharedReply({ results: ['q'.repeat(100_000)] }))).toBe('too-small');
    const read = readSharedReply(buffer);
    if (read.status !== 'too-small') throw new Error(read.status);
    expect(read.buffer.byteLength).toBeGreaterThanOrEqual(100_000 + 4 + 4 + 16);
    const small = new SharedArrayBuffer(1024);
    armSharedBuffer(small, 2);
    expect(writeSharedReply(small, 2, encodeSharedReply({ results: ['q'.repeat(1500)] }))).toBe('too-small');
    const grown = readSharedReply(small);
    expect(grown.status === 'too-small' && grown.buffer.byteLength).toBeGreaterThanOrEqual(2048);
  });

  it('a late reply to an abandoned call (stale sequence number) is not written', () => {
    const buffer = new SharedArrayBuffer(1024);
    armSharedBuffer(buffer, 2);
    expect(writeSharedReply(buffer, 1, encodeSharedReply({ results: ['late'] }))).toBe('stale');
    expect(readSharedReply(buffer)).toEqual({ status: 'pending' });
    expect(writeSharedReply(buffer, 2, encodeSharedReply({ results: ['current'] }))).toBe('written');
    const read = readSharedReply(buffer);
    expect(read.status === 'ready' && unpack(read.reply)).toEqual({ results: ['current'] });
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

  it('packing for the JSPI path grows its buffer for text that is not ASCII', () => {
    const reply = { results: ['ascii first', '🙂'.repeat(10_000), 'ü'] };
    const packed = packReply(reply);
    expect(packed.kind === 'results' && packed.lengths).toEqual([11, 40_000, 2]);
    expect(unpack(packed)).toEqual(reply);
  });
});
