/**
 * One ordered writer per sandbox: every write to a process's stdin waits for the one before
 * it (cloud SDKs refuse or reorder overlapping writes: Modal's stream is locked while a write
 * is in flight, e2b's writes are independent requests), and a body larger than the service
 * takes in one write goes as several, split on UTF-8 character boundaries.
 */

/** Writes `text` as a whole; resolves when the service has taken it. */
export type WriteText = (text: string) => Promise<void>;

/** Splits `text` into pieces of at most `maxBytes` UTF-8 bytes, never inside a character. */
export function splitUtf8(text: string, maxBytes: number): string[] {
  if (text.length * 3 <= maxBytes || Buffer.byteLength(text, 'utf8') <= maxBytes) return [text];
  const bytes = Buffer.from(text, 'utf8');
  const pieces: string[] = [];
  let start = 0;
  while (start < bytes.length) {
    let end = Math.min(start + maxBytes, bytes.length);
    // Back off continuation bytes (10xxxxxx) so that a character is never cut in two.
    while (end < bytes.length && end > start && (bytes[end]! & 0xc0) === 0x80) end--;
    pieces.push(bytes.toString('utf8', start, end));
    start = end;
  }
  return pieces;
}

/**
 * Chains writes: each starts when the previous one has settled, and a failed write fails
 * only itself (the provider reports a broken stream through the process's exit).
 */
export function orderedWriter(write: WriteText, maxBytes: number): WriteText {
  if (!(maxBytes >= 4)) throw new RangeError('maxBytes must be at least 4 (one UTF-8 character)');
  let tail: Promise<unknown> = Promise.resolve();
  return (text) => {
    const next = tail.then(async () => {
      for (const piece of splitUtf8(text, maxBytes)) await write(piece);
    });
    tail = next.catch(() => undefined);
    return next;
  };
}
