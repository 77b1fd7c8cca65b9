/// <reference lib="webworker" />
/**
 * The REPL worker: boots Pyodide, loads the rlm runtime module, and bridges Python's
 * synchronous sub-calls to the page (JSPI or SharedArrayBuffer + Atomics.wait). The page
 * calls in through Comlink; everything the worker starts itself (a request, a chunk of live
 * output) goes out as a data message on the bridge port (src/protocol/worker.ts), which the
 * page checks — the page exposes nothing here.
 */
import * as Comlink from 'comlink';
import type { PyodideAPI } from 'pyodide';
import glueSource from '../python/pyodide_glue.py?raw';
import runtimeSource from '../python/rlm_runtime.py?raw';
import {
  armSharedBuffer,
  INITIAL_SHARED_BYTES,
  interruptTarget,
  readSharedReply,
  type BootInfo,
  type BootOptions,
  type BridgeKind,
  type BridgeMessage,
  type BridgeReply,
  type CellOutput,
  type ContextDescription,
  type ContextKind,
  type HostRequest,
  type OutputStream,
  type SharedCallMessage,
  type SharedPayload,
  type ToolSpec,
  type WorkerAPI,
} from '../protocol/worker';
import type { WorkerInit } from '../protocol/frame';
import { bootPyodide, sourceFromFiles, sourceFromURL } from './pyodide-source';

type PyCallable = ((...args: unknown[]) => unknown) & {
  callPromising(...args: unknown[]): Promise<unknown>;
  destroy(): void;
};

interface PythonSide {
  execute: PyCallable;
  loadContext: PyCallable;
  allocate: PyCallable;
  writeChunk: PyCallable;
  setVariable: PyCallable;
  registerTool: PyCallable;
  resolveVariable: PyCallable;
  reset: PyCallable;
  close: PyCallable;
}

/** Blob contexts travel to Python in slices of this size. */
const BLOB_CHUNK_BYTES = 8 * 1024 * 1024;
/** Atomics.wait slice between interrupt checks, in ms. */
const WAIT_SLICE_MS = 20;
/**
 * Pyodide's files ship next to this worker. Kept in a variable so that bundlers do not try
 * to resolve a directory as an asset (the rlm-web/vite plugin copies the files instead).
 */
const PYODIDE_DIR = './pyodide/';

let pyodide: PyodideAPI | undefined;
/** The glue's _rlm_make: one Python side per tenant. */
let make: PyCallable | undefined;
let bridge: BridgeKind = 'jspi';
let sharedPort: MessagePort | undefined;
let shared: SharedArrayBuffer | undefined;
let sharedSeq = 0;
/** The bridge port: requests and output to the page, replies back. */
let bridgePort: MessagePort | undefined;
/** Requests waiting for the page's reply (JSPI bridge), by id. */
const waiting = new Map<number, (payload: SharedPayload) => void>();
let nextRequest = 0;
let interruptBuffer: Uint8Array | undefined;
/** The interrupt buffer's tenant slot: which namespace a pending interrupt is meant for. */
let interruptFor: Int32Array | undefined;
/** The open namespaces, each with its calls in order. */
const tenants = new Map<number, Tenant>();

function ready(): { pyodide: PyodideAPI; make: PyCallable; port: MessagePort } {
  if (!pyodide || !make || !bridgePort) throw new Error('The REPL worker has not booted: call boot() first.');
  return { pyodide, make, port: bridgePort };
}

/** The JSPI bridge: post the request, and settle when the page's reply arrives. */
function callPage(tenant: number, request: HostRequest): Promise<SharedPayload> {
  const { port } = ready();
  const id = ++nextRequest;
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    port.postMessage({ type: 'request', tenant, id, request } satisfies BridgeMessage);
  });
}

function listen(port: MessagePort): void {
  port.onmessage = ({ data }: MessageEvent<BridgeReply>) => {
    const resolve = data?.type === 'reply' ? waiting.get(data.id) : undefined;
    if (!resolve) return;
    waiting.delete(data.id);
    resolve(data.payload);
  };
}

async function detectJSPI(api: PyodideAPI): Promise<boolean> {
  if (typeof (WebAssembly as { Suspending?: unknown }).Suspending !== 'function') return false;
  try {
    return Boolean(await api.runPythonAsync('from pyodide.ffi import can_run_sync\ncan_run_sync()'));
  } catch {
    return false;
  }
}

/** The SharedArrayBuffer bridge: post the request, then block until the page replies. */
function callShared(_tenant: number, request: HostRequest): SharedPayload {
  const api = ready().pyodide;
  const port = sharedPort;
  if (!port) throw new Error('no shared-call port');
  const seq = ++sharedSeq;
  let buffer = shared ?? (shared = new SharedArrayBuffer(INITIAL_SHARED_BYTES));
  armSharedBuffer(buffer, seq);
  port.postMessage({ type: 'call', request, buffer, seq } satisfies SharedCallMessage);
  for (;;) {
    const read = readSharedReply(buffer, WAIT_SLICE_MS, () => api.checkInterrupt());
    if (read.status === 'ready') return read.reply;
    if (read.status === 'too-small') {
      buffer = shared = read.buffer;
      armSharedBuffer(buffer, seq);
      port.postMessage({ type: 'resume', buffer, seq } satisfies SharedCallMessage);
    }
  }
}

export const api: WorkerAPI = {
  async boot(options: BootOptions): Promise<BootInfo> {
    const started = performance.now();
    sharedPort = options.sharedPort ?? handed?.sharedPort;
    bridgePort = options.bridgePort;
    listen(bridgePort);
    const source = handed ? await sourceFromFiles(handed.files) : await sourceFromURL(new URL(options.indexURL ?? PYODIDE_DIR, import.meta.url).href);
    const config = {
      // JSON null (tool results, replies) must be Python None, not pyodide's jsnull.
      convertNullToNone: true,
      stdout: () => undefined,
      stderr: () => undefined,
    };
    const booted = await bootPyodide(source, config, options.snapshot);
    const loaded = booted.pyodide;
    // SAB is the faster bridge (no stack switching) and can be interrupted while blocked,
    // so 'auto' prefers it whenever the page is cross-origin isolated.
    const sabAvailable = typeof SharedArrayBuffer !== 'undefined' && self.crossOriginIsolated;
    const jspiAvailable = options.bridge !== 'sab' && !(options.bridge === 'auto' && sabAvailable) && (await detectJSPI(loaded));
    if (options.bridge === 'jspi' && !jspiAvailable) {
      throw new Error('bridge "jspi" was requested but this browser has no JSPI (WebAssembly.Suspending).');
    }
    if (options.bridge === 'sab' && !sabAvailable) {
      throw new Error('bridge "sab" was requested but the page is not cross-origin isolated (serve it with COOP: same-origin and COEP: require-corp).');
    }
    const jspi = options.bridge === 'jspi' || (options.bridge === 'auto' && !sabAvailable && jspiAvailable);
    if (!jspi && !sabAvailable) {
      throw new Error(
        'rlm-web needs either JSPI (WebAssembly JavaScript Promise Integration, Chromium 137+) or a ' +
          'cross-origin isolated page (COOP: same-origin, COEP: require-corp) for SharedArrayBuffer.',
      );
    }
    bridge = jspi ? 'jspi' : 'sab';
    interruptBuffer = options.interruptBuffer ?? handed?.interruptBuffer;
    if (interruptBuffer) {
      loaded.setInterruptBuffer(interruptBuffer);
      if (interruptBuffer.buffer.byteLength >= 8) interruptFor = interruptTarget(interruptBuffer);
    }
    loaded.FS.mkdirTree('/rlm');
    loaded.FS.writeFile('/rlm/rlm_runtime.py', runtimeSource);
    make = loaded.runPython(glueSource) as PyCallable;
    pyodide = loaded;
    const info: BootInfo = {
      bridge,
      pyodideVersion: loaded.version,
      bootMs: performance.now() - started,
      interruptible: Boolean(interruptBuffer),
      snapshot: booted.snapshot,
      madeSnapshot: booted.made,
    };
    return booted.made ? Comlink.transfer(info, [booted.made.buffer as ArrayBuffer]) : info;
  },

  async open(tenant: number): Promise<void> {
    const { make, port } = ready();
    if (tenants.has(tenant)) throw new Error(`tenant ${tenant} is already open in this worker`);
    // Blocked in Atomics.wait during a sub-call, the worker could not run another namespace.
    if (bridge === 'sab' && tenants.size > 0) throw new Error('a REPL worker on the SharedArrayBuffer bridge holds one namespace');
    // Either way Python gets the reply as the page encoded it (a Promise of it on JSPI).
    const send = bridge === 'jspi' ? callPage : callShared;
    const call = (request: HostRequest) => send(tenant, request);
    // Queries are built here from plain arguments: converting a Python dict costs more than
    // the rest of a 1 KB call on Python's side. `model` and `schema` arrive undefined for None.
    const query = (op: 'llm_query' | 'rlm_query', prompts: string[], model: string | undefined, schema: Record<string, never> | undefined) =>
      call(schema === undefined ? { op, prompts, model: model ?? null } : { op, prompts, model: model ?? null, schema });
    // Posted at once, also on the SharedArrayBuffer bridge, where the worker blocks in
    // Atomics.wait during sub-calls: the page reads it whenever it comes.
    const output = (stream: OutputStream, text: string) => port.postMessage({ type: 'output', tenant, stream, text } satisfies BridgeMessage);
    const readTarget = interruptFor ? () => Atomics.load(interruptFor!, 0) : () => null;
    const side = make(call, query, bridge === 'jspi', output, tenant, readTarget) as { get(key: string): PyCallable; destroy(): void };
    const names: (keyof PythonSide)[] = ['execute', 'loadContext', 'allocate', 'writeChunk', 'setVariable', 'registerTool', 'resolveVariable', 'reset', 'close'];
    const py = Object.fromEntries(names.map((name) => [name, side.get(name)])) as unknown as PythonSide;
    side.destroy();
    tenants.set(tenant, new Tenant(tenant, py));
  },

  loadContext: (tenant, index, bytes, kind) => namespace(tenant).loadContext(index, bytes, kind),
  loadContextBlob: (tenant, index, blob, kind) => namespace(tenant).loadContextBlob(index, blob, kind),
  setVariable: (tenant, name, valueJSON, reserved) => namespace(tenant).setVariable(name, valueJSON, reserved),
  registerTools: (tenant, tools) => namespace(tenant).registerTools(tools),
  execute: (tenant, code) => namespace(tenant).execute(code),
  resolveVariable: (tenant, name) => namespace(tenant).resolveVariable(name),
  reset: (tenant) => namespace(tenant).reset(),
  close: (tenant) => namespace(tenant).close(),
};

function namespace(tenant: number): Tenant {
  const found = tenants.get(tenant);
  if (!found) throw new Error(`tenant ${tenant} is not open in this worker`);
  return found;
}

/** One namespace. Its calls run one at a time (a cell suspended in a sub-call holds it); other tenants' run meanwhile. */
class Tenant {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly tenant: number,
    private readonly py: PythonSide,
  ) {}

  private serialized<T>(task: () => Promise<T> | T): Promise<T> {
    const guarded = () => {
      if (this.closed) throw new Error(`tenant ${this.tenant} was closed`);
      return task();
    };
    const next = this.queue.then(guarded, guarded);
    this.queue = next.catch(() => undefined);
    return next;
  }

  loadContext(index: number, bytes: Uint8Array, kind: ContextKind): Promise<ContextDescription> {
    return this.serialized(() => JSON.parse(this.py.loadContext(index, bytes, kind) as string) as ContextDescription);
  }

  loadContextBlob(index: number, blob: Blob, kind: ContextKind): Promise<ContextDescription> {
    const py = this.py;
    return this.serialized(async () => {
      const target = py.allocate(blob.size) as { destroy(): void };
      try {
        for (let offset = 0; offset < blob.size; offset += BLOB_CHUNK_BYTES) {
          const chunk = new Uint8Array(await blob.slice(offset, offset + BLOB_CHUNK_BYTES).arrayBuffer());
          py.writeChunk(target, offset, chunk);
        }
        return JSON.parse(py.loadContext(index, target, kind) as string) as ContextDescription;
      } finally {
        target.destroy();
      }
    });
  }

  setVariable(name: string, valueJSON: string, reserved: boolean): Promise<void> {
    return this.serialized(() => {
      this.py.setVariable(name, valueJSON, reserved);
    });
  }

  registerTools(tools: ToolSpec[]): Promise<void> {
    return this.serialized(() => {
      for (const tool of tools) this.py.registerTool(tool.name, tool.kind, tool.valueJSON ?? null);
    });
  }

  execute(code: string): Promise<CellOutput> {
    return this.serialized(async () => {
      // A signal meant for this tenant's previous cell that arrived after it ended must not hit this one.
      if (interruptBuffer && (!interruptFor || Atomics.load(interruptFor, 0) === this.tenant)) Atomics.store(interruptBuffer, 0, 0);
      const raw = bridge === 'jspi' ? await this.py.execute.callPromising(code) : this.py.execute(code);
      return JSON.parse(raw as string) as CellOutput;
    });
  }

  resolveVariable(name: string): Promise<string | null> {
    return this.serialized(() => (this.py.resolveVariable(name) as string | undefined) ?? null);
  }

  reset(): Promise<void> {
    return this.serialized(() => {
      this.py.reset();
    });
  }

  close(): Promise<void> {
    return this.serialized(() => {
      this.closed = true;
      tenants.delete(this.tenant);
      try {
        this.py.close();
      } finally {
        for (const fn of Object.values(this.py)) fn.destroy();
      }
    });
  }
}

/** Pyodide's files and the interrupt buffer, when the isolation frame started this worker. */
let handed: Omit<WorkerInit, 'port'> | undefined;

/** Serves the API on `endpoint`; `files` when the page handed Pyodide in (isolated worker). */
export function serve(endpoint: Comlink.Endpoint, files?: Omit<WorkerInit, 'port'>): void {
  handed = files;
  Comlink.expose(api, endpoint);
}
