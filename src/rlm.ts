/**
 * `RLM`: the loop of src/core wired to the concrete LM clients and REPL environments.
 */
import { createClient } from './clients/registry';
import type { RLMCoreOptions } from './core/options';
import { RLMCore, type RLMDependencies } from './core/rlm';
import type { EnvironmentFactory } from './core/types';
import type { PyodideEnvironmentOptions } from './repl/pyodide-repl';
import { environmentFactory } from './repl/registry';
import type { RemoteEnvironmentOptions } from './repl/remote-repl';

const dependencies: RLMDependencies = { createClient, createEnvironment: environmentFactory };

/** Where Python runs, with the options of that environment. */
export type EnvironmentChoice =
  /** Pyodide in a Web Worker on this page (the default). */
  | { environment?: 'pyodide' | undefined; environmentOptions?: PyodideEnvironmentOptions | undefined }
  /** A sandbox reached through rlm-web-proxy. */
  | { environment: 'remote'; environmentOptions: RemoteEnvironmentOptions }
  /** Your own environment: a factory of `ReplEnvironment`s and whatever options it reads. */
  | { environment: EnvironmentFactory; environmentOptions?: Record<string, unknown> | undefined };

/**
 * Options of `new RLM(...)`: the loop's options (`RLMCoreOptions`: backends, limits, tools, ...)
 * plus the environment and its typed options.
 */
export type RLMOptions = Omit<RLMCoreOptions, 'environment' | 'environmentOptions'> & EnvironmentChoice;

/**
 * A Recursive Language Model. The context is loaded into a Python REPL (Pyodide in a Web
 * Worker); the root model explores it with code and sub-calls until it marks an answer.
 *
 * @example
 * const rlm = new RLM({ backend: 'openai', backendOptions: { model: 'gpt-5-nano', apiKey } });
 * const { response } = await rlm.completion(hugeText, { rootPrompt: 'What is the magic number?' });
 * await rlm.close();
 */
export class RLM extends RLMCore {
  constructor(options: RLMOptions = {}) {
    super(options, dependencies);
  }
}
