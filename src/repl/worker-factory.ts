/**
 * The one place a REPL worker is created, so that an isolation mode (a sandboxed iframe)
 * can change where it runs without touching anything else.
 */
export interface WorkerFactoryOptions {
  /** Override the worker script URL (a CDN, a custom path). Default: the worker shipped with rlm-web. */
  workerURL?: string | URL | undefined;
}

export function createReplWorker(options: WorkerFactoryOptions = {}): Worker {
  if (options.workerURL) return new Worker(options.workerURL, { type: 'module', name: 'rlm-web-repl' });
  // This literal form is what bundlers (Vite, webpack 5, Rollup) recognize and bundle.
  return new Worker(new URL('../worker/worker.ts', import.meta.url), { type: 'module', name: 'rlm-web-repl' });
}
