/**
 * The wire types between the page and the REPL worker. Both sides import this file and
 * nothing else of each other.
 */

/** How Python's synchronous `llm_query` waits for the page. */
export type BridgeKind = 'jspi' | 'sab';

/** A request made by Python code (sub-call or custom tool) for the page to answer. */
export type HostRequest =
  /** `schema`: a JSON Schema each reply must match; the results are then JSON texts (or "Error: ..."). */
  | { op: 'llm_query' | 'rlm_query'; prompts: string[]; model: string | null; schema?: Record<string, unknown> | null }
  | { op: 'tool'; name: string; args: unknown[]; kwargs: Record<string, unknown> };

/** The page's answer: `results` for queries (one per prompt), `value` for tools. */
export type HostReply = { results: string[] } | { value: unknown } | { error: string };

/**
 * Page-side object the worker calls (through Comlink) when Python needs the page, on the
 * JSPI path. Requests and replies are structured-cloned: no JSON on the hot path (JSON in
 * Pyodide costs more than the round trip itself).
 */
export interface HostEndpoint {
  call(request: HostRequest): Promise<HostReply>;
}

/**
 * SharedArrayBuffer path: the worker posts this on a dedicated MessagePort (no reply
 * message: the worker is blocked in Atomics.wait and could not read one). The page writes
 * the reply as JSON into `buffer` (layout below) and wakes the worker.
 */
export type SharedCallMessage =
  | { type: 'call'; request: HostRequest; buffer: SharedArrayBuffer; seq: number }
  /** After SHARED_STATUS_TOO_SMALL: write the pending reply of call `seq` into this larger buffer. */
  | { type: 'resume'; buffer: SharedArrayBuffer; seq: number };

/**
 * Layout of a shared reply buffer: Int32 status, Int32 payload byte length, Int32 call
 * sequence number (a late reply to an abandoned call must not land in the next one),
 * Int32 payload format, then the payload. Format RESULTS: Int32 count, count × Int32 UTF-8
 * lengths, then the UTF-8 texts back to back (no JSON on the hot path); format JSON: the
 * UTF-8 JSON of any other reply.
 */
export const SHARED_HEADER_BYTES = 16;
export const SHARED_SLOT_STATUS = 0;
export const SHARED_SLOT_LENGTH = 1;
export const SHARED_SLOT_SEQ = 2;
export const SHARED_SLOT_FORMAT = 3;
export const SHARED_FORMAT_JSON = 0;
export const SHARED_FORMAT_RESULTS = 1;
export const SHARED_STATUS_PENDING = 0;
export const SHARED_STATUS_READY = 1;
/** The reply did not fit: the worker must send a larger buffer for the same call. */
export const SHARED_STATUS_TOO_SMALL = 2;

/** An encoded reply for the shared buffer (format RESULTS or JSON, see above). */
export interface SharedPayload {
  format: number;
  bytes: Uint8Array;
}

/**
 * Writes `payload` as the reply to call `seq` into `buffer` and wakes the worker. 'stale':
 * the worker gave up on that call; 'too-small': the worker was told the length and will
 * send a larger buffer ('resume'). Used by the page ('none') and by the isolation frame,
 * which relays replies for its workers ('sandbox').
 */
export function writeSharedReply(buffer: SharedArrayBuffer, seq: number, payload: SharedPayload): 'written' | 'too-small' | 'stale' {
  const header = new Int32Array(buffer, 0, 4);
  if (Atomics.load(header, SHARED_SLOT_SEQ) !== seq) return 'stale';
  const { bytes, format } = payload;
  let outcome: 'written' | 'too-small' = 'written';
  if (bytes.byteLength > buffer.byteLength - SHARED_HEADER_BYTES) {
    Atomics.store(header, SHARED_SLOT_LENGTH, bytes.byteLength);
    Atomics.store(header, SHARED_SLOT_STATUS, SHARED_STATUS_TOO_SMALL);
    outcome = 'too-small';
  } else {
    // encodeInto refuses shared views: the payload is encoded first, then copied in.
    new Uint8Array(buffer, SHARED_HEADER_BYTES, bytes.byteLength).set(bytes);
    Atomics.store(header, SHARED_SLOT_LENGTH, bytes.byteLength);
    Atomics.store(header, SHARED_SLOT_FORMAT, format);
    Atomics.store(header, SHARED_SLOT_STATUS, SHARED_STATUS_READY);
  }
  Atomics.notify(header, SHARED_SLOT_STATUS);
  return outcome;
}

export interface BootOptions {
  /** Where pyodide.mjs and its runtime files are served; default: ./pyodide/ next to the worker. */
  indexURL: string | undefined;
  /** Which bridge to use; 'auto' picks JSPI when the browser has it, else SAB. */
  bridge: 'auto' | BridgeKind;
  /** Shared one-byte buffer for KeyboardInterrupt, when the page is cross-origin isolated. */
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

/** What a context becomes on its way to Python. */
export type ContextKind = 'text' | 'json';

export interface ContextDescription {
  /** Python type name: str, list, dict, ... */
  type: string;
  /** Characters for str, items for list/dict. */
  length: number;
}

export interface CellOutput {
  stdout: string;
  stderr: string;
  locals: string[];
  /** Short previews of the variables' values, by name (rlm_runtime.preview). */
  previews?: Record<string, string>;
  /** Seconds, measured in Python. */
  execution_time: number;
  final_answer: string | null;
  error_type: string | null;
  interrupted: boolean;
}

export interface ToolSpec {
  name: string;
  kind: 'function' | 'data';
  /** JSON text of the value, for data tools. */
  valueJSON?: string;
}

/** The API the worker exposes to the page (through Comlink). */
export interface WorkerAPI {
  boot(options: BootOptions, host: HostEndpoint): Promise<BootInfo>;
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
}
