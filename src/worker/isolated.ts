/// <reference lib="webworker" />
/**
 * Entry of the isolated REPL worker (`isolation: 'sandbox'`). The frame host's bootstrap
 * imports this module from a blob: URL and calls `start` with the frame's one message:
 * the Comlink port to the page, Pyodide's files (wasm compiled) and the interrupt buffer.
 */
import type { WorkerInit } from '../protocol/frame';
import { serve } from './worker';

export function start(init: WorkerInit): void {
  // An opaque origin's BroadcastChannel reaches only its own contexts; remove it so that a
  // cell trying to reach the page gets a readable error instead of a silent no-op.
  Reflect.deleteProperty(self, 'BroadcastChannel');
  const { port, ...handed } = init;
  serve(port, handed);
}
