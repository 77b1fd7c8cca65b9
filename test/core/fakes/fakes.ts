/**
 * In-memory stand-ins for the loop's two collaborators: an LM client that answers from a
 * script and records what it was sent, and a REPL whose "interpreter" is a map from code
 * to results (or to functions that may call the SubcallHost like llm_query would).
 */
import type { RLMCoreOptions as RLMOptions } from '../../../src/core/options';
import { EnvironmentPool } from '../../../src/core/pool';
import { RLMCore, type RLMDependencies } from '../../../src/core/rlm';
import { UsageTracker } from '../../../src/core/usage';
import type {
  CellResult,
  ChatMessage,
  ContextDescription,
  ContextInput,
  ExecuteOptions,
  HostReply,
  HostRequest,
  LMClient,
  LMRequest,
  LMResult,
  LMUsage,
  ReplEnvironment,
  ReplInfo,
  RLMEvent,
  SubcallHost,
  ToolDefinition,
  TrajectorySink,
  Trajectory,
  IterationRecord,
} from '../../../src/core/types';

// ------------------------------------------------------------------ LM client

export type ReplyValue = string | { text: string; usage?: Partial<LMUsage>; reasoning?: string };
export type Responder = (messages: ChatMessage[], request: LMRequest, call: number) => ReplyValue | Promise<ReplyValue>;

export const DEFAULT_USAGE: LMUsage = { inputTokens: 10, outputTokens: 5, cachedInputTokens: 0 };

export class FakeClient implements LMClient {
  readonly provider = 'fake';
  /** A copy of the messages of each call, in call order. */
  readonly calls: ChatMessage[][] = [];
  readonly requests: LMRequest[] = [];

  constructor(
    readonly model: string,
    private readonly respond: Responder,
    private readonly usage: Partial<LMUsage> = {},
  ) {}

  async complete(request: LMRequest): Promise<LMResult> {
    const call = this.calls.length;
    this.calls.push(request.messages.map((m) => ({ ...m })));
    this.requests.push(request);
    const value = await this.respond(request.messages, request, call);
    const reply = typeof value === 'string' ? { text: value } : value;
    return {
      text: reply.text,
      reasoning: reply.reasoning,
      usage: { ...DEFAULT_USAGE, ...this.usage, ...reply.usage },
      model: this.model,
    };
  }

  /** The last message of call `n` (0-based). */
  lastMessage(n: number): string {
    const messages = this.calls[n];
    if (!messages) throw new Error(`${this.model} has no call ${n}`);
    return messages[messages.length - 1]!.content;
  }
}

/** A responder that plays `replies` in order and fails the test when it runs out. */
export function scripted(...replies: (ReplyValue | Responder)[]): Responder {
  let next = 0;
  return (messages, request, call) => {
    const reply = replies[next++];
    if (reply === undefined) throw new Error(`script exhausted at call ${call}`);
    return typeof reply === 'function' ? reply(messages, request, call) : reply;
  };
}

/** Waits until `signal` aborts, then rejects the way the SDK clients do (AbortError). */
export function hangUntilAborted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    if (!signal) return;
    const fail = () => reject(new DOMException('The LM call was aborted.', 'AbortError'));
    if (signal.aborted) fail();
    signal.addEventListener('abort', fail, { once: true });
  });
}

export const repl = (code: string, prose = 'Next step.') => `${prose}\n\`\`\`repl\n${code}\n\`\`\``;

// ------------------------------------------------------------------ REPL

export interface CellContext {
  host: SubcallHost;
  signal: AbortSignal;
  repl: FakeRepl;
  /** Live output, as a real REPL streams it (undefined when the loop did not ask). */
  write: ExecuteOptions['onOutput'];
}

export type Cell = Partial<CellResult> | ((ctx: CellContext) => Partial<CellResult> | Promise<Partial<CellResult>>);

export function describeContext(context: ContextInput): ContextDescription {
  if (typeof context === 'string') return { type: 'str', length: context.length };
  if (Array.isArray(context)) return { type: 'list', length: context.length };
  if (context instanceof ArrayBuffer || ArrayBuffer.isView(context)) return { type: 'str', length: context.byteLength };
  return { type: 'dict', length: Object.keys(context).length };
}

export class FakeRepl implements ReplEnvironment {
  info: ReplInfo | undefined;
  readonly vars = new Map<string, unknown>();
  readonly contexts = new Map<number, ContextInput>();
  /** Every loadContext call, kept across resets. */
  readonly loaded: [number, ContextInput][] = [];
  readonly executed: string[] = [];
  readonly setCalls: { name: string; value: unknown; reserved: boolean }[] = [];
  tools: ToolDefinition[] = [];
  registerCount = 0;
  starts = 0;
  resets = 0;
  closed = false;

  constructor(
    readonly host: SubcallHost,
    private readonly cells: Record<string, Cell>,
    readonly environmentOptions: Record<string, unknown>,
    /** The factory's `group`: set for child RLMs' REPLs, one object per root run's pool. */
    readonly group?: object,
  ) {}

  async start(): Promise<ReplInfo> {
    this.starts++;
    this.info ??= { bridge: 'jspi', interruptible: true, bootMs: 1, runtime: 'fake' };
    return this.info;
  }

  async loadContext(index: number, context: ContextInput): Promise<ContextDescription> {
    this.contexts.set(index, context);
    this.loaded.push([index, context]);
    this.vars.set(`context_${index}`, context);
    if (index === 0) this.vars.set('context', context);
    return describeContext(context);
  }

  async registerTools(tools: ToolDefinition[]): Promise<void> {
    this.registerCount++;
    this.tools = tools;
  }

  async setVariable(name: string, value: unknown, reserved: boolean): Promise<void> {
    // Values cross to the worker as JSON: keep a copy, as the real REPL does.
    const copy: unknown = JSON.parse(JSON.stringify(value));
    this.setCalls.push({ name, value: copy, reserved });
    this.vars.set(name, copy);
  }

  async execute(code: string, options: ExecuteOptions): Promise<CellResult> {
    this.executed.push(code);
    const cell = this.cells[code];
    const base: CellResult = {
      stdout: '',
      stderr: '',
      locals: [],
      executionTimeMs: 1,
      finalAnswer: null,
      errorType: null,
      interrupted: false,
      restarted: false,
    };
    if (cell === undefined) {
      return { ...base, stderr: `NameError: the fake REPL has no cell for ${JSON.stringify(code)}`, errorType: 'NameError' };
    }
    const signal = options.signal ?? new AbortController().signal;
    const out = typeof cell === 'function' ? await cell({ host: this.host, signal, repl: this, write: options.onOutput }) : cell;
    return { ...base, ...out };
  }

  async resolveVariable(name: string): Promise<string | null> {
    return this.vars.has(name) ? String(this.vars.get(name)) : null;
  }

  async reset(): Promise<void> {
    this.resets++;
    this.vars.clear();
    this.contexts.clear();
    this.tools = [];
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** llm_query / rlm_query as Python would make them. */
export async function query(
  ctx: CellContext,
  op: 'llm_query' | 'rlm_query',
  prompts: string[],
  model: string | null = null,
): Promise<HostReply> {
  const request: HostRequest = { op, prompts, model };
  return ctx.host.handle(request, ctx.signal);
}

export function results(reply: HostReply): string[] {
  if (!('results' in reply)) throw new Error(`expected results, got ${JSON.stringify(reply)}`);
  return reply.results;
}

// ------------------------------------------------------------------ wiring

export class RecordingSink implements TrajectorySink {
  readonly log: string[] = [];
  readonly iterations: IterationRecord[] = [];
  started: Trajectory | undefined;
  ended: Trajectory | undefined;
  endedStatus: string | undefined;
  flushes = 0;

  runStarted(trajectory: Trajectory): void {
    this.log.push('runStarted');
    this.started = trajectory;
  }

  iterationFinished(trajectory: Trajectory, iteration: IterationRecord): void {
    this.log.push(`iterationFinished:${iteration.iteration}:${trajectory.iterations.length}`);
    this.iterations.push(iteration);
  }

  runEnded(trajectory: Trajectory): void {
    this.log.push('runEnded');
    this.ended = trajectory;
    this.endedStatus = trajectory.status;
  }

  async flush(): Promise<void> {
    this.flushes++;
    this.log.push('flush');
  }
}

export interface Harness {
  rlm: RLMCore;
  envs: FakeRepl[];
  events: RLMEvent[];
  /** The first REPL made: the root's. */
  env(): FakeRepl;
}

export function makeRLM(options: {
  root: FakeClient;
  others?: FakeClient[];
  cells?: Record<string, Cell>;
  rlm?: Partial<RLMOptions>;
  /** Makes the RLM a child at this depth (as rlm_query would). */
  depth?: number;
  /** Adjusts each REPL as it is made (e.g. to make its boot hang). */
  onRepl?: (repl: FakeRepl) => void;
}): Harness {
  const envs: FakeRepl[] = [];
  const events: RLMEvent[] = [];
  const cells = options.cells ?? {};
  const deps: RLMDependencies = {
    createClient(spec) {
      if (typeof spec.backend === 'object') return spec.backend;
      throw new Error(`the loop tests pass LMClient objects, not '${spec.backend}'`);
    },
    createEnvironment(name) {
      if (name !== 'fake') throw new Error(`unexpected environment '${name}'`);
      return ({ host, environmentOptions, group }) => {
        const env = new FakeRepl(host, cells, environmentOptions, group);
        options.onRepl?.(env);
        envs.push(env);
        return env;
      };
    },
  };
  const child =
    options.depth === undefined
      ? undefined
      : { depth: options.depth, parentUsage: new UsageTracker(), pool: new EnvironmentPool(deps.createEnvironment('fake'), {}, 1), parentCallId: 'test-parent-call' };
  const rlm = new RLMCore(
    {
      backend: options.root,
      otherBackends: (options.others ?? []).map((backend) => ({ backend })),
      environment: 'fake',
      onEvent: (event) => events.push(event),
      ...options.rlm,
    },
    deps,
    child,
  );
  return {
    rlm,
    envs,
    events,
    env() {
      const env = envs[0];
      if (!env) throw new Error('no REPL was created');
      return env;
    },
  };
}

/** The error `promise` rejects with; fails the test if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}
