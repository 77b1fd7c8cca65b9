/// <reference lib="webworker" />
/**
 * The REPL worker: boots Pyodide, loads the rlm runtime module, and bridges Python's
 * synchronous sub-calls to the page (JSPI or SharedArrayBuffer + Atomics.wait).
 */
import * as Comlink from 'comlink';
import type { PyodideAPI } from 'pyodide';
import glueSource from '../python/pyodide_glue.py?raw';
import runtimeSource from '../python/rlm_runtime.py?raw';
import {
  armSharedBuffer,
  INITIAL_SHARED_BYTES,
  packReply,
  readSharedReply,
  type BootInfo,
  type BootOptions,
  type BridgeKind,
  type CellOutput,
  type ContextDescription,
  type ContextKind,
  type HostEndpoint,
  type HostRequest,
  type OutputStream,
  type PackedReply,
  type SharedCallMessage,
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
let py: PythonSide | undefined;
let bridge: BridgeKind = 'jspi';
let host: Comlink.Remote<HostEndpoint> | undefined;
let sharedPort: MessagePort | undefined;
let shared: SharedArrayBuffer | undefined;
let sharedSeq = 0;
let interruptBuffer: Uint8Array | undefined;
/** Python code keeps running while a JSPI call is suspended: one entry at a time. */
let queue: Promise<unknown> = Promise.resolve();
function serialized<T>(task: () => Promise<T> | T): Promise<T> {
  const next = queue.then(task, task);
  queue = next.catch(() => undefined);
  return next;
}

function ready(): { pyodide: PyodideAPI; py: PythonSide } {
  if (!pyodide || !py) throw new Error('The REPL worker has not booted: call boot() first.');
  return { pyodide, py };
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
function callShared(request: HostRequest): PackedReply {
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
  async boot(options: BootOptions, endpoint: HostEndpoint): Promise<BootInfo> {
    const started = performance.now();
    host = endpoint as unknown as Comlink.Remote<HostEndpoint>;
    sharedPort = options.sharedPort ?? handed?.sharedPort;
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
    if (interruptBuffer) loaded.setInterruptBuffer(interruptBuffer);
    loaded.FS.mkdirTree('/rlm');
    loaded.FS.writeFile('/rlm/rlm_runtime.py', runtimeSource);
    const make = loaded.runPython(glueSource) as PyCallable;
    const call = jspi ? async (request: HostRequest) => packReply(await host!.call(request)) : callShared;
    // Fire and forget: Comlink posts at once, and its reply is read whenever the worker is free.
    const output = (stream: OutputStream, text: string) => void host!.output(stream, text).catch(() => undefined);
    const side = make(call, jspi, output) as { get(key: string): PyCallable; destroy(): void };
    const names: (keyof PythonSide)[] = ['execute', 'loadContext', 'allocate', 'writeChunk', 'setVariable', 'registerTool', 'resolveVariable', 'reset'];
    py = Object.fromEntries(names.map((name) => [name, side.get(name)])) as unknown as PythonSide;
    side.destroy();
    make.destroy();
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

  loadContext(index: number, bytes: Uint8Array, kind: ContextKind): Promise<ContextDescription> {
    return serialized(() => JSON.parse(ready().py.loadContext(index, bytes, kind) as string));
  },

  loadContextBlob(index: number, blob: Blob, kind: ContextKind): Promise<ContextDescription> {
    return serialized(async () => {
      const { py } = ready();
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
  },

  setVariable(name: string, valueJSON: string, reserved: boolean): Promise<void> {
    return serialized(() => {
      ready().py.setVariable(name, valueJSON, reserved);
    });
  },

  registerTools(tools: ToolSpec[]): Promise<void> {
    return serialized(() => {
      const { py } = ready();
      for (const tool of tools) py.registerTool(tool.name, tool.kind, tool.valueJSON ?? null);
    });
  },

  execute(code: string): Promise<CellOutput> {
    return serialized(async () => {
      const { py } = ready();
      // A signal meant for the previous cell that arrived after it ended must not hit this one.
      if (interruptBuffer) interruptBuffer[0] = 0;
      const raw = bridge === 'jspi' ? await py.execute.callPromising(code) : py.execute(code);
      return JSON.parse(raw as string) as CellOutput;
    });
  },

  resolveVariable(name: string): Promise<string | null> {
    return serialized(() => (ready().py.resolveVariable(name) as string | undefined) ?? null);
  },

  reset(): Promise<void> {
    return serialized(() => {
      ready().py.reset();
    });
  },
};

/** Pyodide's files and the interrupt buffer, when the isolation frame started this worker. */
let handed: Omit<WorkerInit, 'port'> | undefined;

/** Serves the API on `endpoint`; `files` when the page handed Pyodide in (isolated worker). */
export function serve(endpoint: Comlink.Endpoint, files?: Omit<WorkerInit, 'port'>): void {
  handed = files;
  Comlink.expose(api, endpoint);
}
