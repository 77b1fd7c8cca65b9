/**
 * The remote REPL: the same ReplEnvironment as the Pyodide REPL, but Python runs in a
 * sandbox behind rlm-web-proxy (e2b, Modal, or a local process). Sub-calls made in the
 * sandbox are answered by the page's own LM clients, so they count against the run's
 * limits. Cell timeouts interrupt the remote process (KeyboardInterrupt, state kept) and
 * replace it when that does not take; a crashed or reaped sandbox is replaced with its
 * contexts, reserved variables and tools reloaded.
 */
import type { EnvironmentFactoryOptions, ReplEnvironment, SubcallHost } from '../core/types';
import { RemoteTransport, type RemoteEnvironmentOptions } from './remote-transport';
import { RestorableRepl } from './restorable-repl';

export type { RemoteEnvironmentOptions };

/**
 * A Python REPL in a remote sandbox behind rlm-web-proxy. Usually created for you by
 * `environment: 'remote'`; construct it directly to drive a sandbox yourself.
 *
 * @example
 * const rlm = new RLM({
 *   backend: 'openai', backendOptions: { model: 'gpt-5-nano', apiKey },
 *   environment: 'remote',
 *   environmentOptions: { proxyURL: 'https://rlm-proxy.example.com', token, provider: 'e2b' },
 * });
 */
export class RemoteRepl extends RestorableRepl {
  private readonly remote: RemoteTransport;

  constructor(host: SubcallHost, options: RemoteEnvironmentOptions = {}) {
    const transport = new RemoteTransport(options);
    super(host, transport, options.interruptGraceMs ?? 3000);
    this.remote = transport;
  }

  /** The proxy's id of the current sandbox (undefined before start and after close). */
  get sandboxId(): string | undefined {
    return this.remote.sandboxId;
  }
}

/** The factory behind `environment: 'remote'`: a {@link RemoteRepl} from `environmentOptions`. */
export function createRemoteEnvironment(options: EnvironmentFactoryOptions): ReplEnvironment {
  return new RemoteRepl(options.host, options.environmentOptions as RemoteEnvironmentOptions);
}
