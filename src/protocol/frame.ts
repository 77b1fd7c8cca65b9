/**
 * The wire between the page and the isolation frame (an opaque-origin, network-less
 * iframe that hosts REPL workers), and between the frame and each worker it starts. The
 * page, the frame host and the isolated worker import this file and nothing else of each
 * other. Python runs in the workers; it never sees the frame's main thread.
 */

import { isPlainObject, parseSubcallRequest } from './runtime';
import type { HostRequest, SharedPayload } from './worker';

/** Pyodide's runtime files, as the page fetched them from indexURL. */
export interface PyodideFiles {
  /** pyodide.mjs (the loader), imported from a blob: URL inside the worker. */
  loader: Blob;
  /** pyodide.asm.mjs (the Emscripten module factory). */
  asm: Blob;
  /** pyodide.asm.wasm: compiled once by the frame, shared with its workers as a Module. */
  wasm: Blob;
  /** python_stdlib.zip. */
  stdlib: Blob;
  /** pyodide-lock.json, as text. */
  lock: string;
}

/** What a worker in the frame boots from (the wasm already compiled). */
export interface HandedFiles extends Omit<PyodideFiles, 'wasm'> {
  wasm: WebAssembly.Module;
}

/** Page → frame. */
export type PageToFrame =
  /** Pyodide's files for the workers to come (sent once per files key). */
  | { type: 'files'; key: string; files: PyodideFiles }
  /**
   * Start a worker running `code` (the isolated worker module) that serves Comlink on `port`.
   * `answers` carries its SharedArrayBuffer-bridge calls (RelayedCall / RelayedReply): the
   * frame relays them, because only it shares memory with the worker.
   */
  | { type: 'start'; id: number; key: string; code: Blob; port: MessagePort; answers: MessagePort }
  /** Raise KeyboardInterrupt in `tenant`'s cell in worker `id` (only when the frame reported `interruptible`). */
  | { type: 'interrupt'; id: number; tenant: number }
  | { type: 'terminate'; id: number };

/** Frame → page. */
export type FrameToPage =
  /** The host script runs. `interruptible`: SharedArrayBuffer exists in the frame (the page is cross-origin isolated). */
  | { type: 'ready'; interruptible: boolean }
  /** Worker `id` failed to load, or died. */
  | { type: 'error'; id: number; message: string };

/**
 * Frame → page, on a worker's `answers` port: a sub-call made on the SharedArrayBuffer bridge
 * (the frame parsed it; the page parses it again with {@link parseRelayedCall}). `refused`: the
 * frame found no request in it; the page answers with an error that says why.
 */
export type RelayedCall = { type: 'call'; request: HostRequest; seq: number } | { type: 'refused'; reason: string; seq: number };

/** What the frame relays, as the page may act on it; anything else is dropped. Never throws. */
export function parseRelayedCall(data: unknown): RelayedCall | { type: 'dropped'; reason: string } {
  if (!isPlainObject(data)) return { type: 'dropped', reason: 'not an object' };
  const { seq } = data;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) return { type: 'dropped', reason: 'no sequence number' };
  if (data.type === 'refused') return { type: 'refused', seq, reason: typeof data.reason === 'string' ? data.reason.slice(0, 1000) : 'the request is not one' };
  if (data.type !== 'call') return { type: 'dropped', reason: 'an unknown message type' };
  const request = parseSubcallRequest(data.request);
  return request.ok ? { type: 'call', request: request.value, seq } : { type: 'refused', seq, reason: request.reason };
}

/** Page → frame, on `answers`: the encoded reply, which the frame writes into the worker's shared buffer. */
export interface RelayedReply {
  type: 'reply';
  seq: number;
  payload: SharedPayload;
}

/** Frame → worker: the one message a new worker receives. */
export interface WorkerInit {
  /** Comlink is served on this port; its other end is on the page. */
  port: MessagePort;
  files: HandedFiles;
  /** The interrupt buffer (see makeInterruptBuffer), written by the frame; absent without SharedArrayBuffer. */
  interruptBuffer: Uint8Array | undefined;
  /** The SharedArrayBuffer bridge's port (its other end is the frame's relay); absent without SharedArrayBuffer. */
  sharedPort: MessagePort | undefined;
}

/** Whether `value` is a message of the page↔frame protocol with a known type. */
export function isMessage<T extends { type: string }>(value: unknown, types: readonly T['type'][]): value is T {
  return isPlainObject(value) && types.includes(value.type as T['type']);
}
