/**
 * One Pyodide interpreter in a Web Worker — in the isolation frame (`isolation: 'sandbox'`,
 * the default) or as a same-origin module worker ('none') — and the namespaces (tenants)
 * open in it. Boots the worker (from the memory snapshot the page keeps, replaced once when
 * it does not boot in time), answers the SharedArrayBuffer bridge (here, or through the
 * frame, which relays it), raises KeyboardInterrupt in one tenant's cell through the
 * interrupt buffer when the page is cross-origin isolated, and ends the worker.
 *
 * A process serves one REPL (the root's), or — on the JSPI bridge, where a cell suspended in
 * a sub-call frees the interpreter — the REPLs of many child RLMs at once, each in its own
 * namespace (see {@link sharedProcess}).
 */
import * as Comlink from 'comlink';
import { BridgeUnavailableError, ConfigurationError, ReplCrashedError } from '../core/errors';
import type { ReplInfo } from '../core/types';
import { parseRelayedCall, type RelayedReply } from '../protocol/frame';
import {
  encodeReply,
  makeInterruptBuffer,
  parseBootInfo,
  parseBridgeMessage,
  parseSharedCall,
  raiseInterrupt,
  writeSharedReply,
  type BootInfo,
  type BridgeReply,
  type HostReply,
  type HostRequest,
  type OutputStream,
  type SharedPayload,
  type TenantAPI,
  type WorkerAPI,
} from '../protocol/worker';
import { tenantClient, workerClient } from './worker-client';
import { resolveIndexURL } from './pyodide-files';
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
  /**
   * Where the child RLMs of one root run their Python. 'shared': as separate namespaces of
   * one interpreter (on the JSPI bridge a cell waiting for a sub-call lets another run): a
   * child's REPL is ready in milliseconds and costs a few MB, not a worker's ≈100 MB and
   * boot. Their variables stay apart; the interpreter's modules are shared, as in the
   * reference implementation, and a child cell that will not stop when interrupted
   * restarts the interpreter under its siblings (their cells are reported as restarted).
   * 'separate': a worker per concurrent child. 'shared' needs JSPI (Chromium 137+); without
   * it, or with `bridge: 'sab'`, children get their own workers. Default: 'shared'.
   */
  childInterpreters?: 'shared' | 'separate' | undefined;
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

class BootTimeoutError extends ReplCrashedError {
  override name = 'ReplCrashedError';
}

/**
 * What a tenant's namespace sends to the page, once checked: its requests (answered here as
 * replies, which the process encodes for Python on either bridge), its running cell's output,
 * and what was refused or dropped (with the reason).
 */
export interface TenantHost {
  call(request: HostRequest): Promise<HostReply>;
  output(stream: OutputStream, text: string): void;
  refused(reason: string): void;
}

/**
 * Requests one namespace may have waiting for the page at once. A cell waits for each of its
 * sub-calls, so a legitimate one has one at a time (a few with asyncio tricks on JSPI); more
 * is a cell posting requests without waiting, which would start LM calls past every lane.
 */
const MAX_WAITING_REQUESTS = 8;

/** A booted worker, as its tenants see it. */
export interface ProcessRun {
  info: ReplInfo;
  /** Rejects when this worker dies or is ended; every call of its tenants races it. */
  ended: Promise<never>;
}

/** One Pyodide worker and the namespaces open in it. */
export class PyodideProcess {
  readonly isolation: Isolation;
  private worker: ReplWorker | undefined;
  private remote: Comlink.Remote<WorkerAPI> | undefined;
  private booting: Promise<ProcessRun> | undefined;
  /** 'none' on a cross-origin isolated page: the page shares these bytes with its worker; 'sandbox': the frame holds them. */
  private readonly interruptBuffer: Uint8Array | undefined;
  /** A SharedArrayBuffer reply that did not fit, kept until the worker resumes with a larger buffer. */
  private pendingShared: { seq: number; payload: SharedPayload } | undefined;
  private closePort: (() => void) | undefined;
  private stop: ((error: Error) => void) | undefined;
  /** The hosts of the tenants open in the current worker. */
  private readonly hosts = new Map<number, TenantHost>();
  /** Requests of each tenant waiting for the page. */
  private readonly waiting = new Map<number, number>();
  /** Counts terminations: a worker created after its boot was given up on is ended at once. */
  private generation = 0;
  private nextTenant = 0;
  /** The REPLs that use this process (open or not): it ends when the last one is closed. */
  private users = 0;
  /** The tenants open in the current worker. */
  readonly tenants = new Set<number>();
  /** Messages from the worker refused or dropped since this process was made (see {@link TenantHost.refused}). */
  refusals = 0;

  constructor(
    private readonly options: PyodideEnvironmentOptions,
    /** Force a bridge (shared processes need JSPI). Default: options.bridge. */
    private readonly bridge: 'auto' | 'jspi' | 'sab' = options.bridge ?? 'auto',
  ) {
    this.isolation = checkIsolation(options);
    this.interruptBuffer = this.isolation === 'none' && typeof SharedArrayBuffer !== 'undefined' && globalThis.crossOriginIsolated ? makeInterruptBuffer() : undefined;
  }

  /** The running worker, booted on first use (and again after it ended). */
  start(): Promise<ProcessRun> {
    return (this.booting ??= this.boot());
  }

  /** A worker that has not booted within bootTimeoutMs is replaced once, booting without the snapshot. */
  private async boot(): Promise<ProcessRun> {
    try {
      try {
        return await this.bootOnce(this.options.snapshot ?? true);
      } catch (error) {
        if (!(error instanceof BootTimeoutError)) throw error;
        this.terminate();
        return await this.bootOnce(false);
      }
    } catch (error) {
      this.terminate();
      throw error;
    }
  }

  private async bootOnce(snapshot: boolean): Promise<ProcessRun> {
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
    let ended: Promise<never>;
    try {
      const sharedPort = this.sharedPort();
      const bridgePort = this.bridgePort();
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
      const remote = workerClient(worker.endpoint, (reason) => this.refuse(undefined, reason));
      this.remote = remote;
      const stopped = new Promise<never>((_, reject) => (this.stop = reject));
      ended = Promise.race([worker.crashed, stopped]);
      // A worker that dies is ended at once: its tenants' calls fail, and the next start() boots another.
      ended.catch(() => {
        if (this.generation === generation) this.terminate();
      });
      // 'sandbox': the frame took the shared-call port (it relays that bridge).
      const own = this.isolation === 'none' ? sharedPort : undefined;
      const options = { indexURL: own && this.options.indexURL, bridge: this.bridge, interruptBuffer: this.interruptBuffer, sharedPort: own, bridgePort, snapshot: stored ?? snapshot };
      try {
        const report: unknown = await Promise.race([remote.boot(Comlink.transfer(options, own ? [own, bridgePort] : [bridgePort])), ended, timedOut]);
        const checked = parseBootInfo(report);
        if (!checked) throw new Error('the worker sent a malformed boot report');
        boot = checked;
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
    const info: ReplInfo = { bridge: boot.bridge, interruptible: boot.interruptible, bootMs: boot.bootMs, runtime: `pyodide ${boot.pyodideVersion}`, snapshot: snapshotState, isolation: this.isolation };
    return { info, ended };
  }

  /**
   * The SharedArrayBuffer path: requests arrive on a port; replies go into shared memory —
   * written here ('none'), or sent to the isolation frame, which shares memory with its
   * worker and writes them ('sandbox').
   */
  private sharedPort(): MessagePort {
    const channel = new MessageChannel();
    const write = (buffer: SharedArrayBuffer, seq: number, payload: SharedPayload) => {
      if (writeSharedReply(buffer, seq, payload) === 'too-small') this.pendingShared = { seq, payload };
    };
    // 'none': the worker's own messages; 'sandbox': the frame's relay of them. Both parsed.
    channel.port1.onmessage = async ({ data }: MessageEvent<unknown>) => {
      const message = this.isolation === 'none' ? parseSharedCall(data) : parseRelayedCall(data);
      if (message.type === 'dropped') return this.refuse(undefined, message.reason);
      if (message.type === 'resume') {
        const pending = this.pendingShared;
        this.pendingShared = undefined;
        if (pending && pending.seq === message.seq) write(message.buffer, message.seq, pending.payload);
        return;
      }
      // The worker blocked in Atomics.wait holds one tenant: the only one open.
      const [tenant] = this.tenants;
      const payload = encodeReply(await this.answer(tenant, message.type === 'call' ? message.request : { refused: message.reason }));
      if ('buffer' in message && message.buffer instanceof SharedArrayBuffer) write(message.buffer, message.seq, payload);
      else channel.port1.postMessage({ type: 'reply', seq: message.seq, payload } satisfies RelayedReply, [payload.buffer as ArrayBuffer]);
    };
    this.closePort = () => channel.port1.close();
    return channel.port2;
  }

  /**
   * The bridge port (JSPI requests and every tenant's live output): each message parsed as
   * hostile input, requests answered with a reply message the worker matches by id.
   */
  private bridgePort(): MessagePort {
    const channel = new MessageChannel();
    const port = channel.port1;
    port.onmessage = async ({ data }: MessageEvent<unknown>) => {
      const message = parseBridgeMessage(data);
      switch (message.type) {
        case 'dropped':
          return this.refuse(undefined, message.reason);
        case 'output':
          return this.hosts.get(message.tenant)?.output(message.stream, message.text);
        default: {
          const payload = encodeReply(await this.answer(message.tenant, message.type === 'request' ? message.request : { refused: message.reason }));
          port.postMessage({ type: 'reply', id: message.id, payload } satisfies BridgeReply, [payload.buffer as ArrayBuffer]);
        }
      }
    };
    const closeShared = this.closePort;
    this.closePort = () => {
      closeShared?.();
      port.close();
    };
    return channel.port2;
  }

  /** The answer to one request of `tenant` (or to one the parser refused); never rejects. */
  private async answer(tenant: number | undefined, request: HostRequest | { refused: string }): Promise<HostReply> {
    const host = tenant === undefined ? undefined : this.hosts.get(tenant);
    if (!host || tenant === undefined) return { error: 'no REPL namespace of that number is open in this worker' };
    if ('refused' in request) {
      this.refuse(tenant, request.refused);
      return { error: `the request was refused: ${request.refused}` };
    }
    const waiting = this.waiting.get(tenant) ?? 0;
    if (waiting >= MAX_WAITING_REQUESTS) {
      const reason = `more than ${MAX_WAITING_REQUESTS} requests of one namespace were waiting for the page`;
      this.refuse(tenant, reason);
      return { error: `the request was refused: ${reason}` };
    }
    this.waiting.set(tenant, waiting + 1);
    try {
      return await host.call(request);
    } catch (error) {
      return { error: `the page could not answer: ${(error as Error).message ?? String(error)}` };
    } finally {
      this.waiting.set(tenant, (this.waiting.get(tenant) ?? 1) - 1);
    }
  }

  /** Counts a refused or dropped message and tells its tenant's host (every host, when it names none). */
  private refuse(tenant: number | undefined, reason: string): void {
    this.refusals++;
    const host = tenant === undefined ? undefined : this.hosts.get(tenant);
    for (const target of host ? [host] : this.hosts.values()) target.refused(reason);
  }

  /** Opens a namespace in the running worker; `host` answers its requests and takes its output. */
  async open(host: TenantHost): Promise<{ tenant: number; api: TenantAPI; run: ProcessRun }> {
    const run = await this.start();
    const remote = this.remote;
    if (!remote) throw new ReplCrashedError('The REPL worker is not running.');
    const tenant = this.nextTenant++;
    this.hosts.set(tenant, host);
    try {
      await Promise.race([remote.open(tenant), run.ended]);
    } catch (error) {
      this.hosts.delete(tenant);
      throw error;
    }
    this.tenants.add(tenant);
    return { tenant, api: tenantClient(remote, tenant), run };
  }

  /** Closes a namespace between cells (its variables and files go); the worker stays. */
  async close(tenant: number, api: TenantAPI, run: ProcessRun): Promise<void> {
    if (!this.tenants.delete(tenant)) return;
    this.hosts.delete(tenant);
    this.waiting.delete(tenant);
    try {
      await Promise.race([api.close(), run.ended]);
    } catch {
      // the worker ended meanwhile: nothing left to close
    }
  }

  retain(): void {
    this.users++;
  }

  /** A REPL that used this process is closed: the last one ends the worker. */
  release(): void {
    if (--this.users === 0) this.terminate();
  }

  /** KeyboardInterrupt in `tenant`'s running cell; false when this worker has no interrupt buffer. */
  interrupt(tenant: number): boolean {
    if (this.interruptBuffer) {
      raiseInterrupt(this.interruptBuffer, tenant);
      return true;
    }
    const viaFrame = this.worker?.interrupt;
    viaFrame?.(tenant);
    return Boolean(viaFrame);
  }

  /** Ends the worker and every namespace in it; the next start() boots another. */
  terminate(): void {
    this.generation++;
    this.booting = undefined;
    this.tenants.clear();
    this.hosts.clear();
    this.waiting.clear();
    this.stop?.(new ReplCrashedError('the REPL worker was stopped'));
    this.stop = undefined;
    this.closePort?.();
    this.closePort = undefined;
    this.remote?.[Comlink.releaseProxy]();
    this.worker?.terminate();
    this.worker = undefined;
    this.remote = undefined;
  }
}

/** The processes child RLMs share, one per group (the root's pool). */
const shared = new WeakMap<object, PyodideProcess>();

/**
 * The process the REPLs of `group` share, or undefined when they cannot share one: children
 * asked for their own workers, the SharedArrayBuffer bridge was forced, or the browser has
 * no JSPI (a worker blocked in Atomics.wait runs one namespace).
 */
export function sharedProcess(group: object, options: PyodideEnvironmentOptions): PyodideProcess | undefined {
  if ((options.childInterpreters ?? 'shared') !== 'shared' || options.bridge === 'sab') return undefined;
  if (typeof (WebAssembly as { Suspending?: unknown }).Suspending !== 'function') return undefined;
  let process = shared.get(group);
  if (!process) {
    process = new PyodideProcess(options, 'jspi');
    shared.set(group, process);
  }
  return process;
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
