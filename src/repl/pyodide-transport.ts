/**
 * Python in a Pyodide Web Worker, as one REPL sees it: a namespace in a {@link PyodideProcess}
 * — its own process (the root's REPL), or one shared by the child RLMs of a root. Opens the
 * namespace, answers its requests, runs its cells, and stops a cell: through the reply of the
 * sub-call it waits for, or with KeyboardInterrupt through the interrupt buffer when the page
 * is cross-origin isolated.
 */
import { asContextReadError } from '../core/context-input';
import { ReplCrashedError } from '../core/errors';
import type { ContextInput, ExecuteOptions, ReplInfo } from '../core/types';
import type { ContextDescription, HostReply, TenantAPI, ToolSpec } from '../protocol/worker';
import type { EncodedContext } from './context-bytes';
import { asContextMemoryError, checkPyodideContext } from './context-ceiling';
import type { AnswerRequest, CellEnd, RefusedRequest, ReplTransport } from './restorable-repl';
import { PyodideProcess, type ProcessRun, type PyodideEnvironmentOptions } from './pyodide-process';

export type { PyodideEnvironmentOptions };

/** The running cell, as far as stopping it goes. */
interface RunningCell {
  /** Sub-calls of the cell waiting for the page. */
  waiting: number;
  /** Resolves with the reply that raises KeyboardInterrupt in the cell, once it is stopped. */
  stopped: Promise<HostReply>;
  stop(): void;
}

const INTERRUPTED: HostReply = { error: 'the cell was interrupted', interrupted: true };

/** The {@link ReplTransport} of {@link PyodideRepl}: one namespace in a Pyodide worker. */
export class PyodideTransport implements ReplTransport {
  readonly replaced = 'Python worker';
  private readonly process: PyodideProcess;
  /** Whether this REPL owns its worker (ending the REPL ends it), or shares it with other REPLs. */
  private readonly exclusive: boolean;
  private open: { tenant: number; api: TenantAPI; run: ProcessRun } | undefined;
  private cell: RunningCell | undefined;
  /** The running cell's `onOutput` (kept after it ends: a late chunk of it goes to its closed receiver). */
  private onOutput: ExecuteOptions['onOutput'];

  constructor(options: PyodideEnvironmentOptions = {}, process?: PyodideProcess) {
    this.exclusive = !process;
    this.process = process ?? new PyodideProcess(options);
    this.process.retain();
  }

  async boot(answer: AnswerRequest, refused: RefusedRequest): Promise<ReplInfo> {
    const open = await this.process.open({
      call: (request) => {
        const cell = this.cell;
        if (!cell) return answer(request);
        cell.waiting++;
        return Promise.race([answer(request), cell.stopped]).finally(() => cell.waiting--);
      },
      // Checked by the process; bounded per cell by the loop (core/live-output.ts), as for every environment.
      output: (stream, text) => this.onOutput?.(stream, text),
      refused,
    });
    this.open = open;
    return open.run.info;
  }

  /** Runs `operation` on this namespace; rejects when its worker ends first. */
  private call<T>(operation: (api: TenantAPI) => Promise<T>): Promise<T> {
    const open = this.open;
    if (!open) return Promise.reject(new ReplCrashedError('The REPL worker is not running.'));
    return Promise.race([operation(open.api), open.run.ended]);
  }

  checkContext(index: number, context: ContextInput, held: readonly ContextInput[]): void {
    checkPyodideContext(index, context, held);
  }

  async loadContext(index: number, encoded: EncodedContext): Promise<ContextDescription> {
    // Taken before the bytes are transferred (which detaches them).
    const bytes = 'blob' in encoded ? encoded.blob.size : encoded.bytes.byteLength;
    try {
      if ('blob' in encoded) return await this.call((api) => api.loadContextBlob(index, encoded.blob, encoded.kind));
      return await this.call((api) => api.loadContext(index, encoded.bytes, encoded.kind));
    } catch (error) {
      throw asContextMemoryError('blob' in encoded ? asContextReadError(error, encoded.blob) : error, index, bytes);
    }
  }

  setVariable(name: string, valueJSON: string, reserved: boolean): Promise<void> {
    return this.call((api) => api.setVariable(name, valueJSON, reserved));
  }

  registerTools(tools: ToolSpec[]): Promise<void> {
    return this.call((api) => api.registerTools(tools));
  }

  resolveVariable(name: string): Promise<string | null> {
    return this.call((api) => api.resolveVariable(name));
  }

  reset(): Promise<void> {
    return this.call((api) => api.reset());
  }

  async run(code: string, _cancel: AbortSignal, onOutput: ExecuteOptions['onOutput']): Promise<CellEnd> {
    this.onOutput = onOutput;
    let stop!: () => void;
    const stopped = new Promise<HostReply>((resolve) => (stop = () => resolve(INTERRUPTED)));
    const cell: RunningCell = { waiting: 0, stopped, stop };
    this.cell = cell;
    const died = (error: unknown): CellEnd => ({
      kind: 'lost',
      errorType: 'ReplCrashedError',
      message: `the Python worker died while running this cell (${(error as Error).message ?? String(error)}). If it ran out of memory, use less, e.g. process the context in slices.`,
    });
    try {
      return await this.call((api) => api.execute(code)).then((output): CellEnd => ({ kind: 'output', output }), died);
    } finally {
      if (this.cell === cell) this.cell = undefined;
    }
  }

  /**
   * A cell waiting for a sub-call is stopped through that call's reply; a cell running Python
   * through the interrupt buffer (which names this namespace, so that others sharing the
   * worker go on). False when neither reaches it.
   */
  async interrupt(): Promise<boolean> {
    const cell = this.cell;
    const open = this.open;
    if (!cell || !open) return false;
    cell.stop();
    const viaBuffer = this.process.interrupt(open.tenant);
    return viaBuffer || cell.waiting > 0;
  }

  /**
   * Ends this REPL's Python. An exclusive worker is ended; in a shared one the namespace is
   * closed — unless a cell of it still runs (it would not stop), which ends the worker and
   * the namespaces of the other REPLs in it (their cells report a restart).
   */
  async discard(gone: boolean): Promise<void> {
    const open = this.open;
    const running = this.cell !== undefined;
    this.open = undefined;
    this.cell = undefined;
    if (this.exclusive) return this.process.terminate();
    // Gone with its worker (which another REPL may already have replaced): nothing to end.
    if (gone || !open || !this.process.tenants.has(open.tenant)) return;
    if (running) return this.process.terminate();
    await this.process.close(open.tenant, open.api, open.run);
  }

  /** Whether an operation failed because the worker ended under it (it crashed, or a REPL sharing it restarted it). */
  isLost(error: unknown): boolean {
    const open = this.open;
    return error instanceof ReplCrashedError && (!open || !this.process.tenants.has(open.tenant));
  }

  closedError(): Error {
    return new ReplCrashedError('This REPL was closed.');
  }

  /** A shared worker ends with the last REPL that uses it. */
  async close(): Promise<void> {
    this.process.release();
  }
}
