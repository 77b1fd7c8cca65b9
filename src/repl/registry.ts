/** Environment names to REPL factories. */
import { ConfigurationError } from '../core/errors';
import type { EnvironmentFactory } from '../core/types';
import { createPyodideEnvironment } from './pyodide-repl';
import { createRemoteEnvironment } from './remote-repl';

const ENVIRONMENTS: Record<string, EnvironmentFactory> = {
  pyodide: createPyodideEnvironment,
  remote: createRemoteEnvironment,
};

export function environmentFactory(name: string): EnvironmentFactory {
  const factory = ENVIRONMENTS[name];
  if (!factory) {
    throw new ConfigurationError(`Unknown environment '${name}'. Use one of: ${Object.keys(ENVIRONMENTS).join(', ')}, or pass a factory function.`);
  }
  return factory;
}
