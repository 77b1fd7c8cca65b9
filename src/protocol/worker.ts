/**
 * The page↔worker boundary: the wire types of the REPL worker's Comlink API, its boot
 * options, and the SharedArrayBuffer reply codec (the page encodes, the worker decodes).
 * Both sides import this file and nothing else of each other; it imports nothing from src/
 * but the other protocol modules.
 */
import type { ProxyMarked } from 'comlink';
import type { CellOutput, ContextDescription, ContextKind, OutputStream } from './stdio';

/** How Python's synchronous `llm_query` waits for the page. */
export type BridgeKind = 'jspi' | 'sab';

/** A request made by Python code (sub-call or custom tool) for the page to answer. */
export type HostRequest =
  /** `schema`: a JSON Schema each reply must match; the results are then JSON texts (or "Error: ..."). */
  | { op: 'llm_query' | 'rlm_query'; prompts: string[]; model: string | null; schema?: Record<string, unknown> | null }
  | { op: 'tool'; name: string; args: unknown[]; kwargs: Record<string, unknown> };

/**
 * The page's answer: `results` for queries (one per prompt), `value` for tools. `interrupted`:
 * the page is stopping the cell that made the request (it raises KeyboardInterrupt there).
 */
export type HostReply = { results: string[] } | { value: unknown } | { error: string; interrupted?: true };

/**
 * Page-side object the worker calls (through Comlink) when Python needs the page, on the
 * JSPI path. Requests are structured-cloned; replies come back encoded by the page
 * ({@link encodeReply}, transferred), the same bytes the SharedArrayBuffer path writes, so
 * that Python decodes both alike and the worker does no work on them. No JSON on the hot
 * path (JSON in Pyodide costs more than the round trip itself).
 */
export interface HostEndpoint {
  call(request: HostRequest): Promise<SharedPayload>;
  /**
   * What the running cell printed since the last call (throttled by the runtime). The worker
   * does not wait for it: it posts and goes on, also on the SharedArrayBuffer bridge, where it
   * blocks in Atomics.wait during sub-calls and could not read a reply.
   */
  output(stream: OutputStream, text: string): void;
}

/**
 * SharedArrayBuffer path: the worker posts this on a dedicated MessagePort (no reply
 * message: the worker is blocked in Atomics.wait and could not read one). The page writes
 * the reply into `buffer` with {@link writeSharedReply} and wakes the worker, which reads it
 * with {@link readSharedReply}.
 */
export type SharedCallMessage =
  | { type: 'call'; request: HostRequest; buffer: SharedArrayBuffer; seq: number }
  /** After status 'too-small': write the pending reply of call `seq` into this larger buffer. */
  | { type: 'resume'; buffer: SharedArrayBuffer; seq: number };

/**
 * The interrupt buffer: 8 shared bytes. Byte 0 is Pyodide's signal byte; the Int32 at byte 4
 * names the tenant (see {@link WorkerAPI.open}) the interrupt is meant for: in a worker that
 * runs several namespaces, only that one gets KeyboardInterrupt.
 */
export const INTERRUPT_BUFFER_BYTES = 8;
const INTERRUPT_SIGNAL = 2; // SIGINT, as Pyodide's interrupt buffer expects

/** A new interrupt buffer (needs SharedArrayBuffer). */
export function makeInterruptBuffer(): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(INTERRUPT_BUFFER_BYTES), 0, 1);
}

/** Raises KeyboardInterrupt in `tenant`'s running cell: names it, then sets the signal byte. */
export function raiseInterrupt(buffer: Uint8Array, tenant: number): void {
  Atomics.store(interruptTarget(buffer), 0, tenant);
  Atomics.store(buffer, 0, INTERRUPT_SIGNAL);
}

/** The tenant slot of an interrupt buffer. */
export function interruptTarget(buffer: Uint8Array): Int32Array {
  return new Int32Array(buffer.buffer, 4, 1);
}

/** What the page hands the worker at boot (`WorkerAPI.boot`). */
export interface BootOptions {
  /** Where pyodide.mjs and its runtime files are served; default: ./pyodide/ next to the worker. */
  indexURL: string | undefined;
  /** Which bridge to use; 'auto' prefers SAB when the page is cross-origin isolated, else JSPI. */
  bridge: 'auto' | BridgeKind;
  /** The interrupt buffer ({@link makeInterruptBuffer}), when the page is cross-origin isolated. */
  interruptBuffer: Uint8Array | undefined;
  /** Port for SharedCallMessage, used when the bridge is 'sab' (absent when the isolation frame relays). */
  sharedPort: MessagePort | undefined;
  /**
   * A memory snapshot to boot from (the page read it and checked its digest), or whether to
   * make one (returned in `BootInfo.madeSnapshot` for the page to store). The worker never
   * touches storage itself.
   */
  snapshot: Uint8Array | boolean;
}

/** What the worker reports once Pyodide is up. */
export interface BootInfo {
  bridge: BridgeKind;
  pyodideVersion: string;
  bootMs: number;
  /** Whether KeyboardInterrupt can be raised in running code (needs SharedArrayBuffer). */
  interruptible: boolean;
  /** 'loaded': booted from the given snapshot; 'made': booted plainly and made one; 'none'. */
  snapshot: 'loaded' | 'made' | 'none';
  /** The snapshot made at this boot, before any user code ran (transferred). */
  madeSnapshot?: Uint8Array | undefined;
}

// What the Python runtime reports is the same whichever transport carries it (Pyodide here,
// stdio in a remote sandbox): one definition, in the stdio protocol.
export type { CellOutput, ContextDescription, ContextKind, OutputStream } from './stdio';
export { isOutputStream } from './stdio';

/** A custom tool as Python registers it: functions call back to the page, data is bound as a value. */
export interface ToolSpec {
  name: string;
  kind: 'function' | 'data';
  /** JSON text of the value, for data tools. */
  valueJSON?: string;
}

/**
 * The API the worker exposes to the page (through Comlink): one Pyodide interpreter, and in
 * it one Python namespace per tenant — the REPL of one run. A worker on the JSPI bridge runs
 * several tenants at once (a cell suspended in a sub-call lets another run), which is how
 * the child RLMs of one root share one interpreter; on the SharedArrayBuffer bridge a
 * worker blocks in every sub-call and holds one tenant.
 */
export interface WorkerAPI {
  boot(options: BootOptions): Promise<BootInfo>;
  /**
   * A new namespace, named by `tenant` (a number the page picks, unique in this worker),
   * whose sub-calls and output go to `host`. Returned as a Comlink proxy.
   */
  open(tenant: number, host: HostEndpoint): Promise<TenantAPI & ProxyMarked>;
}

/** One namespace of a REPL worker: a Python REPL. */
export interface TenantAPI {
  /** Bytes are UTF-8 text (kind 'text') or JSON text (kind 'json'); transferred, not copied. */
  loadContext(index: number, bytes: Uint8Array, kind: ContextKind): Promise<ContextDescription>;
  /** Streams a Blob into Python in chunks, so the whole file is never one JS buffer. */
  loadContextBlob(index: number, blob: Blob, kind: ContextKind): Promise<ContextDescription>;
  /** Binds a JSON value; reserved ones are restored after each cell like `context`. */
  setVariable(name: string, valueJSON: string, reserved: boolean): Promise<void>;
  registerTools(tools: ToolSpec[]): Promise<void>;
  execute(code: string): Promise<CellOutput>;
  /** str() of a variable for FINAL_VAR in response text, or null when it does not exist. */
  resolveVariable(name: string): Promise<string | null>;
  /** Drop every variable, tool and context: the namespace a new user gets. */
  reset(): Promise<void>;
  /** Drops the namespace and its files; the tenant cannot be used afterwards. */
  close(): Promise<void>;
}

// ------------------------------------------------------------------ the reply codec

/**
 * A reply as the page encodes it for Python, on both bridges: Int32 format, then for
 * RESULTS (query results) Int32 count, count × Int32 UTF-8 byte lengths and the UTF-8 texts
 * back to back — Python decodes them natively (src/python/pyodide_glue.py) — or for JSON the
 * UTF-8 JSON of any other reply. Returned through Comlink (JSPI, transferred) or written into
 * a shared buffer (SAB). One buffer, so that Python makes one call into JS to read it.
 */
export type SharedPayload = Uint8Array;

/** Payload formats (Python's glue knows them by number). */
export const FORMAT_JSON = 0;
export const FORMAT_RESULTS = 1;

/**
 * Layout of a shared reply buffer: Int32 status, Int32 payload byte length, Int32 call
 * sequence number (a late reply to an abandoned call must not land in the next one), an
 * Int32 of padding, then the payload.
 */
const HEADER_BYTES = 16;
const SLOT_STATUS = 0;
const SLOT_LENGTH = 1;
const SLOT_SEQ = 2;
const STATUS_PENDING = 0;
const STATUS_READY = 1;
/** The reply did not fit: the worker must send a larger buffer for the same call. */
const STATUS_TOO_SMALL = 2;

/** The first shared reply buffer a worker allocates; it grows when a reply does not fit. */
export const INITIAL_SHARED_BYTES = 1 << 20;

const encoder = new TextEncoder();

/**
 * Encodes a reply on the page (see {@link SharedPayload}) into one buffer sized for ASCII:
 * all-ASCII results are encoded joined, in one call; others one by one, the buffer grown
 * only for text that is not ASCII.
 */
export function encodeReply(reply: HostReply): SharedPayload {
  if (!('results' in reply)) {
    const json = encoder.encode(JSON.stringify(reply));
    const bytes = new Uint8Array(4 + json.byteLength);
    new DataView(bytes.buffer).setInt32(0, FORMAT_JSON, true);
    bytes.set(json, 4);
    return bytes;
  }
  const { results } = reply;
  const head = 8 + 4 * results.length;
  let total = head;
  for (const r of results) total += r.length;
  let bytes = new Uint8Array(total);
  const lengths = new Int32Array(results.length);
  // All ASCII, the common case: one native encode of the joined texts, lengths as they are.
  const joined = results.join('');
  const ascii = encoder.encodeInto(joined, bytes.subarray(head));
  let written = total;
  if (ascii.read === joined.length && ascii.written === joined.length) {
    for (let i = 0; i < results.length; i++) lengths[i] = results[i]!.length;
  } else {
    written = head;
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!;
      let { read, written: n } = encoder.encodeInto(r, bytes.subarray(written));
      // Other text than ASCII did not fit: grow for the worst case of 3 bytes per unit left.
      while (read < r.length) {
        const grown = new Uint8Array(Math.max(bytes.length * 2, written + n + (r.length - read) * 3));
        grown.set(bytes.subarray(0, written + n));
        bytes = grown;
        const more = encoder.encodeInto(r.slice(read), bytes.subarray(written + n));
        read += more.read;
        n += more.written;
      }
      lengths[i] = n;
      written += n;
    }
  }
  const view = new DataView(bytes.buffer);
  view.setInt32(0, FORMAT_RESULTS, true);
  view.setInt32(4, results.length, true);
  for (let i = 0; i < results.length; i++) view.setInt32(8 + 4 * i, lengths[i]!, true);
  return bytes.subarray(0, written);
}

/**
 * Writes the reply of call `seq` into the worker's buffer and wakes the worker: the page
 * does ('none'), or the isolation frame, which relays replies for its workers ('sandbox').
 * 'stale': the worker gave up on that call (nothing written); 'too-small': only the needed
 * length was written, and the writer keeps the payload until the worker resumes with a
 * larger buffer.
 */
export function writeSharedReply(buffer: SharedArrayBuffer, seq: number, bytes: SharedPayload): 'written' | 'too-small' | 'stale' {
  const header = new Int32Array(buffer, 0, 4);
  if (Atomics.load(header, SLOT_SEQ) !== seq) return 'stale';
  let outcome: 'written' | 'too-small';
  if (bytes.byteLength > buffer.byteLength - HEADER_BYTES) {
    Atomics.store(header, SLOT_LENGTH, bytes.byteLength);
    Atomics.store(header, SLOT_STATUS, STATUS_TOO_SMALL);
    outcome = 'too-small';
  } else {
    new Uint8Array(buffer, HEADER_BYTES, bytes.byteLength).set(bytes);
    Atomics.store(header, SLOT_LENGTH, bytes.byteLength);
    Atomics.store(header, SLOT_STATUS, STATUS_READY);
    outcome = 'written';
  }
  Atomics.notify(header, SLOT_STATUS);
  return outcome;
}

/** The worker marks `buffer` as waiting for the reply of call `seq` (before posting the call). */
export function armSharedBuffer(buffer: SharedArrayBuffer, seq: number): void {
  const header = new Int32Array(buffer, 0, 4);
  Atomics.store(header, SLOT_STATUS, STATUS_PENDING);
  Atomics.store(header, SLOT_SEQ, seq);
}

/** What the worker finds in its buffer. */
export type SharedReadResult = { status: 'pending' } | { status: 'ready'; reply: SharedPayload } | { status: 'too-small'; buffer: SharedArrayBuffer };

/**
 * The worker blocks until the page has written to `buffer`, in slices of `sliceMs`, calling
 * `onSlice` between them (Python does not see interrupts while blocked in Atomics.wait), then
 * copies the payload out. A reply that did not fit comes back as a larger buffer, to arm and
 * send in a 'resume' message. `sliceMs` 0 does not block: 'pending' means nothing was written.
 */
export function readSharedReply(buffer: SharedArrayBuffer, sliceMs = 0, onSlice: () => void = () => undefined): SharedReadResult {
  const header = new Int32Array(buffer, 0, 4);
  if (sliceMs > 0) {
    while (Atomics.wait(header, SLOT_STATUS, STATUS_PENDING, sliceMs) === 'timed-out') onSlice();
  }
  const status = Atomics.load(header, SLOT_STATUS);
  const length = Atomics.load(header, SLOT_LENGTH);
  if (status === STATUS_PENDING) return { status: 'pending' };
  if (status === STATUS_TOO_SMALL) return { status: 'too-small', buffer: new SharedArrayBuffer(HEADER_BYTES + Math.max(length, buffer.byteLength * 2)) };
  if (status !== STATUS_READY) throw new Error(`bad shared reply status ${status}`);
  // Copied out of shared memory: TextDecoder and Python refuse shared views.
  return { status: 'ready', reply: new Uint8Array(buffer, HEADER_BYTES, length).slice() };
}
