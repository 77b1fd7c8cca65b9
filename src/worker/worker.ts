/// <reference lib="webworker" />
/**
 * The REPL worker: boots Pyodide, loads the rlm runtime module, and bridges Python's
 * synchronous sub-calls to the page (JSPI or SharedArrayBuffer + Atomics.wait).
 */
import * as Comlink from 'comlink';
import type { PyodideAPI } from 'pyodide';
import runtimeSource from '../python/rlm_runtime.py?raw';
import {
  SHARED_FORMAT_RESULTS,
  SHARED_HEADER_BYTES,
  SHARED_SLOT_FORMAT,
  SHARED_SLOT_LENGTH,
  SHARED_SLOT_SEQ,
  SHARED_SLOT_STATUS,
  SHARED_STATUS_PENDING,
  SHARED_STATUS_READY,
  SHARED_STATUS_TOO_SMALL,
  type BootInfo,
  type BootOptions,
  type BridgeKind,
  type CellOutput,
  type ContextDescription,
  type ContextKind,
  type HostEndpoint,
  type HostReply,
  type HostRequest,
  type SharedCallMessage,
  type ToolSpec,
  type WorkerAPI,
} from './protocol';
import type { WorkerInit } from '../frame/protocol';
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
const INITIAL_SHARED_BYTES = 1 << 20;
/**
 * Pyodide's files ship next to this worker. Kept in a variable so that bundlers do not try
 * to resolve a directory as an asset (the rlm-web/vite plugin copies the files instead).
 */
const PYODIDE_DIR = './pyodide/';

const GLUE = `
import json, sys
sys.path.insert(0, "/rlm")
import rlm_runtime

from js import Object
from pyodide.ffi import to_js

def _rlm_unpack(packed):
    # Query results arrive as one UTF-8 buffer plus byte lengths: bytes.decode is native,
    # while converting a JS string to str costs milliseconds per 500 KB.
    if packed.kind == "results":
        data = packed.bytes.to_bytes()
        out, pos = [], 0
        for n in packed.lengths.to_py():
            out.append(data[pos:pos + n].decode("utf-8"))
            pos += n
        return {"results": out}
    return json.loads(packed.json)

def _rlm_make(call, jspi):
    if jspi:
        from pyodide.ffi import run_sync
        def transport(req):
            return _rlm_unpack(run_sync(call(to_js(req, dict_converter=Object.fromEntries))))
    else:
        def transport(req):
            return _rlm_unpack(call(to_js(req, dict_converter=Object.fromEntries)))
    rt = rlm_runtime.Runtime(transport)

    def write_chunk(buf, offset, chunk):
        chunk.assign_to(memoryview(buf)[offset:offset + chunk.byteLength])

    return {
        "execute": lambda code: json.dumps(rt.execute(code)),
        "loadContext": lambda i, data, kind: json.dumps(rt.load_context(i, data, kind)),
        "allocate": lambda n: bytearray(n),
        "writeChunk": write_chunk,
        "setVariable": rt.set_variable_json,
        "registerTool": rt.register_tool,
        "resolveVariable": rt.resolve_variable,
        "reset": rt.reset,
    }

_rlm_make
`;

let pyodide: PyodideAPI | undefined;
let py: PythonSide | undefined;
let bridge: BridgeKind = 'jspi';
let host: Comlink.Remote<HostEndpoint> | undefined;
let sharedPort: MessagePort | undefined;
let shared: SharedArrayBuffer | undefined;
let sharedSeq = 0;
let interruptBuffer: Uint8Array | undefined;
const decoder = new TextDecoder();

type PackedReply = { kind: 'results'; bytes: Uint8Array; lengths: number[] } | { kind: 'json'; json: string };

const encoder = new TextEncoder();

/** A reply in the form Python reads fastest (see _rlm_unpack). */
function pack(reply: HostReply): PackedReply {
  if (!('results' in reply)) return { kind: 'json', json: JSON.stringify(reply) };
  let total = 0;
  for (const r of reply.results) total += r.length;
  let bytes = new Uint8Array(total + 16);
  const lengths: number[] = [];
  let written = 0;
  for (const r of reply.results) {
    // ASCII fits in length bytes; grow (rarely) for the worst case of 3 bytes per unit.
    if (bytes.length - written < r.length * 3) {
      const grown = new Uint8Array(Math.max(bytes.length * 2, written + r.length * 3));
      grown.set(bytes.subarray(0, written));
      bytes = grown;
    }
    const n = encoder.encodeInto(r, bytes.subarray(written)).written;
    lengths.push(n);
    written += n;
  }
  return { kind: 'results', bytes: bytes.subarray(0, written), lengths };
}

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
  let header = new Int32Array(buffer, 0, 4);
  Atomics.store(header, SHARED_SLOT_STATUS, SHARED_STATUS_PENDING);
  Atomics.store(header, SHARED_SLOT_SEQ, seq);
  port.postMessage({ type: 'call', request, buffer, seq } satisfies SharedCallMessage);
  for (;;) {
    while (Atomics.wait(header, SHARED_SLOT_STATUS, SHARED_STATUS_PENDING, WAIT_SLICE_MS) === 'timed-out') {
      api.checkInterrupt();
    }
    const status = Atomics.load(header, SHARED_SLOT_STATUS);
    const length = Atomics.load(header, SHARED_SLOT_LENGTH);
    if (status === SHARED_STATUS_READY) {
      // Copy out of shared memory (TextDecoder and Python refuse shared views).
      const payload = new Uint8Array(buffer, SHARED_HEADER_BYTES, length).slice();
      if (Atomics.load(header, SHARED_SLOT_FORMAT) === SHARED_FORMAT_RESULTS) {
        const view = new DataView(payload.buffer);
        const count = view.getInt32(0, true);
        const lengths: number[] = [];
        for (let i = 0; i < count; i++) lengths.push(view.getInt32(4 + 4 * i, true));
        return { kind: 'results', bytes: payload.subarray(4 + 4 * count), lengths };
      }
      return { kind: 'json', json: decoder.decode(payload) };
    }
    if (status !== SHARED_STATUS_TOO_SMALL) throw new Error(`bad shared reply status ${status}`);
    const size = SHARED_HEADER_BYTES + Math.max(length, buffer.byteLength * 2);
    buffer = shared = new SharedArrayBuffer(size);
    header = new Int32Array(buffer, 0, 4);
    Atomics.store(header, SHARED_SLOT_STATUS, SHARED_STATUS_PENDING);
    Atomics.store(header, SHARED_SLOT_SEQ, seq);
    port.postMessage({ type: 'resume', buffer, seq } satisfies SharedCallMessage);
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
    const make = loaded.runPython(GLUE) as PyCallable;
    const call = jspi ? async (request: HostRequest) => pack(await host!.call(request)) : callShared;
    const side = make(call, jspi) as { get(key: string): PyCallable; destroy(): void };
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
