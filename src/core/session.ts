/**
 * The REPL an RLM keeps between completions: which environment, whether it has the tools,
 * and (persistent mode) how many contexts and histories it holds (`context_N`, `history_N`).
 */
import { RLMError } from './errors';
import type { EnvironmentPool } from './pool';
import type { RunRecorder } from './recorder';
import { toToolDefinitions, type NormalizedTool } from './tools';
import type { EventHub } from './events';
import type { ChatMessage, ContextInput, EnvironmentFactory, ReplEnvironment, SubcallHost } from './types';

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
  private used = false;
  private toolsRegistered = false;
  private contextCount = 0;
  /** Histories saved so far (`history_0` ...). */
  historyCount = 0;
  private closed = false;

  constructor(
    private readonly settings: SessionSettings,
    private readonly host: SubcallHost,
  ) {}

  get current(): ReplEnvironment | undefined {
    return this.env;
  }

  /** The REPL, created (or taken from the pool) on first use. */
  environment(): ReplEnvironment {
    if (this.closed) throw new RLMError('This RLM was closed; create a new one.');
    const { pool, factory, environmentOptions } = this.settings;
    this.env ??= pool ? pool.acquire(this.host) : factory({ host: this.host, environmentOptions });
    return this.env;
  }

  /**
   * Starts a completion: boots the REPL, resets it unless persistent, and loads `context`
   * as the next `context_N` — in the background, while the first root LM call is in flight.
   */
  open(context: ContextInput, recorder: RunRecorder, events: EventHub): { env: ReplEnvironment; index: number; ready: Promise<void> } {
    const env = this.environment();
    const reset = !this.settings.persistent && this.used;
    if (reset) {
      this.contextCount = 0;
      this.historyCount = 0;
    }
    const index = this.contextCount;
    // Before any byte moves and before the first LM call.
    env.checkContext?.(index, context);
    this.contextCount++;
    const ready = this.prepare(env, context, index, reset, recorder, events);
    ready.catch(() => undefined);
    this.used = true;
    return { env, index, ready };
  }

  private async prepare(env: ReplEnvironment, context: ContextInput, index: number, reset: boolean, recorder: RunRecorder, events: EventHub): Promise<void> {
    const base = recorder.base;
    const firstBoot = env.info === undefined;
    const info = await env.start();
    if (firstBoot) events.emit({ type: 'repl_ready', ...base, info });
    if (reset) {
      await env.reset();
      this.toolsRegistered = false;
    }
    // A REPL from the pool or warmed up by warmUp() has no tools yet either.
    if (!this.toolsRegistered) {
      await env.registerTools(toToolDefinitions(this.settings.tools));
      this.toolsRegistered = true;
    }
    const started = performance.now();
    const description = await env.loadContext(index, context);
    recorder.trajectory.context = { ...description, bytes: recorder.trajectory.context.bytes };
    events.emit({ type: 'context_loaded', ...base, index, description, ms: performance.now() - started });
  }

  /** Persistent mode: the finished conversation becomes `history_N` (and `history` for the first). */
  async saveHistory(messages: ChatMessage[], compaction: boolean, until: <T>(p: Promise<T>) => Promise<T>): Promise<void> {
    if (!this.settings.persistent || !this.env) return;
    const index = this.historyCount++;
    await until(this.env.setVariable(`history_${index}`, messages, true));
    if (index === 0 && !compaction) await until(this.env.setVariable('history', messages, true));
  }

  /** Releases the REPL (back to the pool for a child). The session cannot be used afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    const env = this.env;
    this.env = undefined;
    if (env && this.settings.pool) await this.settings.pool.release(env);
    else await env?.close();
  }
}
