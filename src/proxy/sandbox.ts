/**
 * One sandbox as the proxy sees it: a provider process running rlm_stdio.py, spoken to in
 * JSON lines. Commands are serialized (the Python loop does one thing at a time); while a
 * cell runs, the runtime's sub-call requests and live output are handed to the cell's
 * listener and the page's answers written back.
 */
import { randomUUID } from 'node:crypto';
import {
  DEFAULT_MAX_STDIO_LINE_CHARS,
  encodeStdioLine,
  parseCommandResult,
  parseStdioMessage,
  type CellOutput,
  type ContextDescription,
  type ContextKind,
  type OutputStream,
  type StdioCommandFields,
  type StdioCommandName,
  type StdioCommandResults,
  type StdioLineOut,
  type SubcallReply,
  type SubcallRequest,
} from '../protocol/stdio.js';
import { LIVE_OUTPUT_EVENT_COST, MAX_LIVE_OUTPUT_CHARS } from '../protocol/proxy.js';
import { LineReader } from './lines.js';
import { runtimePayload, RUNTIME_ARGV } from './runtime-files.js';
import type { SandboxProcess, SandboxProvider, StartPhase } from './types.js';
import { orderedWriter, type WriteText } from './writer.js';

export type { CellOutput } from '../protocol/stdio.js';

/** Limits of one sandbox, set by the server. */
export interface SandboxOptions {
  /** Longest protocol line read from the process; a longer one ends the sandbox. Default: DEFAULT_MAX_STDIO_LINE_CHARS. */
  maxLineChars?: number | undefined;
}

export interface ReadyInfo {
  pid: number;
  python: string;
}

/** Thrown by commands when the process is gone; `code` is what the page sees. */
export class SandboxFailure extends Error {
  constructor(
    message: string,
    readonly code: 'crashed' | 'killed' | 'expired' | 'start_failed' | 'command_failed' | 'output_too_large',
    readonly errorType?: string,
  ) {
    super(message);
  }
}

/** Receives what the running cell asks for and prints. */
export interface CellListener {
  request(seq: number, request: SubcallRequest): void;
  /** Live output, at most MAX_LIVE_OUTPUT_CHARS a cell (the rest is dropped here). */
  output(stream: OutputStream, text: string): void;
}

interface Waiter {
  /** The command it waits for, to check the shape of its result. */
  cmd?: StdioCommandName;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** Base64 of 3 MiB: chunks are multiples of 3 bytes so that each encodes on its own. */
const CHUNK_BYTES = 3 * 1024 * 1024;
const STDERR_TAIL = 4000;
/** Stdin writes are split at this size when the provider names no limit of its own. */
const DEFAULT_WRITE_BYTES = 8 * 1024 * 1024;
/** Where contexts sent through a provider's file API land in the sandbox (Python deletes them once loaded). */
const UPLOAD_DIR = '/tmp/rlm-web-contexts';
const PHASES: Record<StartPhase, string> = {
  image: 'building or pulling the sandbox image',
  scheduling: 'waiting for the service to place the sandbox',
  process: 'starting Python in the sandbox',
};

export class Sandbox {
  readonly createdAt = Date.now();
  lastActive = Date.now();
  info: ReadyInfo | undefined;
  /** Why the process ended, once it has. */
  ended: SandboxFailure | undefined;
  private process: SandboxProcess | undefined;
  /** The process's stdin, one write at a time. */
  private write: WriteText | undefined;
  private readonly stdout: LineReader;
  private stderrTail = '';
  private nextId = 1;
  private readonly waiters = new Map<number, Waiter>();
  private queue: Promise<unknown> = Promise.resolve();
  private readyWaiter: Waiter | undefined;
  private cell: CellListener | undefined;
  private pendingSeq: number | undefined;
  /** Live output relayed for the running cell (with each event's cost). */
  private liveOutput = 0;
  private seq = 0;
  /** Set by kill(): why we ended it, reported instead of "crashed". */
  private killReason: SandboxFailure | undefined;

  constructor(
    readonly id: string,
    readonly providerName: string,
    readonly owner: string,
    private readonly onEnded: (sandbox: Sandbox, failure: SandboxFailure) => void,
    options: SandboxOptions = {},
  ) {
    const maxLineChars = options.maxLineChars ?? DEFAULT_MAX_STDIO_LINE_CHARS;
    this.stdout = new LineReader(maxLineChars, (line) => this.dispatch(line), (chars) => {
      const failure = new SandboxFailure(
        `the sandbox wrote a protocol line of more than ${maxLineChars} characters (${chars} so far), so it was ended. ` +
          'Keep sub-call batches and printed results smaller (the output of print() is capped; raw writes to the protocol channel are not allowed).',
        'output_too_large',
      );
      void this.kill(failure).catch(() => undefined);
    });
  }

  get running(): boolean {
    return this.cell !== undefined;
  }

  get providerId(): string | undefined {
    return this.process?.providerId;
  }

  /**
   * Starts the process, sends it the runtime, waits for its ready line, all within `timeoutMs`;
   * a start that takes longer fails naming the phase it was in, and the provider is told to
   * delete what it made.
   */
  async start(provider: SandboxProvider, lifetimeMs: number, timeoutMs: number): Promise<ReadyInfo> {
    const abort = new AbortController();
    let phase: StartPhase = 'scheduling';
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort();
        reject(new SandboxFailure(`the sandbox did not start within ${timeoutMs} ms: it was still ${PHASES[phase]} (phase '${phase}')`, 'start_failed'));
      }, timeoutMs);
    });
    const booting = this.boot(provider, lifetimeMs, abort.signal, (next) => (phase = next));
    booting.catch(() => undefined);
    try {
      this.info = await Promise.race([booting, timeout]);
    } finally {
      clearTimeout(timer);
    }
    return this.info;
  }

  private async boot(provider: SandboxProvider, lifetimeMs: number, signal: AbortSignal, onPhase: (phase: StartPhase) => void): Promise<ReadyInfo> {
    const ready = new Promise<unknown>((resolve, reject) => (this.readyWaiter = { resolve, reject }));
    ready.catch(() => undefined);
    const process = await provider.start({
      argv: [...RUNTIME_ARGV],
      lifetimeMs,
      onPhase,
      signal,
      onStdout: (chunk) => this.receive(chunk),
      onStderr: (chunk) => {
        this.stderrTail = (this.stderrTail + chunk).slice(-STDERR_TAIL);
      },
      onExit: (code, detail) => this.exited(code, detail),
    });
    this.process = process;
    this.write = orderedWriter((text) => process.write(text), process.maxWriteBytes ?? DEFAULT_WRITE_BYTES);
    // Given up on while the provider was still starting: nobody will use this process.
    if (signal.aborted) void this.kill(new SandboxFailure('start timed out', 'start_failed'));
    if (this.ended) throw this.ended;
    onPhase('process');
    await this.write(runtimePayload());
    return (await ready) as ReadyInfo;
  }

  /** Stdout text from the provider; never throws (a provider callback has nobody to catch it). */
  private receive(chunk: string): void {
    if (this.ended) return;
    try {
      this.stdout.push(chunk);
    } catch (error) {
      void this.kill(new SandboxFailure(`the proxy could not read the sandbox's output (${(error as Error).message})`, 'crashed')).catch(() => undefined);
    }
  }

  /** One protocol line. Anything not shaped like a message is ignored: the cell's code can write here too. */
  private dispatch(line: string): void {
    const message = parseStdioMessage(line);
    if (!message) return;
    if (message.type === 'ready') {
      this.readyWaiter?.resolve({ pid: message.pid, python: message.python });
      this.readyWaiter = undefined;
    } else if (message.type === 'output') {
      const room = MAX_LIVE_OUTPUT_CHARS - this.liveOutput - LIVE_OUTPUT_EVENT_COST;
      if (!this.cell || room <= 0) return;
      const text = message.text.length > room ? message.text.slice(0, room) : message.text;
      this.liveOutput += text.length + LIVE_OUTPUT_EVENT_COST;
      this.cell.output(message.stream, text);
    } else if (message.type === 'refused') {
      // The process waits for a reply to what it sent: tell its cell why nothing was asked.
      void this.writeLine({ error: `the request was refused: ${message.reason}` }).catch(() => undefined);
    } else if (message.type === 'request') {
      const seq = ++this.seq;
      if (!this.cell) {
        void this.writeLine({ error: 'sub-calls are only answered while a cell runs' }).catch(() => undefined);
        return;
      }
      this.pendingSeq = seq;
      this.cell.request(seq, message.request);
    } else {
      const waiter = this.waiters.get(message.id);
      if (!waiter) return;
      this.waiters.delete(message.id);
      if (message.type === 'error') {
        waiter.reject(new SandboxFailure(message.error, 'command_failed', message.error_type));
        return;
      }
      const value = waiter.cmd === undefined ? message.value : parseCommandResult(waiter.cmd, message.value);
      if (value === undefined) waiter.reject(new SandboxFailure(`the sandbox answered '${waiter.cmd}' with a malformed result`, 'command_failed', 'ProtocolError'));
      else waiter.resolve(value);
    }
  }

  private exited(code: number | null, detail: string): void {
    if (this.ended) return;
    const tail = this.stderrTail.trim().split('\n').slice(-6).join('\n');
    this.ended =
      this.killReason ??
      new SandboxFailure(`the sandbox process ended unexpectedly (${detail})${tail ? `; its last error output was:\n${tail}` : ''}`, 'crashed');
    const failure = this.ended;
    this.readyWaiter?.reject(failure);
    this.readyWaiter = undefined;
    for (const waiter of this.waiters.values()) waiter.reject(failure);
    this.waiters.clear();
    this.cell = undefined;
    this.pendingSeq = undefined;
    this.onEnded(this, failure);
    // The process is gone, but a cloud sandbox would live on until its own timeout.
    void this.process?.kill();
  }

  private writeLine(message: StdioLineOut): Promise<void> {
    if (this.ended) return Promise.reject(this.ended);
    return this.write!(encodeStdioLine(message));
  }

  /** Runs `task` when every earlier command has finished. */
  private serialized<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(task, task);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private send<C extends StdioCommandName>(cmd: C, fields: StdioCommandFields[C]): Promise<StdioCommandResults[C]> {
    if (this.ended) return Promise.reject(this.ended);
    const id = this.nextId++;
    const reply = new Promise<StdioCommandResults[C]>((resolve, reject) => this.waiters.set(id, { cmd, resolve: resolve as (value: unknown) => void, reject }));
    this.writeLine({ ...fields, cmd, id } as StdioLineOut).catch((error: Error) => {
      const waiter = this.waiters.get(id);
      this.waiters.delete(id);
      waiter?.reject(this.ended ?? new SandboxFailure(error.message, 'crashed'));
    });
    return reply;
  }

  /** A command with a reply, after the ones before it. */
  command<C extends StdioCommandName>(cmd: C, fields: StdioCommandFields[C]): Promise<StdioCommandResults[C]> {
    this.lastActive = Date.now();
    return this.serialized(() => this.send(cmd, fields));
  }

  /**
   * Streams a context into Python, never holding the whole body: through the provider's file
   * API when it has one (Python then loads the files by path), else as base64 lines on stdin.
   */
  uploadContext(index: number, kind: ContextKind, body: AsyncIterable<Buffer>, maxBytes: number): Promise<ContextDescription> {
    this.lastActive = Date.now();
    const writeFile = this.process?.writeFile?.bind(this.process);
    if (writeFile) return this.serialized(() => this.uploadFile(writeFile, index, kind, body, maxBytes));
    return this.serialized(async () => {
      await this.send('context_begin', { index, kind });
      let pending: Buffer[] = [];
      let pendingBytes = 0;
      let total = 0;
      const flush = async (all: boolean) => {
        const joined = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
        const usable = all ? joined.length : joined.length - (joined.length % 3);
        if (usable > 0) await this.writeLine({ cmd: 'context_chunk', data: joined.subarray(0, usable).toString('base64') });
        const rest = joined.subarray(usable);
        pending = rest.length > 0 ? [rest] : [];
        pendingBytes = rest.length;
      };
      try {
        for await (const chunk of body) {
          total += chunk.length;
          if (total > maxBytes) throw new BodyTooLarge(maxBytes);
          this.lastActive = Date.now();
          pending.push(chunk);
          pendingBytes += chunk.length;
          if (pendingBytes >= CHUNK_BYTES) await flush(false);
        }
        await flush(true);
      } catch (error) {
        if (!this.ended) await this.send('context_abort', {}).catch(() => undefined);
        throw error;
      }
      return this.send('context_end', {});
    });
  }

  private async uploadFile(writeFile: NonNullable<SandboxProcess['writeFile']>, index: number, kind: ContextKind, body: AsyncIterable<Buffer>, maxBytes: number): Promise<ContextDescription> {
    if (this.ended) throw this.ended;
    const path = `${UPLOAD_DIR}/${randomUUID()}`;
    let tooLarge: BodyTooLarge | undefined;
    // Read by hand, not with for-await: leaving early must not destroy the request, which
    // the server still answers with 413 (then it closes the connection).
    const reader = body[Symbol.asyncIterator]();
    const counted = async function* (sandbox: Sandbox) {
      let total = 0;
      for (let next = await reader.next(); !next.done; next = await reader.next()) {
        total += next.value.length;
        if (total > maxBytes) throw (tooLarge = new BodyTooLarge(maxBytes));
        sandbox.lastActive = Date.now();
        yield next.value;
      }
    };
    let paths: string[];
    try {
      paths = await writeFile(path, counted(this));
    } catch (error) {
      // Parts already written are removed; the SDK's own error hides why the body stopped.
      if (!this.ended) await this.send('context_abort', { prefix: path }).catch(() => undefined);
      throw tooLarge ?? error;
    }
    return this.send('context_file', { index, kind, paths });
  }

  /** Runs a cell; sub-call requests go to `listener` until the result comes back. */
  execute(code: string, listener: CellListener): Promise<CellOutput> {
    this.lastActive = Date.now();
    return this.serialized(async () => {
      this.cell = listener;
      this.liveOutput = 0;
      try {
        return await this.send('execute', { code });
      } finally {
        this.cell = undefined;
        this.pendingSeq = undefined;
        this.lastActive = Date.now();
      }
    });
  }

  /** Writes the page's answer to sub-call `seq`. False when that call is no longer waiting. */
  async answer(seq: number, reply: SubcallReply): Promise<boolean> {
    this.lastActive = Date.now();
    if (this.pendingSeq !== seq || !this.cell) return false;
    this.pendingSeq = undefined;
    await this.writeLine(reply);
    return true;
  }

  /** Fails the waiting sub-call (the page went away), so that the cell can finish. */
  async abandonPending(reason: string): Promise<void> {
    const seq = this.pendingSeq;
    if (seq !== undefined) await this.answer(seq, { error: reason }).catch(() => undefined);
  }

  /**
   * The page that ran the current cell went away: fail its waiting sub-call, interrupt the cell,
   * and kill the sandbox if that same cell still runs `graceMs` later (it ignores SIGINT).
   */
  async abandonCell(reason: string, graceMs: number): Promise<void> {
    const cell = this.cell;
    if (!cell) return;
    await this.abandonPending(reason);
    await this.interrupt();
    const timer = setTimeout(() => {
      if (this.cell === cell && !this.ended) {
        void this.kill(new SandboxFailure(`${reason}, and its cell did not stop within ${graceMs} ms of being interrupted, so the sandbox was killed`, 'killed')).catch(() => undefined);
      }
    }, graceMs);
    timer.unref?.();
  }

  /** KeyboardInterrupt in the running cell; kills the process when the provider cannot signal. */
  async interrupt(): Promise<'interrupted' | 'killed' | 'idle'> {
    if (!this.cell) return 'idle';
    const pid = this.info?.pid;
    if (pid !== undefined && (await this.process!.interrupt(pid).catch(() => false))) return 'interrupted';
    await this.kill(new SandboxFailure('the cell could not be interrupted, so its sandbox was killed', 'killed'));
    return 'killed';
  }

  async kill(reason: SandboxFailure): Promise<void> {
    this.killReason ??= reason;
    await this.process?.kill();
    // Providers whose kill does not report an exit (a deleted cloud sandbox) end here.
    this.exited(null, reason.message);
  }
}

export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`the body is larger than the limit of ${limit} bytes`);
  }
}
