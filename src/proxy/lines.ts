/**
 * Splits a sandbox's stdout into protocol lines. It looks only at the text that just arrived
 * (a long line costs one join when it ends, not a rescan per chunk) and stops at the first
 * line longer than its limit: the sandbox is then ended by the caller, the proxy never is.
 */
export class LineReader {
  private pieces: string[] = [];
  private length = 0;
  private overflowed = false;

  /**
   * @param maxLineChars Longest line accepted.
   * @param onLine Each complete line, without its newline.
   * @param onOverflow Called once, when a line passes the limit; nothing is read after that.
   */
  constructor(
    private readonly maxLineChars: number,
    private readonly onLine: (line: string) => void,
    private readonly onOverflow: (chars: number) => void,
  ) {}

  push(chunk: string): void {
    let start = 0;
    while (!this.overflowed && start <= chunk.length) {
      const newline = chunk.indexOf('\n', start);
      const end = newline === -1 ? chunk.length : newline;
      this.length += end - start;
      if (this.length > this.maxLineChars) {
        this.overflowed = true;
        this.pieces = [];
        this.onOverflow(this.length);
        return;
      }
      if (newline === -1) {
        if (end > start) this.pieces.push(chunk.slice(start));
        return;
      }
      this.pieces.push(chunk.slice(start, newline));
      const line = this.pieces.length === 1 ? this.pieces[0]! : this.pieces.join('');
      this.pieces = [];
      this.length = 0;
      this.onLine(line);
      start = newline + 1;
    }
  }
}
