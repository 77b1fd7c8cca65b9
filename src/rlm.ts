/**
 * `RLM`: the loop of src/core wired to the concrete LM clients and REPL environments.
 */
import { createClient } from './clients/registry';
import { RLMCore, type RLMDependencies, type RLMOptions } from './core/rlm';
import { environmentFactory } from './repl/registry';

const dependencies: RLMDependencies = { createClient, createEnvironment: environmentFactory };

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
