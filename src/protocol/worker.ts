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
 * JSPI path. Requests and replies are structured-cloned: no JSON on the hot path (JSON in
 * Pyodide costs more than the round trip itself).
 */
export interface HostEndpoint {
  call(request: HostRequest): Promise<HostReply>;
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

// ------------------------------------------------------------------ the shared reply codec

/**
 * Layout of a shared reply buffer: Int32 status, Int32 payload byte length, Int32 call
 * sequence number (a late reply to an abandoned call must not land in the next one),
 * Int32 payload format, then the payload. Format RESULTS: Int32 count, count × Int32 UTF-8
 * lengths, then the UTF-8 texts back to back (no JSON on the hot path); format JSON: the
 * UTF-8 JSON of any other reply.
 */
const HEADER_BYTES = 16;
const SLOT_STATUS = 0;
const SLOT_LENGTH = 1;
const SLOT_SEQ = 2;
const SLOT_FORMAT = 3;
const FORMAT_JSON = 0;
const FORMAT_RESULTS = 1;
const STATUS_PENDING = 0;
const STATUS_READY = 1;
/** The reply did not fit: the worker must send a larger buffer for the same call. */
const STATUS_TOO_SMALL = 2;

/** The first shared reply buffer a worker allocates; it grows when a reply does not fit. */
export const INITIAL_SHARED_BYTES = 1 << 20;

/** A reply in the form Python reads fastest: query results as one UTF-8 buffer plus byte lengths. */
export type PackedReply = { kind: 'results'; bytes: Uint8Array; lengths: number[] } | { kind: 'json'; json: string };

/** A reply encoded for a shared buffer (see the layout above). */
export interface SharedPayload {
  format: number;
  bytes: Uint8Array;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Packs a reply on the worker's side of the JSPI path (where it arrives structured-cloned):
 * results are encoded into one buffer, sized for ASCII and grown only for other text.
 */
export function packReply(reply: HostReply): PackedReply {
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

/** Encodes a reply on the page for a shared buffer (encodeInto refuses shared views: encode first). */
export function encodeSharedReply(reply: HostReply): SharedPayload {
  if (!('results' in reply)) return { format: FORMAT_JSON, bytes: encoder.encode(JSON.stringify(reply)) };
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
  return { format: FORMAT_RESULTS, bytes };
}

/**
 * Writes the reply of call `seq` into the worker's buffer and wakes the worker: the page
 * does ('none'), or the isolation frame, which relays replies for its workers ('sandbox').
 * 'stale': the worker gave up on that call (nothing written); 'too-small': only the needed
 * length was written, and the writer keeps the payload until the worker resumes with a
 * larger buffer.
 */
export function writeSharedReply(buffer: SharedArrayBuffer, seq: number, payload: SharedPayload): 'written' | 'too-small' | 'stale' {
  const header = new Int32Array(buffer, 0, 4);
  if (Atomics.load(header, SLOT_SEQ) !== seq) return 'stale';
  const { bytes, format } = payload;
  let outcome: 'written' | 'too-small';
  if (bytes.byteLength > buffer.byteLength - HEADER_BYTES) {
    Atomics.store(header, SLOT_LENGTH, bytes.byteLength);
    Atomics.store(header, SLOT_STATUS, STATUS_TOO_SMALL);
    outcome = 'too-small';
  } else {
    new Uint8Array(buffer, HEADER_BYTES, bytes.byteLength).set(bytes);
    Atomics.store(header, SLOT_LENGTH, bytes.byteLength);
    Atomics.store(header, SLOT_FORMAT, format);
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
export type SharedReadResult = { status: 'pending' } | { status: 'ready'; reply: PackedReply } | { status: 'too-small'; buffer: SharedArrayBuffer };

/**
 * The worker blocks until the page has written to `buffer`, in slices of `sliceMs`, calling
 * `onSlice` between them (Python does not see interrupts while blocked in Atomics.wait), then
 * decodes the reply. A reply that did not fit comes back as a larger buffer, to arm and
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
  // Copy out of shared memory (TextDecoder and Python refuse shared views).
  const payload = new Uint8Array(buffer, HEADER_BYTES, length).slice();
  if (Atomics.load(header, SLOT_FORMAT) !== FORMAT_RESULTS) return { status: 'ready', reply: { kind: 'json', json: decoder.decode(payload) } };
  const view = new DataView(payload.buffer);
  const count = view.getInt32(0, true);
  const lengths: number[] = [];
  for (let i = 0; i < count; i++) lengths.push(view.getInt32(4 + 4 * i, true));
  return { status: 'ready', reply: { kind: 'results', bytes: payload.subarray(4 + 4 * count), lengths } };
}
