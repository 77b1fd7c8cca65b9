/**
 * The part every REPL environment shares: a Python REPL that survives losing its process.
 * It keeps the journal (contexts, reserved variables, tools), runs each cell against its
 * deadline — interrupting it, and replacing the process when the interrupt does not take —,
 * loads the journal into every new process, answers Python's sub-calls with the running
 * cell's signal, and tells the model what survived. Where Python runs is a ReplTransport:
 * a Pyodide worker (pyodide-transport.ts) or a sandbox behind rlm-web-proxy
 * (remote-transport.ts).
 */
import type { CellResult, ContextInput, ExecuteOptions, ReplEnvironment, ReplInfo, SubcallHost, ToolDefinition } from '../core/types';
import type { CellOutput, ContextDescription, HostReply, HostRequest, ToolSpec } from '../protocol/worker';
import { cellDeadline } from './cell-deadline';
import { interruptedCellResult, restartedCellResult, stopReason, toCellResult } from './cell-results';
import { encodeContext, type EncodedContext } from './context-bytes';
import { ReplJournal, toJSON, toToolSpecs } from './journal';

/** How a cell ended, as its transport saw it. */
export type CellEnd =
  | { kind: 'output'; output: CellOutput }
  /** The process died or went away under the cell; `message` (a sentence) says how. */
  | { kind: 'lost'; errorType: string; message: string };

/** Answers one request from Python (a sub-call or a tool call); never rejects. */
export type AnswerRequest = (request: HostRequest) => Promise<HostReply>;

/** Told of each message from Python that was refused or dropped as malformed, with the reason. */
export type RefusedRequest = (reason: string) => void;

/**
 * One kind of place where Python runs. A transport holds at most one process at a time;
 * {@link RestorableRepl} decides when to start, stop and replace it.
 */
export interface ReplTransport {
  /** What a restart replaces, for the model: 'Python worker', 'sandbox'. */
  readonly replaced: string;
  /**
   * Starts a process. `answer` serves its sub-call and tool requests for as long as it lives;
   * `refused` hears of every message from it that was not one.
   */
  boot(answer: AnswerRequest, refused: RefusedRequest): Promise<ReplInfo>;
  loadContext(index: number, context: EncodedContext): Promise<ContextDescription>;
  /** Throws when this kind of process cannot hold `context` next to `held` (the contexts below its index). */
  checkContext?(index: number, context: ContextInput, held: readonly ContextInput[]): void;
  setVariable(name: string, valueJSON: string, reserved: boolean): Promise<void>;
  registerTools(tools: ToolSpec[]): Promise<void>;
  resolveVariable(name: string): Promise<string | null>;
  reset(): Promise<void>;
  /**
   * Runs a cell. Resolves 'lost' when the process dies under it; `cancel` drops the cell's
   * connection; `onOutput` gets what the cell prints while it runs.
   */
  run(code: string, cancel: AbortSignal, onOutput: ExecuteOptions['onOutput']): Promise<CellEnd>;
  /** Asks the running cell to stop with KeyboardInterrupt; false when this process cannot be interrupted. */
  interrupt(): Promise<boolean>;
  /** Ends the current process (nothing to end when `gone`: it died by itself). The next boot starts another. */
  discard(gone: boolean): Promise<void>;
  /** Whether an operation failed because the process is gone (reaped, crashed): replace it and retry once. */
  isLost(error: unknown): boolean;
  /** The error for a call after close(). */
  closedError(): Error;
  /** The REPL is closed for good (after its last discard): let go of what outlives one process. */
  close?(): Promise<void>;
}

/** A {@link ReplEnvironment} over any {@link ReplTransport}. */
export class RestorableRepl implements ReplEnvironment {
  private readonly journal = new ReplJournal();
  private booting: Promise<ReplInfo> | undefined;
  private current: ReplInfo | undefined;
  /** Aborts the sub-calls of the running cell. */
  private cellController: AbortController | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly host: SubcallHost,
    /** Where Python runs. */
    private readonly transport: ReplTransport,
    /** How long an interrupted cell may take to stop before its process is replaced. */
    private readonly interruptGraceMs: number,
  ) {}

  get info(): ReplInfo | undefined {
    return this.current;
  }

  start(): Promise<ReplInfo> {
    if (this.closed) return Promise.reject(this.transport.closedError());
    return (this.booting ??= this.restore());
  }

  /** Starts a process and loads the journal into it: contexts, then reserved variables, then tools. */
  private async restore(): Promise<ReplInfo> {
    try {
      const info = await this.transport.boot(
        (request) => this.answer(request),
        (reason) => this.host.refused?.(reason),
      );
      this.current = info;
      if (this.closed) throw this.transport.closedError();
      for (const { index, context } of [...this.journal.contexts]) await this.transport.loadContext(index, encodeContext(context));
      for (const [name, value] of [...this.journal.variables]) await this.transport.setVariable(name, toJSON(value), true);
      if (this.journal.tools.length > 0) await this.transport.registerTools(toToolSpecs(this.journal.tools));
      return info;
    } catch (error) {
      await this.discard(false);
      throw this.closed ? this.transport.closedError() : error;
    }
  }

  private async discard(gone: boolean): Promise<void> {
    this.booting = undefined;
    await this.transport.discard(gone);
  }

  /** Replaces the process now, so that the next LM call overlaps the boot. */
  private restartSoon(): void {
    if (!this.closed) this.start().catch(() => undefined);
  }

  /** Runs an operation on the live process; if that process turns out to be gone, once more on a new one. */
  private async live<T>(operation: () => Promise<T>): Promise<T> {
    await this.start();
    try {
      return await operation();
    } catch (error) {
      if (!this.transport.isLost(error) || this.closed) throw error;
      await this.discard(true);
      await this.start();
      return operation();
    }
  }

  /**
   * Answers Python's requests through the host, with the running cell's signal. Never
   * rejects. The wire's request and reply (src/protocol) and core's have the same shape:
   * tsc checks the hand-over here.
   */
  private async answer(request: HostRequest): Promise<HostReply> {
    const signal = this.cellController?.signal ?? AbortSignal.abort();
    try {
      return await this.host.handle(request, signal);
    } catch (error) {
      return { error: (error as Error).message ?? String(error) };
    }
  }

  checkContext(index: number, context: ContextInput): void {
    this.transport.checkContext?.(index, context, this.journal.contexts.filter((c) => c.index < index).map((c) => c.context));
  }

  async loadContext(index: number, context: ContextInput): Promise<ContextDescription> {
    this.checkContext(index, context);
    const description = await this.live(() => this.transport.loadContext(index, encodeContext(context)));
    this.journal.addContext(index, context);
    return description;
  }

  async registerTools(tools: ToolDefinition[]): Promise<void> {
    await this.live(() => this.transport.registerTools(toToolSpecs(tools)));
    this.journal.setTools(tools);
  }

  async setVariable(name: string, value: unknown, reserved: boolean): Promise<void> {
    await this.live(() => this.transport.setVariable(name, toJSON(value), reserved));
    if (reserved) this.journal.setVariable(name, value);
  }

  resolveVariable(name: string): Promise<string | null> {
    return this.live(() => this.transport.resolveVariable(name));
  }

  async reset(): Promise<void> {
    this.journal.clear();
    await this.live(() => this.transport.reset());
  }

  async execute(code: string, options: ExecuteOptions): Promise<CellResult> {
    await this.start();
    const controller = new AbortController();
    this.cellController = controller;
    const started = performance.now();
    const deadline = cellDeadline(options.timeoutMs, options.signal);
    const connection = new AbortController();
    const running = this.transport.run(code, connection.signal, options.onOutput);
    running.catch(() => undefined);
    try {
      const first = await Promise.race([running, deadline.stop]);
      if (typeof first === 'object') {
        if (first.kind === 'output') return toCellResult(first.output, started);
        // The process died under the cell: stop its sub-calls, start a new one, tell the model.
        controller.abort();
        await this.discard(true);
        this.restartSoon();
        return restartedCellResult(first.errorType, first.message, this.transport.replaced, this.journal.reloadedNames(), started);
      }
      // Timed out or aborted: stop the sub-calls, then the Python code.
      controller.abort(first === 'timeout' ? new DOMException('cell timeout', 'TimeoutError') : options.signal?.reason);
      return await this.stopCell(running, stopReason(first, options.timeoutMs), first === 'timeout', started, connection);
    } finally {
      deadline.dispose();
      if (this.cellController === controller) this.cellController = undefined;
    }
  }

  /** KeyboardInterrupt first (state kept); a process that ignores it, or cannot get one, is replaced. */
  private async stopCell(running: Promise<CellEnd>, reason: string, timedOut: boolean, started: number, connection: AbortController): Promise<CellResult> {
    const interrupted = await this.transport.interrupt();
    if (interrupted) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, this.interruptGraceMs, undefined)));
      const end = await Promise.race([running.catch(() => undefined), grace]);
      clearTimeout(timer);
      if (end?.kind === 'output') return interruptedCellResult(end.output, reason, started);
    }
    connection.abort();
    await this.discard(false);
    // After a timeout the run goes on: boot now, so that the next LM call overlaps it.
    if (timedOut) this.restartSoon();
    const cause = `${reason}${interrupted ? ', and the cell did not stop when interrupted' : ''}.`;
    return restartedCellResult('TimeoutError', cause, this.transport.replaced, this.journal.reloadedNames(), started);
  }

  /**
   * Ends the process for good. Idempotent: a child's REPL may be closed by its pool (the run
   * ended) and again by the child's own session, and a shared process counts its users.
   */
  close(): Promise<void> {
    return (this.closing ??= this.end());
  }

  private async end(): Promise<void> {
    this.closed = true;
    this.cellController?.abort();
    await this.discard(false);
    await this.transport.close?.();
  }
}
