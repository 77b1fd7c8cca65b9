/**
 * The page side of the Pyodide REPL: owns the worker (in the isolation frame by default),
 * answers its sub-call requests on either bridge, keeps its memory snapshot, and enforces
 * cell timeouts — by KeyboardInterrupt when the page is cross-origin isolated (state
 * kept), else by restarting the worker (state lost, contexts and tools reloaded).
 */
import * as Comlink from 'comlink';
import { BridgeUnavailableError, ConfigurationError, ReplCrashedError } from '../core/errors';
import type {
  CellResult,
  ContextInput,
  EnvironmentFactoryOptions,
  ExecuteOptions,
  ReplEnvironment,
  ReplInfo,
  SubcallHost,
  ToolDefinition,
} from '../core/types';
import {
  SHARED_FORMAT_JSON,
  SHARED_FORMAT_RESULTS,
  writeSharedReply,
  type CellOutput,
  type ContextDescription,
  type HostEndpoint,
  type HostReply,
  type HostRequest,
  type SharedCallMessage,
  type SharedPayload,
  type WorkerAPI,
} from '../worker/protocol';
import type { RelayedCall, RelayedReply } from '../frame/protocol';
import { cellDeadline, restartedCellResult } from './cell-deadline';
import { encodeContext } from './context-bytes';
import { resolveIndexURL } from './pyodide-files';
import { deleteSnapshot, readSnapshot, writeSnapshot } from './snapshot-store';
import { createReplWorker, type Isolation, type ReplWorker } from './worker-factory';

export interface PyodideEnvironmentOptions {
  /**
   * Where Python runs. 'sandbox': a worker in an opaque-origin iframe whose CSP allows no
   * network — no fetch, no storage, no page access; the page hands Pyodide in. 'none': a
   * module worker of the page's origin (Python can use the network and the origin's
   * storage). Set through `RLMOptions.isolation`. Default: 'sandbox'.
   */
  isolation?: Isolation | undefined;
  /**
   * 'sandbox' only: URL of rlm-web's `sandbox.html` (shipped in dist/, self-contained), for
   * pages whose CSP forbids the default srcdoc frame's inline script and for extensions (list
   * it under `sandbox.pages`). Default: an srcdoc frame.
   */
  sandboxURL?: string | URL | undefined;
  /**
   * Where Pyodide's files are served (a directory URL). Default: ./pyodide/ next to
   * rlm-web's files ('none': next to the worker script).
   */
  indexURL?: string | undefined;
  /** 'none' only: the worker script. Default: the one shipped with rlm-web. */
  workerURL?: string | URL | undefined;
  /** 'auto' (default) prefers SharedArrayBuffer when the page is cross-origin isolated, else JSPI; force one to test. */
  bridge?: 'auto' | 'jspi' | 'sab' | undefined;
  /** How long an interrupted cell may take to stop before the worker is restarted. Default: 2000 ms. */
  interruptGraceMs?: number | undefined;
  /** A worker not booted by then is replaced once (without the snapshot). Default: 60 000 ms. */
  bootTimeoutMs?: number | undefined;
  /**
   * Boot from a memory snapshot of Pyodide kept by the page in Cache Storage (≈31 MB, made on
   * the first boot, used only while its SHA-256 matches the digest the page recorded): ≈0.3 s
   * instead of ≈2.3 s. Default: true.
   */
  snapshot?: boolean | undefined;
}

interface LoadedContext {
  index: number;
  context: ContextInput;
}

const INTERRUPT_SIGNAL = 2; // SIGINT, as Pyodide's interrupt buffer expects

class BootTimeoutError extends ReplCrashedError {
  override name = 'ReplCrashedError';
}

export class PyodideRepl implements ReplEnvironment {
  private worker: ReplWorker | undefined;
  private readonly isolation: Isolation;
  private remote: Comlink.Remote<WorkerAPI> | undefined;
  private booting: Promise<ReplInfo> | undefined;
  private current: ReplInfo | undefined;
  private readonly interruptBuffer: Uint8Array | undefined;
  /** Everything needed to rebuild the REPL after a restart. */
  private readonly contexts: LoadedContext[] = [];
  private readonly variables = new Map<string, unknown>();
  private tools: ToolDefinition[] = [];
  /** Aborts the sub-calls of the running cell. */
  private cellController: AbortController | undefined;
  private pendingShared: { seq: number; payload: SharedPayload } | undefined;
  private closePort: (() => void) | undefined;
  private closed = false;
  /** Rejects when the current worker dies (an uncaught error, out of memory). */
  private crashed: Promise<never> = new Promise<never>(() => undefined);

  constructor(
    private readonly host: SubcallHost,
    private readonly options: PyodideEnvironmentOptions = {},
  ) {
    this.isolation = checkIsolation(options);
    // 'none': the page shares this byte with its worker; 'sandbox': the frame holds one per worker.
    this.interruptBuffer =
      this.isolation === 'none' && typeof SharedArrayBuffer !== 'undefined' && globalThis.crossOriginIsolated ? new Uint8Array(new SharedArrayBuffer(1)) : undefined;
  }

  get info(): ReplInfo | undefined {
    return this.current;
  }

  start(): Promise<ReplInfo> {
    if (this.closed) return Promise.reject(new ReplCrashedError('This REPL was closed.'));
    return (this.booting ??= this.restore());
  }

  /**
   * Boots a worker; one that has not booted within bootTimeoutMs is replaced once, booting
   * without the snapshot, so that a wedged start never hangs the run.
   */
  private async boot(): Promise<ReplInfo> {
    try {
      return await this.bootOnce(this.options.snapshot ?? true);
    } catch (error) {
      if (!(error instanceof BootTimeoutError) || this.closed) throw error;
      this.terminate();
      return this.bootOnce(false);
    }
  }

  private async bootOnce(snapshot: boolean): Promise<ReplInfo> {
    const indexURL = resolveIndexURL(this.options.indexURL);
    const snapshotKey = `${indexURL}rlm-web-snapshot-${this.isolation}.bin`;
    const timeoutMs = this.options.bootTimeoutMs ?? 60_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BootTimeoutError(`Pyodide did not start within ${timeoutMs} ms (environmentOptions.bootTimeoutMs).`)), timeoutMs);
    });
    timedOut.catch(() => undefined);
    let boot;
    let stored: Uint8Array | undefined;
    try {
      const sharedPort = this.sharedPort();
      let worker: ReplWorker;
      try {
        [worker, stored] = await Promise.race([
          Promise.all([
            createReplWorker({ isolation: this.isolation, workerURL: this.options.workerURL, indexURL, sandboxURL: this.options.sandboxURL?.toString(), answers: sharedPort }),
            snapshot ? readSnapshot(snapshotKey) : undefined,
          ]),
          timedOut,
        ]);
      } catch (error) {
        if (error instanceof ReplCrashedError || error instanceof ConfigurationError) throw error;
        throw new ReplCrashedError(`The REPL worker could not be created: ${(error as Error).message ?? String(error)}.`, { cause: error });
      }
      if (this.closed) {
        worker.terminate();
        throw new ReplCrashedError('This REPL was closed.');
      }
      this.worker = worker;
      const remote = Comlink.wrap<WorkerAPI>(worker.endpoint);
      this.remote = remote;
      this.crashed = worker.crashed;
      const endpoint: HostEndpoint = { call: (request) => this.answer(request) };
      // 'sandbox': the frame took the shared-call port (it relays that bridge).
      const own = this.isolation === 'none' ? sharedPort : undefined;
      const options = { indexURL: own && this.options.indexURL, bridge: this.options.bridge ?? 'auto', interruptBuffer: this.interruptBuffer, sharedPort: own, snapshot: stored ?? snapshot };
      try {
        boot = await Promise.race([remote.boot(Comlink.transfer(options, own ? [own] : []), Comlink.proxy(endpoint)), worker.crashed, timedOut]);
      } catch (error) {
        if (error instanceof BootTimeoutError) throw error;
        const message = (error as Error).message ?? String(error);
        if (/JSPI|cross-origin isolated|requested/.test(message)) throw new BridgeUnavailableError(message, { cause: error });
        throw new ReplCrashedError(`Pyodide failed to start: ${message}. Check environmentOptions.indexURL (it must serve pyodide.mjs, pyodide.asm.wasm, python_stdlib.zip and pyodide-lock.json).`, { cause: error });
      }
    } finally {
      clearTimeout(timer);
    }
    let snapshotState: NonNullable<ReplInfo['snapshot']> = boot.snapshot === 'loaded' ? 'loaded' : 'none';
    if (stored && boot.snapshot !== 'loaded') await deleteSnapshot(snapshotKey);
    if (boot.madeSnapshot && (await writeSnapshot(snapshotKey, boot.madeSnapshot))) snapshotState = 'saved';
    this.current = {
      bridge: boot.bridge,
      interruptible: boot.interruptible,
      bootMs: boot.bootMs,
      runtime: `pyodide ${boot.pyodideVersion}`,
      snapshot: snapshotState,
      isolation: this.isolation,
    };
    return this.current;
  }

  /** Answers a sub-call or tool request from Python. Never rejects. */
  private async answer(request: HostRequest): Promise<HostReply> {
    const signal = this.cellController?.signal ?? AbortSignal.abort();
    try {
      return await this.host.handle(request, signal);
    } catch (error) {
      return { error: (error as Error).message ?? String(error) };
    }
  }

  /**
   * The SharedArrayBuffer path: requests arrive on a port; replies go into shared memory —
   * written here ('none'), or sent to the isolation frame, which shares memory with its
   * worker and writes them ('sandbox').
   */
  private sharedPort(): MessagePort {
    const channel = new MessageChannel();
    const encoder = new TextEncoder();
    const write = (buffer: SharedArrayBuffer, seq: number, payload: SharedPayload) => {
      if (writeSharedReply(buffer, seq, payload) === 'too-small') this.pendingShared = { seq, payload };
    };
    const encode = (reply: HostReply): SharedPayload => {
      if (!('results' in reply)) return { format: SHARED_FORMAT_JSON, bytes: encoder.encode(JSON.stringify(reply)) };
      const texts = reply.results.map((r) => encoder.encode(r));
      const head = 4 + 4 * texts.length;
      const bytes = new Uint8Array(head + texts.reduce((n, t) => n + t.byteLength, 0));
      const view = new DataView(bytes.buffer);
      view.setInt32(0, texts.length, true);
      let offset = head;
      texts.forEach((t, i) => {
        view.setInt32(4 + 4 * i, t.byteLength, true);
        bytes.set(t, offset);
        offset += t.byteLength;
      });
      return { format: SHARED_FORMAT_RESULTS, bytes };
    };
    channel.port1.onmessage = async ({ data }: MessageEvent<SharedCallMessage | RelayedCall>) => {
      if (data.type === 'call') {
        const payload = encode(await this.answer(data.request));
        if ('buffer' in data) write(data.buffer, data.seq, payload);
        else channel.port1.postMessage({ type: 'reply', seq: data.seq, payload } satisfies RelayedReply, [payload.bytes.buffer as ArrayBuffer]);
      } else {
        const pending = this.pendingShared;
        this.pendingShared = undefined;
        if (pending && pending.seq === data.seq) write(data.buffer, data.seq, pending.payload);
      }
    };
    this.closePort = () => channel.port1.close();
    return channel.port2;
  }

  private async api(): Promise<Comlink.Remote<WorkerAPI>> {
    await this.start();
    if (!this.remote) throw new ReplCrashedError('The REPL worker is not running.');
    return this.remote;
  }

  async loadContext(index: number, context: ContextInput): Promise<ContextDescription> {
    const description = await this.sendContext(await this.api(), index, context);
    this.contexts.push({ index, context });
    return description;
  }

  private async sendContext(api: Comlink.Remote<WorkerAPI>, index: number, context: ContextInput): Promise<ContextDescription> {
    const encoded = encodeContext(context);
    if ('blob' in encoded) return api.loadContextBlob(index, encoded.blob, encoded.kind);
    return api.loadContext(index, Comlink.transfer(encoded.bytes, [encoded.bytes.buffer as ArrayBuffer]), encoded.kind);
  }

  async registerTools(tools: ToolDefinition[]): Promise<void> {
    this.tools = tools;
    await this.sendTools(await this.api(), tools);
  }

  private sendTools(api: Comlink.Remote<WorkerAPI>, tools: ToolDefinition[]): Promise<void> {
    return api.registerTools(
      tools.map((t) => (t.kind === 'data' ? { name: t.name, kind: 'data', valueJSON: JSON.stringify(t.value ?? null) } : { name: t.name, kind: 'function' })),
    );
  }

  async setVariable(name: string, value: unknown, reserved: boolean): Promise<void> {
    await (await this.api()).setVariable(name, JSON.stringify(value ?? null), reserved);
    if (reserved) this.variables.set(name, value);
  }

  async resolveVariable(name: string): Promise<string | null> {
    return (await this.api()).resolveVariable(name);
  }

  async reset(): Promise<void> {
    this.contexts.length = 0;
    this.variables.clear();
    this.tools = [];
    await (await this.api()).reset();
  }

  async execute(code: string, options: ExecuteOptions): Promise<CellResult> {
    const api = await this.api();
    if (this.interruptBuffer) this.interruptBuffer[0] = 0;
    const controller = new AbortController();
    this.cellController = controller;
    const started = performance.now();
    const deadline = cellDeadline(options.timeoutMs, options.signal);
    const stop = deadline.stop;
    const running = api.execute(code);
    running.catch(() => undefined);
    try {
      let first: CellOutput | 'timeout' | 'abort';
      try {
        first = await Promise.race([running, stop, this.crashed]);
      } catch (error) {
        // The worker died under the cell: report it to the model and start a fresh one.
        controller.abort();
        this.terminate();
        if (!this.closed) this.start().catch(() => undefined);
        return restartedCellResult(
          'ReplCrashedError',
          `the Python worker died while running this cell (${(error as Error).message}); it was restarted with the contexts reloaded, and other variables were lost. Use less memory, e.g. process the context in slices.`,
          started,
        );
      }
      if (typeof first === 'object') return this.toResult(first, performance.now() - started);
      // Timed out or aborted: stop the sub-calls, then the Python code.
      controller.abort(first === 'timeout' ? new DOMException('cell timeout', 'TimeoutError') : options.signal?.reason);
      return await this.stopCell(running, first, code, options.timeoutMs, started);
    } finally {
      deadline.dispose();
      if (this.cellController === controller) this.cellController = undefined;
    }
  }

  private toResult(output: CellOutput, wallMs: number, extra?: Partial<CellResult>): CellResult {
    return {
      stdout: output.stdout,
      stderr: output.stderr,
      locals: output.locals,
      previews: output.previews,
      executionTimeMs: Math.max(output.execution_time * 1000, 0) || wallMs,
      finalAnswer: output.final_answer,
      errorType: output.error_type,
      interrupted: output.interrupted,
      restarted: false,
      ...extra,
    };
  }

  private async stopCell(running: Promise<CellOutput>, why: 'timeout' | 'abort', code: string, timeoutMs: number, started: number): Promise<CellResult> {
    const reason = why === 'timeout' ? `the cell ran longer than cellTimeoutMs (${timeoutMs} ms)` : 'the run was stopped';
    const interrupt = this.interruptBuffer ? () => (this.interruptBuffer![0] = INTERRUPT_SIGNAL) : this.worker?.interrupt;
    if (interrupt) {
      interrupt();
      const grace = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), this.options.interruptGraceMs ?? 2000));
      const output = await Promise.race([running.catch(() => undefined), grace]);
      if (output) {
        return this.toResult(output, performance.now() - started, {
          stderr: `${output.stderr}KeyboardInterrupt: ${reason}, so it was interrupted. Variables set before that point are kept.\n`,
          errorType: 'KeyboardInterrupt',
          interrupted: true,
        });
      }
    }
    // No interrupt available (or it did not take): restart the worker.
    this.terminate();
    if (why === 'timeout' && !this.closed) {
      // Reboot right away so that the next LM call overlaps it.
      this.start().catch(() => undefined);
    }
    const reloaded = ['context', ...this.contexts.filter((c) => c.index > 0).map((c) => `context_${c.index}`), ...this.variables.keys(), ...this.tools.map((t) => t.name)];
    return restartedCellResult(
      'TimeoutError',
      `${reason}, so the REPL was restarted. ${[...new Set(reloaded)].join(', ')} were reloaded; every other variable was lost and must be recomputed.`,
      started,
    );
  }

  /** Boots a fresh worker and puts back contexts, reserved variables and tools. */
  private restore(): Promise<ReplInfo> {
    const contexts = [...this.contexts];
    const variables = [...this.variables];
    const tools = this.tools;
    return this.boot()
      .then(async (info) => {
        const api = this.remote!;
        for (const c of contexts) await this.sendContext(api, c.index, c.context);
        for (const [name, value] of variables) await api.setVariable(name, JSON.stringify(value ?? null), true);
        if (tools.length > 0) await this.sendTools(api, tools);
        return info;
      })
      .catch((error: unknown) => {
        this.terminate();
        throw error;
      });
  }

  private terminate(): void {
    this.closePort?.();
    this.closePort = undefined;
    this.remote?.[Comlink.releaseProxy]();
    this.worker?.terminate();
    this.worker = undefined;
    this.remote = undefined;
    this.booting = undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cellController?.abort();
    this.terminate();
  }
}

/** The isolation in force, or a ConfigurationError for options that cannot go together. */
function checkIsolation(options: PyodideEnvironmentOptions): Isolation {
  const isolation = options.isolation ?? 'sandbox';
  if (isolation !== 'sandbox' && isolation !== 'none') {
    throw new ConfigurationError(`isolation must be 'sandbox' (the default: no network, no storage for Python) or 'none' (a same-origin worker); got ${JSON.stringify(isolation)}.`);
  }
  if (isolation === 'sandbox' && options.workerURL !== undefined) {
    throw new ConfigurationError("environmentOptions.workerURL applies to isolation: 'none' only: the sandboxed worker is built into rlm-web and handed to its frame. Drop workerURL, or set isolation: 'none'.");
  }
  if (isolation === 'none' && options.sandboxURL !== undefined) {
    throw new ConfigurationError("environmentOptions.sandboxURL applies to isolation: 'sandbox' only. Drop it, or drop isolation: 'none'.");
  }
  return isolation;
}

export function createPyodideEnvironment(options: EnvironmentFactoryOptions): ReplEnvironment {
  return new PyodideRepl(options.host, options.environmentOptions as PyodideEnvironmentOptions);
}
