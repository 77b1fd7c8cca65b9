/**
 * Child RLMs need a fresh Python namespace, not a fresh worker: booting Pyodide costs
 * seconds and ≈85 MB. The pool hands out REPLs, resets them on return (variables, imported
 * modules, files) and keeps up to `maxIdle` warm for the next child. Its REPLs are made with
 * the pool as their `group`, so the environment may run them all in one process (Pyodide
 * does: namespaces of one interpreter). A pool serves the children of one root run: the
 * root closes it when the run ends (without `persistent`), so that what a child's code did
 * to the shared interpreter ends with the run, and starts another for the next.
 */
import { RLMError } from './errors';
import type { EnvironmentFactory, ReplEnvironment, SubcallHost } from './types';

interface Pooled {
  env: ReplEnvironment;
  /** Which run answers this REPL's sub-calls right now. */
  binding: { host: SubcallHost | undefined };
}

export class EnvironmentPool {
  private readonly idle: Pooled[] = [];
  private readonly leased = new Map<ReplEnvironment, Pooled>();
  private closed = false;

  constructor(
    private readonly factory: EnvironmentFactory,
    private readonly environmentOptions: Record<string, unknown>,
    private readonly maxIdle: number,
  ) {}

  /**
   * Starts a REPL before the first child asks for one (with the Pyodide environment, this
   * boots the interpreter the children share) and keeps it idle. Does nothing once the pool
   * holds a REPL.
   */
  warm(): void {
    if (this.closed || this.idle.length > 0 || this.leased.size > 0) return;
    const entry = this.create();
    this.idle.push(entry);
    // A failed boot is retried by the child that takes this REPL, and reported to it.
    entry.env.start().catch(() => undefined);
  }

  acquire(host: SubcallHost): ReplEnvironment {
    // A child of a run that has ended (stopped while it started) gets no interpreter back.
    if (this.closed) throw new RLMError('The run these child RLMs belong to has ended.');
    const entry = this.idle.pop() ?? this.create();
    entry.binding.host = host;
    this.leased.set(entry.env, entry);
    return entry.env;
  }

  private create(): Pooled {
    const binding: Pooled['binding'] = { host: undefined };
    const env = this.factory({
      host: {
        handle: (request, signal) =>
          binding.host ? binding.host.handle(request, signal) : Promise.resolve({ error: 'This REPL is idle: no run answers its sub-calls.' }),
      },
      environmentOptions: this.environmentOptions,
      // Children of one root may share a process, each REPL a namespace of its own.
      group: this,
    });
    return { env, binding };
  }

  /** Returns a REPL: reset and kept warm, or closed when the pool is full or closing. */
  async release(env: ReplEnvironment): Promise<void> {
    const entry = this.leased.get(env);
    if (!entry) return env.close();
    this.leased.delete(env);
    entry.binding.host = undefined;
    if (this.closed || this.idle.length >= this.maxIdle || env.info === undefined) return env.close();
    try {
      await env.reset();
      if (this.closed) return env.close();
      this.idle.push(entry);
    } catch {
      await env.close();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.idle.map((e) => e.env), ...this.leased.keys()];
    this.idle.length = 0;
    this.leased.clear();
    await Promise.all(all.map((env) => env.close().catch(() => undefined)));
  }
}
