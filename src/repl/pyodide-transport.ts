/**
 * Python in a Pyodide Web Worker: in the isolation frame (`isolation: 'sandbox'`, the
 * default) or as a same-origin module worker ('none'). Boots the worker (from the memory
 * snapshot the page keeps, replaced once when it does not boot in time), answers its
 * requests on either bridge — Comlink calls on the JSPI path, replies written into shared
 * memory on the SharedArrayBuffer path (here, or by the frame, which relays them) — and
 * interrupts cells through Pyodide's interrupt buffer when the page is cross-origin isolated.
 */
import * as Comlink from 'comlink';
import { BridgeUnavailableError, ConfigurationError, ReplCrashedError } from '../core/errors';
import type { ExecuteOptions, ReplInfo } from '../core/types';
import type { RelayedCall, RelayedReply } from '../protocol/frame';
import {
  encodeSharedReply,
  isOutputStream,
  writeSharedReply,
  type BootInfo,
  type ContextDescription,
  type HostEndpoint,
  type SharedCallMessage,
  type SharedPayload,
  type ToolSpec,
  type WorkerAPI,
} from '../protocol/worker';
import type { EncodedContext } from './context-bytes';
import { resolveIndexURL } from './pyodide-files';
import type { AnswerRequest, CellEnd, ReplTransport } from './restorable-repl';
import { deleteSnapshot, readSnapshot, writeSnapshot } from './snapshot-store';
import { createReplWorker, type Isolation, type ReplWorker } from './worker-factory';

/** Options of the Pyodide environment (`environmentOptions` with `environment: 'pyodide'`). */
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
  /** How long an interrupted cell may take to stop before the worker is restarted. Default: 5000 ms isolated ('sandbox'), 2000 ms with 'none'. */
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

const INTERRUPT_SIGNAL = 2; // SIGINT, as Pyodide's interrupt buffer expects

class BootTimeoutError extends ReplCrashedError {
  override name = 'ReplCrashedError';
}

/** The {@link ReplTransport} of {@link PyodideRepl}: one Pyodide worker at a time. */
export class PyodideTransport implements ReplTransport {
  readonly replaced = 'Python worker';
  private readonly isolation: Isolation;
  private worker: ReplWorker | undefined;
  private remote: Comlink.Remote<WorkerAPI> | undefined;
  private readonly interruptBuffer: Uint8Array | undefined;
  /** A SharedArrayBuffer reply that did not fit, kept until the worker resumes with a larger buffer. */
  private pendingShared: { seq: number; payload: SharedPayload } | undefined;
  private closePort: (() => void) | undefined;
  /** Rejects when the current worker dies (an uncaught error, out of memory) or is terminated. */
  private crashed: Promise<never> = new Promise<never>(() => undefined);
  private stop: ((error: Error) => void) | undefined;
  /** The running cell's `onOutput` (kept after it ends: a late chunk of it goes to its closed receiver). */
  private onOutput: ExecuteOptions['onOutput'];
  /** Counts terminations: a worker created after its boot was given up on is ended at once. */
  private generation = 0;

  constructor(private readonly options: PyodideEnvironmentOptions = {}) {
    this.isolation = checkIsolation(options);
    // 'none': the page shares this byte with its worker; 'sandbox': the frame holds one per worker.
    this.interruptBuffer =
      this.isolation === 'none' && typeof SharedArrayBuffer !== 'undefined' && globalThis.crossOriginIsolated ? new Uint8Array(new SharedArrayBuffer(1)) : undefined;
  }

  /** A worker that has not booted within bootTimeoutMs is replaced once, booting without the snapshot. */
  async boot(answer: AnswerRequest): Promise<ReplInfo> {
    try {
      return await this.bootOnce(answer, this.options.snapshot ?? true);
    } catch (error) {
      if (!(error instanceof BootTimeoutError)) throw error;
      this.terminate();
      return this.bootOnce(answer, false);
    }
  }

  private async bootOnce(answer: AnswerRequest, snapshot: boolean): Promise<ReplInfo> {
    const generation = this.generation;
    const indexURL = resolveIndexURL(this.options.indexURL);
    const snapshotKey = `${indexURL}rlm-web-snapshot-${this.isolation}.bin`;
    const timeoutMs = this.options.bootTimeoutMs ?? 60_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BootTimeoutError(`Pyodide did not start within ${timeoutMs} ms (environmentOptions.bootTimeoutMs).`)), timeoutMs);
    });
    timedOut.catch(() => undefined);
    let boot: BootInfo;
    let stored: Uint8Array | undefined;
    try {
      const sharedPort = this.sharedPort(answer);
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
      if (generation !== this.generation) {
        worker.terminate();
        throw new ReplCrashedError('the REPL worker was stopped while it started');
      }
      this.worker = worker;
      const remote = Comlink.wrap<WorkerAPI>(worker.endpoint);
      this.remote = remote;
      const stopped = new Promise<never>((_, reject) => (this.stop = reject));
      const crashed = Promise.race([worker.crashed, stopped]);
      crashed.catch(() => undefined);
      this.crashed = crashed;
      const endpoint: HostEndpoint = {
        call: answer,
        // What the worker posts is checked: the page never passes on anything but two strings.
        output: (stream, text) => {
          if (isOutputStream(stream) && typeof text === 'string') this.onOutput?.(stream, text);
        },
      };
      // 'sandbox': the frame took the shared-call port (it relays that bridge).
      const own = this.isolation === 'none' ? sharedPort : undefined;
      const options = { indexURL: own && this.options.indexURL, bridge: this.options.bridge ?? 'auto', interruptBuffer: this.interruptBuffer, sharedPort: own, snapshot: stored ?? snapshot };
      try {
        boot = await Promise.race([remote.boot(Comlink.transfer(options, own ? [own] : []), Comlink.proxy(endpoint)), crashed, timedOut]);
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
    return { bridge: boot.bridge, interruptible: boot.interruptible, bootMs: boot.bootMs, runtime: `pyodide ${boot.pyodideVersion}`, snapshot: snapshotState, isolation: this.isolation };
  }

  /**
   * The SharedArrayBuffer path: requests arrive on a port; replies go into shared memory —
   * written here ('none'), or sent to the isolation frame, which shares memory with its
   * worker and writes them ('sandbox').
   */
  private sharedPort(answer: AnswerRequest): MessagePort {
    const channel = new MessageChannel();
    const write = (buffer: SharedArrayBuffer, seq: number, payload: SharedPayload) => {
      if (writeSharedReply(buffer, seq, payload) === 'too-small') this.pendingShared = { seq, payload };
    };
    channel.port1.onmessage = async ({ data }: MessageEvent<SharedCallMessage | RelayedCall>) => {
      if (data.type === 'call') {
        const payload = encodeSharedReply(await answer(data.request));
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

  private api(): Comlink.Remote<WorkerAPI> {
    if (!this.remote) throw new ReplCrashedError('The REPL worker is not running.');
    return this.remote;
  }

  loadContext(index: number, encoded: EncodedContext): Promise<ContextDescription> {
    if ('blob' in encoded) return this.api().loadContextBlob(index, encoded.blob, encoded.kind);
    return this.api().loadContext(index, Comlink.transfer(encoded.bytes, [encoded.bytes.buffer as ArrayBuffer]), encoded.kind);
  }

  setVariable(name: string, valueJSON: string, reserved: boolean): Promise<void> {
    return this.api().setVariable(name, valueJSON, reserved);
  }

  registerTools(tools: ToolSpec[]): Promise<void> {
    return this.api().registerTools(tools);
  }

  resolveVariable(name: string): Promise<string | null> {
    return this.api().resolveVariable(name);
  }

  reset(): Promise<void> {
    return this.api().reset();
  }

  async run(code: string, _cancel: AbortSignal, onOutput: ExecuteOptions['onOutput']): Promise<CellEnd> {
    if (this.interruptBuffer) this.interruptBuffer[0] = 0;
    this.onOutput = onOutput;
    const died = (error: unknown): CellEnd => ({
      kind: 'lost',
      errorType: 'ReplCrashedError',
      message: `the Python worker died while running this cell (${(error as Error).message ?? String(error)}). If it ran out of memory, use less, e.g. process the context in slices.`,
    });
    const output = this.api()
      .execute(code)
      .then((output): CellEnd => ({ kind: 'output', output }), died);
    return Promise.race([output, this.crashed.catch(died)]);
  }

  /** Through the page's interrupt buffer ('none'), or the frame's ('sandbox'), when the page is cross-origin isolated. */
  async interrupt(): Promise<boolean> {
    const interrupt = this.interruptBuffer ? () => (this.interruptBuffer![0] = INTERRUPT_SIGNAL) : this.worker?.interrupt;
    if (!interrupt) return false;
    interrupt();
    return true;
  }

  async discard(): Promise<void> {
    this.terminate();
  }

  private terminate(): void {
    this.generation++;
    this.stop?.(new ReplCrashedError('the REPL worker was stopped'));
    this.stop = undefined;
    this.closePort?.();
    this.closePort = undefined;
    this.remote?.[Comlink.releaseProxy]();
    this.worker?.terminate();
    this.worker = undefined;
    this.remote = undefined;
  }

  /** A worker does not go away between calls; a crash under a cell is reported by run(). */
  isLost(): boolean {
    return false;
  }

  closedError(): Error {
    return new ReplCrashedError('This REPL was closed.');
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
