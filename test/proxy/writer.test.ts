/// <reference types="node" />
/** The ordered writer: pieces never split a character, writes never overlap or reorder. */
import { expect, test } from 'vitest';
import { orderedWriter, splitUtf8 } from '../../src/proxy/writer.js';

test('splitUtf8 cuts at character boundaries, within the limit, and loses nothing', () => {
  const text = `a${'é€😀'.repeat(1000)}z`;
  for (const max of [4, 5, 7, 1000]) {
    const pieces = splitUtf8(text, max);
    expect(pieces.join('')).toBe(text);
    for (const piece of pieces) {
      expect(Buffer.byteLength(piece)).toBeLessThanOrEqual(max);
      expect(piece).not.toContain('\ufffd');
    }
  }
  expect(splitUtf8('short', 8)).toEqual(['short']);
  expect(() => orderedWriter(async () => undefined, 3)).toThrow(RangeError);
});

test('writes go one at a time in call order, even when later ones would finish first', async () => {
  const received: string[] = [];
  let inFlight = 0;
  let most = 0;
  // A service whose small writes answer faster than large ones: overlapping calls would reorder.
  const write = orderedWriter(async (text) => {
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise((ok) => setTimeout(ok, text.length));
    received.push(text);
    inFlight--;
  }, 10);
  await Promise.all([write('x'.repeat(25)), write('y'), write('zz')]);
  expect(received).toEqual(['xxxxxxxxxx', 'xxxxxxxxxx', 'xxxxx', 'y', 'zz']);
  expect(most).toBe(1);
});

test('a failed write fails only itself', async () => {
  const write = orderedWriter(async (text) => {
    if (text === 'bad') throw new Error('stream broke');
  }, 100);
  const results = await Promise.allSettled([write('good'), write('bad'), write('after')]);
  expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
});
