/**
 * The page↔worker boundary: the REPL worker's API (which the page calls through Comlink),
 * its boot options, the messages of the bridge (Python's requests and live output, which the
 * worker sends as data on a port of their own) and the reply codec of both bridges (the page
 * encodes, the worker decodes). Both sides import this file and nothing else of each other; it
 * imports nothing from src/ but the other protocol modules.
 *
 * **The page trusts nothing that comes from the worker.** Model-written Python runs there and
 * can post any value on any port the worker holds. So the page exposes no object to the
 * worker (no `Comlink.expose`, no `Comlink.proxy` toward it): Comlink only carries the calls
 * the page makes, and their results are checked ({@link parseBootInfo}, `parseCellOutput`...).
 * What the worker starts — a sub-call, a tool call, a chunk of output — arrives as a
 * {@link BridgeMessage} and is parsed by {@link parseBridgeMessage}; the page answers a
 * request with a {@link BridgeReply}.
 */
import { isOutputStream, isPlainObject, parseSubcallRequest, type CellOutput, type ContextDescription, type ContextKind, type OutputStream, type SubcallRequest, type ToolSpec } from './runtime';

// The runtime's contract (requests, replies, cell reports, tool specs) is defined once.
export type { CellOutput, ContextDescription, ContextKind, OutputStream, ToolSpec } from './runtime';
export { isOutputStream, parseCellOutput, parseContextDescription } from './runtime';

/** How Python's synchronous `llm_query` waits for the page. */
export type BridgeKind = 'jspi' | 'sab';

/** A request made by Python code (sub-call or custom tool) for the page to answer. */
export type HostRequest = SubcallRequest;

/**
 * The page's answer: `results` for queries (one per prompt), `value` for tools (JSON-encoded on
 * the way). `interrupted`: the page is stopping the cell that made the request (it raises
 * KeyboardInterrupt there). The page makes it: the runtime's `SubcallReply`, before encoding.
 */
export type HostReply = { results: string[] } | { value: unknown } | { error: string; interrupted?: true };

// ------------------------------------------------------------------ the bridge port

/**
 * Worker → page, on the bridge port (a MessagePort the page hands over at boot, one per
 * worker). `request`: a cell of namespace `tenant` waits for the page (JSPI bridge; on the
 * SharedArrayBuffer bridge requests go as {@link SharedCallMessage}). `output`: what a running
 * cell printed since its last chunk (no reply).
 */
export type BridgeMessage =
  | { type: 'request'; tenant: number; id: number; request: HostRequest }
  | { type: 'output'; tenant: number; stream: OutputStream; text: string };

/** Page → worker, on the bridge port: the encoded reply to request `id`. */
export interface BridgeReply {
  type: 'reply';
  id: number;
  payload: SharedPayload;
}

/** Characters of one output chunk (the runtime keeps 4 M characters of a stream in all). */
export const MAX_OUTPUT_CHUNK_CHARS = 4_000_000;

/**
 * A message from the worker as the page may act on it:
 * - the message itself, rebuilt from checked fields;
 * - `refused`: a request whose envelope is sound (so the page can answer it and the cell
 *   does not wait forever) but whose content is not one, with the reason for the cell;
 * - `dropped`: anything else, with the reason (counted, never answered, never thrown).
 */
export type ParsedBridgeMessage = BridgeMessage | { type: 'refused'; tenant: number; id: number; reason: string } | { type: 'dropped'; reason: string };

function isId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** The one parser of what the worker posts on the bridge port. Never throws. */
export function parseBridgeMessage(data: unknown): ParsedBridgeMessage {
  if (!isPlainObject(data)) return { type: 'dropped', reason: 'not an object' };
  const { type, tenant } = data;
  if (!isId(tenant)) return { type: 'dropped', reason: 'no tenant' };
  if (type === 'output') {
    if (!isOutputStream(data.stream) || typeof data.text !== 'string') return { type: 'dropped', reason: 'an output chunk without a stream and a text' };
    if (data.text.length > MAX_OUTPUT_CHUNK_CHARS) return { type: 'dropped', reason: 'an output chunk over the limit' };
    return { type: 'output', tenant, stream: data.stream, text: data.text };
  }
  if (type === 'request') {
    if (!isId(data.id)) return { type: 'dropped', reason: 'a request without an id' };
    const request = parseSubcallRequest(data.request);
    return request.ok ? { type: 'request', tenant, id: data.id, request: request.value } : { type: 'refused', tenant, id: data.id, reason: request.reason };
  }
  return { type: 'dropped', reason: 'an unknown message type' };
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

/** A SharedCallMessage as the page (or the frame) may act on it; see {@link ParsedBridgeMessage}. */
export type ParsedSharedCall = SharedCallMessage | { type: 'refused'; buffer: SharedArrayBuffer; seq: number; reason: string } | { type: 'dropped'; reason: string };

/** The one parser of what the worker posts on the SharedArrayBuffer bridge's port. Never throws. */
export function parseSharedCall(data: unknown): ParsedSharedCall {
  if (!isPlainObject(data)) return { type: 'dropped', reason: 'not an object' };
  const { type, buffer, seq } = data;
  if (!isSharedBuffer(buffer)) return { type: 'dropped', reason: 'no usable shared buffer' };
  if (!isId(seq) || seq > 0x7fffffff) return { type: 'dropped', reason: 'no sequence number' };
  if (type === 'resume') return { type, buffer, seq };
  if (type !== 'call') return { type: 'dropped', reason: 'an unknown message type' };
  const request = parseSubcallRequest(data.request);
  return request.ok ? { type, request: request.value, buffer, seq } : { type: 'refused', buffer, seq, reason: request.reason };
}

function isSharedBuffer(value: unknown): value is SharedArrayBuffer {
  return typeof SharedArrayBuffer === 'function' && value instanceof SharedArrayBuffer && value.byteLength >= HEADER_BYTES;
}

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

/** The interrupt buffer's tenant slot. */
export function interruptTarget(buffer: Uint8Array): Int32Array {
  return new Int32Array(buffer.buffer, 4, 1);
}

// ------------------------------------------------------------------ the worker's API

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
  /** The bridge port: {@link BridgeMessage} to the page, {@link BridgeReply} back (transferred). */
  bridgePort: MessagePort;
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

/** The worker's boot report, checked, or undefined when it is not one. */
export function parseBootInfo(value: unknown): BootInfo | undefined {
  if (!isPlainObject(value)) return undefined;
  const { bridge, pyodideVersion, bootMs, interruptible, snapshot, madeSnapshot } = value;
  if ((bridge !== 'jspi' && bridge !== 'sab') || typeof pyodideVersion !== 'string' || typeof bootMs !== 'number' || typeof interruptible !== 'boolean') return undefined;
  if (snapshot !== 'loaded' && snapshot !== 'made' && snapshot !== 'none') return undefined;
  if (madeSnapshot !== undefined && !(madeSnapshot instanceof Uint8Array)) return undefined;
  return { bridge, pyodideVersion: pyodideVersion.slice(0, 100), bootMs: Number.isFinite(bootMs) ? bootMs : 0, interruptible, snapshot, madeSnapshot };
}

/**
 * The API the worker serves to the page (through Comlink; the page is always the caller): one
 * Pyodide interpreter, and in it one Python namespace per tenant — the REPL of one run —
 * named by a number the page picks. A worker on the JSPI bridge runs several tenants at once
 * (a cell suspended in a sub-call lets another run), which is how the child RLMs of one root
 * share one interpreter; on the SharedArrayBuffer bridge a worker blocks in every sub-call
 * and holds one tenant. Every result is checked on the page before use.
 */
export interface WorkerAPI {
  boot(options: BootOptions): Promise<BootInfo>;
  /** A new namespace `tenant` (unique in this worker); its requests and output go to the bridge port. */
  open(tenant: number): Promise<void>;
  /** Bytes are UTF-8 text (kind 'text') or JSON text (kind 'json'); transferred, not copied. */
  loadContext(tenant: number, index: number, bytes: Uint8Array, kind: ContextKind): Promise<ContextDescription>;
  /** Streams a Blob into Python in chunks, so the whole file is never one JS buffer. */
  loadContextBlob(tenant: number, index: number, blob: Blob, kind: ContextKind): Promise<ContextDescription>;
  /** Binds a JSON value; reserved ones are restored after each cell like `context`. */
  setVariable(tenant: number, name: string, valueJSON: string, reserved: boolean): Promise<void>;
  registerTools(tenant: number, tools: ToolSpec[]): Promise<void>;
  execute(tenant: number, code: string): Promise<CellOutput>;
  /** str() of a variable for FINAL_VAR in response text, or null when it does not exist. */
  resolveVariable(tenant: number, name: string): Promise<string | null>;
  /** Drop every variable, tool and context: the namespace a new user gets. */
  reset(tenant: number): Promise<void>;
  /** Drops the namespace and its files; the tenant cannot be used afterwards. */
  close(tenant: number): Promise<void>;
}

/** One namespace of a REPL worker, as the page uses it: the {@link WorkerAPI} calls of one tenant, results checked. */
export interface TenantAPI {
  loadContext(index: number, bytes: Uint8Array, kind: ContextKind): Promise<ContextDescription>;
  loadContextBlob(index: number, blob: Blob, kind: ContextKind): Promise<ContextDescription>;
  setVariable(name: string, valueJSON: string, reserved: boolean): Promise<void>;
  registerTools(tools: ToolSpec[]): Promise<void>;
  execute(code: string): Promise<CellOutput>;
  resolveVariable(name: string): Promise<string | null>;
  reset(): Promise<void>;
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
