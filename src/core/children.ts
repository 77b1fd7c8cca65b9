/**
 * Child RLMs for `rlm_query` below the depth limit. A child inherits the backends, the
 * *remaining* budget, time and tokens, the sub-tools and the event stream; its usage flows
 * into the parent's live; it takes its REPL from the root's pool.
 */
import { anySignal } from './abort';
import { AnswerValidationError, describeError, RunEndedError } from './errors';
import type { CompletionOptions, RLMCoreOptions } from './options';
import type { EnvironmentPool } from './pool';
import type { Run } from './run';
import { stoppedMessage, type CallTag, type SubcallDispatcher } from './subcalls';
import type { BackendSpec } from './options';
import { formatIssues } from './schema';
import type { CompletionResult, JSONSchema, RLMEvent, SubcallRecord } from './types';
import { UsageTracker } from './usage';

/** What makes an RLM a child: internal, never a public option. */
export interface ChildContext {
  depth: number;
  /** The parent's tracker for this call: the child's usage is added to it as it happens. */
  parentUsage: UsageTracker;
  /** The root's pool of REPLs, shared by every descendant. */
  pool: EnvironmentPool;
  /** The `rlm_query` call that started this child: its events carry it as `parentCallId`. */
  parentCallId: string;
}

/** The part of an RLM a parent needs to run it as a child. */
export interface ChildRLM {
  readonly rootModel: string;
  completion(context: string, options: CompletionOptions): Promise<CompletionResult<unknown>>;
}

export interface ChildSpawner {
  options: RLMCoreOptions;
  depth: number;
  rootModel: string;
  dispatcher: () => SubcallDispatcher;
  pool: () => EnvironmentPool;
  emit: (event: RLMEvent) => void;
  create: (options: RLMCoreOptions, child: ChildContext) => ChildRLM;
}

/** Runs `prompt` as a child RLM; failures become the record's `error`, never a throw. */
export async function runChild(parent: ChildSpawner, prompt: string, model: string | null, run: Run, signal: AbortSignal, call: CallTag, schema?: JSONSchema): Promise<SubcallRecord> {
  const o = parent.options;
  const rootSpec: BackendSpec = model ? { backend: parent.dispatcher().clientFor(model, false) } : { backend: o.backend ?? 'openai', backendOptions: o.backendOptions };
  run.hub.emit({ type: 'subcall_start', ...run.base, ...call, kind: 'rlm', model: model ?? parent.rootModel, prompt: prompt.slice(0, 200) });
  const started = performance.now();
  const childUsage = new UsageTracker(run.usage);
  const remaining = run.guard.remaining();
  let record: SubcallRecord;
  try {
    run.guard.check();
    const child = parent.create(
      {
        ...o,
        ...remaining,
        backend: rootSpec.backend,
        backendOptions: rootSpec.backendOptions,
        customTools: o.customSubTools ?? o.customTools,
        customSubTools: o.customSubTools,
        persistent: false,
        compaction: false,
        // The prologue speaks to the root's task, not to a child's.
        userPrologue: undefined,
        logger: undefined,
        onEvent: parent.emit,
      },
      { depth: parent.depth + 1, parentUsage: childUsage, pool: parent.pool(), parentCallId: call.callId },
    );
    const result = await child.completion(prompt, { signal: anySignal(signal, run.guard.signal), ...(schema ? { schema } : {}) });
    // With a schema the trajectory's response is the validated value as JSON text.
    const response = schema ? (result.trajectory.response ?? 'null') : String(result.response);
    record = { kind: 'rlm', model: child.rootModel, prompt, response, usage: childUsage.summary(), executionTimeMs: performance.now() - started, trajectory: result.trajectory, ...call };
  } catch (error) {
    record = {
      kind: 'rlm',
      model: model ?? parent.rootModel,
      prompt,
      response: error instanceof RunEndedError ? (error.partialAnswer ?? '') : '',
      usage: childUsage.summary(),
      executionTimeMs: performance.now() - started,
      error: stoppedMessage(run) ?? (error instanceof AnswerValidationError ? `the child RLM's answer does not match the schema:\n${formatIssues(error.issues, 'reply')}` : `Child RLM completion failed - ${describeError(error)}`),
      trajectory: error instanceof RunEndedError ? error.trajectory : undefined,
      ...call,
    };
  }
  run.hub.emit({ type: 'subcall_end', ...run.base, ...call, record });
  return record;
}
