/**
 * Live output: what a running cell writes, passed on as `code_output` events while it runs.
 * Chunks are gathered and sent at most every `intervalMs` (a cell printing in a tight loop
 * makes a few events a second, not one per write), and a cell streams at most `maxChars`
 * characters: past that one notice is sent and the rest waits for `code_end`, which always
 * carries the cell's whole (capped) output. Nothing here grows without bound.
 */
import type { RLMEvent } from './types';

/** Characters of live output one cell may stream. Default of `LiveOutput`. */
export const LIVE_OUTPUT_CHARS = 200_000;
/** Shortest time between two `code_output` events of one cell (ms). */
export const LIVE_OUTPUT_INTERVAL_MS = 100;

/** Which stream a chunk of live output was written to. */
export type OutputStream = 'stdout' | 'stderr';

type CodeOutputEvent = Extract<RLMEvent, { type: 'code_output' }>;

/** One running cell's live output: `write` is handed to the REPL as `onOutput`, `close` ends it. */
export class LiveOutput {
  private pending: { stream: OutputStream; text: string }[] = [];
  private streamed = 0;
  private capped = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(
    private readonly base: Omit<CodeOutputEvent, 'type' | 'stream' | 'text'>,
    private readonly emit: (event: CodeOutputEvent) => void,
    private readonly maxChars = LIVE_OUTPUT_CHARS,
    private readonly intervalMs = LIVE_OUTPUT_INTERVAL_MS,
  ) {}

  /** A chunk the cell wrote. Cheap: it is queued, and cut to what the cell may still stream. */
  write = (stream: OutputStream, text: string): void => {
    if (this.closed || this.capped || text.length === 0) return;
    const room = this.maxChars - this.streamed;
    const kept = text.length > room ? text.slice(0, room) : text;
    this.streamed += kept.length;
    const last = this.pending[this.pending.length - 1];
    if (last?.stream === stream) last.text += kept;
    else if (kept) this.pending.push({ stream, text: kept });
    if (kept.length < text.length) {
      this.capped = true;
      this.pending.push({ stream: 'stderr', text: `\n[live output stops after ${this.maxChars} characters; the cell's output arrives when it ends]\n` });
    }
    this.timer ??= setTimeout(() => this.flush(), this.intervalMs);
  };

  /** Sends what is queued now and stops (the cell ended). */
  close(): void {
    this.flush();
    this.closed = true;
  }

  private flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const chunks = this.pending;
    this.pending = [];
    for (const { stream, text } of chunks) this.emit({ type: 'code_output', ...this.base, stream, text });
  }
}
