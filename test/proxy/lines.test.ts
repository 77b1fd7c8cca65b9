/** The proxy's reader of protocol lines: any chunking, and a hard stop at the limit. */
import { expect, it } from 'vitest';
import { LineReader } from '../../src/proxy/lines';

function read(chunks: string[], max: number): { lines: string[]; overflow: number[] } {
  const lines: string[] = [];
  const overflow: number[] = [];
  const reader = new LineReader(max, (line) => lines.push(line), (chars) => overflow.push(chars));
  for (const chunk of chunks) reader.push(chunk);
  return { lines, overflow };
}

it('splits lines however they are cut, keeping empty ones', () => {
  const text = 'one\ntwo\n\nthree is longer\n';
  for (const size of [1, 2, 5, text.length]) {
    const chunks = Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.slice(i * size, i * size + size));
    expect(read(chunks, 100).lines).toEqual(['one', 'two', '', 'three is longer']);
  }
});

it('stops at the first line over the limit, once, and reads nothing after it', () => {
  const { lines, overflow } = read(['ok\n', 'x'.repeat(6), 'x'.repeat(6), '\nafter\n', 'more\n'], 10);
  expect(lines).toEqual(['ok']);
  expect(overflow).toEqual([12]);
  expect(read(['x'.repeat(10), '\n'], 10).lines).toEqual(['x'.repeat(10)]); // at the limit is fine
});
