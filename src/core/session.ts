/**
 * The REPL an RLM keeps between completions: which environment, whether it has the tools,
 * and (persistent mode) how many contexts and histories it holds (`context_N`, `history_N`).
 *
 * Without `persistent`, each completion runs in a REPL of its own: code a run executed may
 * have patched the interpreter (the runtime's classes, builtins, modules, files), so its
 * REPL ends with it, and a spare one, made by the environment factory, boots as the run
 * ends (from the memory snapshot, for Pyodide) for the next completion to take.
 */
import { RLMError } from './errors';
import type { EnvironmentPool } from './pool';
import type { RunRecorder } from './recorder';
import { toToolDefinitions, type NormalizedTool } from './tools';
import type { EventHub } from './events';
import type { ChatMessage, ContextInput, EnvironmentFactory, ReplEnvironment, ReplInfo, SubcallHost } from './types';

export interface SessionSettings {
  factory: EnvironmentFactory;
  environmentOptions: Record<string, unknown>;
  tools: NormalizedTool[];
  persistent: boolean;
  /** A child's REPL comes from (and goes back to) the root's pool. */
  pool: EnvironmentPool | undefined;
}

export class Session {
  private env: ReplEnvironment | undefined;
  /** Whether a completion has opened the current REPL. */
  private used = false;
  /** The REPL that has the custom tools. */
  private toolsIn: ReplEnvironment | undefined;
  private contextCount = 0;
  /** Histories saved so far (`history_0` ...). */
  historyCount = 0;
  /** What the last run's REPL reported, until the next REPL has booted. */
  private previousInfo: ReplInfo | undefined;
  /**
   * Ending the last run's REPL. The next one boots after it: a proxy counts a token's
   * sandboxes, and two workers booting at once would share the cores with the old one.
   */
  private retiring: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly settings: SessionSettings,
    private readonly host: SubcallHost,
  ) {}

  get current(): ReplEnvironment | undefined {
    return this.env;
  }

  /** How the REPL runs: the next completion's once it has booted, else the last run's. */
  get info(): ReplInfo | undefined {
    return this.env?.info ?? this.previousInfo;
  }

  /** The REPL the next (or running) completion uses, created (or taken from the pool) on first use. */
  environment(): ReplEnvironment {
    if (this.closed) throw new RLMError('This RLM was closed; create a new one.');
    const { pool, factory, environmentOptions } = this.settings;
    this.env ??= pool ? pool.acquire(this.host) : factory({ host: this.host, environmentOptions });
    return this.env;
  }

  /** Boots the REPL the next completion uses (warmUp()). */
  async start(): Promise<ReplInfo> {
    const env = this.environment();
    if (this.retiring) await this.retiring;
    return env.start();
  }

  /**
   * Starts a completion: boots the REPL (a persistent one only once) and loads `context` as
   * the next `context_N` — in the background, while the first root LM call is in flight.
   */
  open(context: ContextInput, recorder: RunRecorder, events: EventHub): { env: ReplEnvironment; index: number; ready: Promise<void> } {
    const env = this.environment();
    const index = this.contextCount;
    // Before any byte moves and before the first LM call.
    env.checkContext?.(index, context);
    this.contextCount++;
    const ready = this.prepare(env, context, index, recorder, events);
    ready.catch(() => undefined);
    this.used = true;
    return { env, index, ready };
  }

  private async prepare(env: ReplEnvironment, context: ContextInput, index: number, recorder: RunRecorder, events: EventHub): Promise<void> {
    const base = recorder.base;
    const firstBoot = env.info === undefined;
    // Only when the last run's REPL is still being ended: otherwise the boot starts at once.
    if (this.retiring) await this.retiring;
    const info = await env.start();
    if (firstBoot) events.emit({ type: 'repl_ready', ...base, info });
    // A new REPL, one from the pool or one warmed up by warmUp() has no tools yet.
    if (this.toolsIn !== env) {
      await env.registerTools(toToolDefinitions(this.settings.tools));
      this.toolsIn = env;
    }
    const started = performance.now();
    const description = await env.loadContext(index, context);
    recorder.trajectory.context = { ...description, bytes: recorder.trajectory.context.bytes };
    events.emit({ type: 'context_loaded', ...base, index, description, ms: performance.now() - started });
  }

  /**
   * A run has ended. Without `persistent`, nothing of its Python may reach the next run: its
   * REPL is ended, and the next completion's REPL is made now and boots as soon as the old
   * one is gone — a spare, ready (or nearly) when the next completion starts. A child's
   * session (one run, then back to the pool) and a persistent one keep their REPL.
   */
  renew(): void {
    if (this.settings.persistent || this.settings.pool || !this.used || this.closed) return;
    const old = this.env;
    this.previousInfo = old?.info ?? this.previousInfo;
    this.env = undefined;
    this.used = false;
    this.contextCount = 0;
    this.historyCount = 0;
    let spare: ReplEnvironment | undefined;
    try {
      spare = this.environment();
    } catch {
      // The factory failed: the next completion asks it again and reports the error.
    }
    const retiring: Promise<void> = (old?.close() ?? Promise.resolve()).then(
      () => undefined,
      () => undefined,
    );
    this.retiring = retiring;
    void retiring.then(() => {
      if (this.retiring === retiring) this.retiring = undefined;
      // A task later, so that an RLM closed as soon as its completion returns (one-shot
      // use) boots nothing; a completion started meanwhile boots it itself.
      setTimeout(() => {
        if (spare && this.env === spare && !this.closed) spare.start().catch(() => undefined);
      }, 0);
    });
  }

  /** Persistent mode: the finished conversation becomes `history_N` (and `history` for the first). */
  async saveHistory(messages: ChatMessage[], compaction: boolean, until: <T>(p: Promise<T>) => Promise<T>): Promise<void> {
    if (!this.settings.persistent || !this.env) return;
    const index = this.historyCount++;
    await until(this.env.setVariable(`history_${index}`, messages, true));
    if (index === 0 && !compaction) await until(this.env.setVariable('history', messages, true));
  }

  /** Releases the REPL (back to the pool for a child), and the spare. The session cannot be used afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    const env = this.env;
    this.env = undefined;
    if (env && this.settings.pool) await this.settings.pool.release(env);
    else await env?.close();
    await this.retiring;
  }
}
