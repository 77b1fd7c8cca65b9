/// <reference lib="webworker" />
/**
 * Entry of the isolated REPL worker (`isolation: 'sandbox'`). The frame host's bootstrap
 * imports this module from a blob: URL and calls `start` with the frame's one message:
 * the Comlink port to the page, Pyodide's files (wasm compiled) and the interrupt buffer.
 */
import type { WorkerInit } from '../frame/protocol';
import { serve } from './worker';

export function start(init: WorkerInit): void {
  const { port, ...handed } = init;
  serve(port, handed);
}
