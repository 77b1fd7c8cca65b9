/**
 * The Pyodide REPL: Python in a Web Worker on this page. Cell timeouts stop a cell with
 * KeyboardInterrupt when the page is cross-origin isolated (state kept), else by restarting
 * the worker (contexts, histories and tools reloaded).
 */
import type { EnvironmentFactoryOptions, ReplEnvironment, SubcallHost } from '../core/types';
import { PyodideTransport, type PyodideEnvironmentOptions } from './pyodide-transport';
import { RestorableRepl } from './restorable-repl';

export type { PyodideEnvironmentOptions };

/**
 * A Python REPL in a Pyodide Web Worker. Usually created for you by `environment: 'pyodide'`
 * (the default); construct it directly to drive a REPL yourself.
 *
 * @example
 * const repl = new PyodideRepl({
 *   handle: async (request) => (request.op === 'tool' ? { error: 'no tools here' } : { results: request.prompts.map((p) => `echo: ${p}`) }),
 * });
 * await repl.loadContext(0, 'some text');
 * const cell = await repl.execute('print(len(context))', { timeoutMs: 10_000 });
 * await repl.close();
 */
export class PyodideRepl extends RestorableRepl {
  constructor(host: SubcallHost, options: PyodideEnvironmentOptions = {}) {
    // In the isolation frame the interrupt crosses to another renderer process (page → frame
    // → the worker's interrupt byte): under load that hop alone has taken longer than 2 s.
    super(host, new PyodideTransport(options), options.interruptGraceMs ?? ((options.isolation ?? 'sandbox') === 'sandbox' ? 5000 : 2000));
  }
}

/** The factory behind `environment: 'pyodide'`. */
export function createPyodideEnvironment(options: EnvironmentFactoryOptions): ReplEnvironment {
  return new PyodideRepl(options.host, options.environmentOptions as PyodideEnvironmentOptions);
}
