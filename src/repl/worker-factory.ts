/**
 * The one place a REPL worker is created: a same-origin module worker (`isolation:
 * 'none'`), or a worker inside the page's isolation frame (`isolation: 'sandbox'`, an
 * opaque origin with no network and no storage, fed Pyodide's files by the page).
 */
import type * as Comlink from 'comlink';
import { ReplCrashedError } from '../core/errors';
import { isolationFrame } from './sandbox-frame';

/** Where Python runs: in an opaque-origin frame with no network ('sandbox'), or in a worker of the page's origin ('none'). */
export type Isolation = 'sandbox' | 'none';

export interface WorkerFactoryOptions {
  isolation: Isolation;
  /** 'none': override the worker script URL (a CDN, a custom path). Default: the worker shipped with rlm-web. */
  workerURL?: string | URL | undefined;
  /** 'sandbox': Pyodide's directory, absolute; the page fetches the files and hands them in. */
  indexURL: string;
  /** 'sandbox': the host page (rlm-web's sandbox.html) instead of an srcdoc frame. */
  sandboxURL?: string | undefined;
  /** 'sandbox': the page's end of the SharedArrayBuffer bridge, which the frame relays (transferred). */
  answers: MessagePort;
}

/** A running REPL worker, wherever it runs. */
export interface ReplWorker {
  isolation: Isolation;
  /** Comlink endpoint: the Worker itself, or a port into the frame's worker. */
  endpoint: Comlink.Endpoint;
  /** Rejects when the worker fails to load or dies. */
  crashed: Promise<never>;
  /** Set when the frame holds the worker's interrupt buffer ('sandbox' on a cross-origin isolated page): KeyboardInterrupt in `tenant`'s cell. */
  interrupt?: ((tenant: number) => void) | undefined;
  terminate(): void;
}

function moduleWorker(workerURL: string | URL | undefined): ReplWorker {
  const worker = workerURL
    ? new Worker(workerURL, { type: 'module', name: 'rlm-web-repl' })
    : // This literal form is what bundlers (Vite, webpack 5, Rollup) recognize and bundle.
      new Worker(new URL('../worker/main.ts', import.meta.url), { type: 'module', name: 'rlm-web-repl' });
  const crashed = new Promise<never>((_, reject) => {
    worker.addEventListener('error', (event) => {
      event.preventDefault();
      reject(new ReplCrashedError(`The REPL worker failed: ${event.message || 'it could not be loaded (check workerURL and that the server serves it as JavaScript)'}.`));
    });
  });
  crashed.catch(() => undefined);
  return { isolation: 'none', endpoint: worker, crashed, terminate: () => worker.terminate() };
}

export async function createReplWorker(options: WorkerFactoryOptions): Promise<ReplWorker> {
  if (options.isolation === 'none') return moduleWorker(options.workerURL);
  const worker = await isolationFrame(options.sandboxURL).startWorker(options.indexURL, options.answers);
  return {
    isolation: 'sandbox',
    endpoint: worker.endpoint,
    crashed: worker.crashed,
    interrupt: worker.interruptible ? worker.interrupt : undefined,
    terminate: worker.terminate,
  };
}
