/**
 * The Pyodide REPL: Python in a Web Worker on this page. Cell timeouts stop a cell with
 * KeyboardInterrupt when the page is cross-origin isolated (state kept), else by restarting
 * the worker (contexts, histories and tools reloaded).
 */
import type { EnvironmentFactoryOptions, ReplEnvironment, SubcallHost } from '../core/types';
import { sharedProcess, type PyodideProcess } from './pyodide-process';
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
  /** `process`: a worker shared with other REPLs (child RLMs of one root); default: a worker of its own. */
  constructor(host: SubcallHost, options: PyodideEnvironmentOptions = {}, process?: PyodideProcess) {
    // In the isolation frame the interrupt crosses to another renderer process (page → frame
    // → the worker's interrupt byte): under load that hop alone has taken longer than 2 s.
    super(host, new PyodideTransport(options, process), options.interruptGraceMs ?? ((options.isolation ?? 'sandbox') === 'sandbox' ? 5000 : 2000));
  }
}

/** The factory behind `environment: 'pyodide'`. */
export function createPyodideEnvironment(options: EnvironmentFactoryOptions): ReplEnvironment {
  const environmentOptions = options.environmentOptions as PyodideEnvironmentOptions;
  const process = options.group ? sharedProcess(options.group, environmentOptions) : undefined;
  return new PyodideRepl(options.host, environmentOptions, process);
}
