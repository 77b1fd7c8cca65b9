/**
 * Answers what Python asks of the page while a cell runs: `llm_query(_batched)` as LM calls,
 * `rlm_query(_batched)` as child RLMs while depth allows, and custom tools. Every answer is
 * metered against the run's limits; failures become "Error: ..." strings for Python.
 */
import { anySignal } from './abort';
import { mapConcurrent } from './concurrency';
import { ConfigurationError, describeError, LMError } from './errors';
import { redactURLs } from './redact';
import { newId } from './ids';
import type { Run } from './run';
import { callTool, type NormalizedTool } from './tools';
import { compileSchema, formatIssues, parseJSONReply, toJSONText, type CompiledSchema } from './schema';
import type { LMClient, HostReply, SubcallRecord, HostRequest, JSONSchema, LMRequest, LMResult, SamplingArgs } from './types';
import { emptyLMUsage, summarizeCall } from './usage';

/** A sub-call's id and its place in its batch: on its events and its record. */
export interface CallTag {
  callId: string;
  index: number;
}

/** Runs one child RLM for `rlm_query` (see children.ts); with `schema`, its answer is held to it. */
export type ChildRunner = (prompt: string, model: string | null, run: Run, signal: AbortSignal, call: CallTag, schema: JSONSchema | undefined) => Promise<SubcallRecord>;

export interface SubcallSettings {
  root: LMClient;
  others: LMClient[];
  tools: NormalizedTool[];
  /** Whether `rlm_query` starts child RLMs (depth + 1 < maxDepth) rather than plain calls. */
  recursive: boolean;
  maxConcurrent: number;
  /** Child RLMs of one batched call in flight at once. */
  maxConcurrentChildren: number;
  /** Sampling of leaf calls. */
  sampling: SamplingArgs | undefined;
}

export class SubcallDispatcher {
  /** Call ids are this random prefix, a batch counter and the index: crypto.randomUUID per call costs as much as an instant call. */
  private readonly idPrefix = newId();
  private batches = 0;
  /** The running cell's signal and the run's, combined once per cell (AbortSignal.any costs microseconds a call). */
  private combined: { cell: AbortSignal; run: AbortSignal; both: AbortSignal } | undefined;

  constructor(
    private readonly settings: SubcallSettings,
    /** The run answering requests now, if any. */
    private readonly activeRun: () => Run | undefined,
    private readonly runChild: ChildRunner,
  ) {}

  /** The client for `model=` (must be registered), else the sub-call default or the root. */
  clientFor(model: string | null, subcallDefault: boolean): LMClient {
    const { root, others } = this.settings;
    if (model) {
      const all = [root, ...others];
      const found = all.find((c) => c.model === model);
      if (!found) {
        throw new ConfigurationError(`unknown model '${model}'; the models registered with this RLM are: ${all.map((c) => `'${c.model}'`).join(', ')}.`);
      }
      return found;
    }
    return subcallDefault ? (others[0] ?? root) : root;
  }

  /** Messages from Python the REPL refused or dropped, as `bridge_refused` events count them. */
  private refusals = 0;

  /** A message from Python was refused or dropped: an event for whoever watches the run. */
  refused(reason: string): void {
    this.refusals++;
    const run = this.activeRun();
    run?.hub.emit({ type: 'bridge_refused', ...run.base, reason, count: this.refusals });
  }

  /** Never rejects: errors become `{ error }` replies the Python side raises or returns. */
  async handle(request: HostRequest, signal: AbortSignal): Promise<HostReply> {
    const run = this.activeRun();
    if (!run) return { error: 'No run is active: sub-calls are only answered during completion().' };
    try {
      if (request.op === 'tool') return await this.toolCall(request, run);
      const recursive = request.op === 'rlm_query' && this.settings.recursive;
      // Validate the model name once for the whole batch: an unknown model is the caller's bug.
      const client = recursive ? undefined : this.clientFor(request.model, true);
      if (recursive && request.model) this.clientFor(request.model, false);
      // A schema from Python is model-written: checked (caps, no regex) before any call.
      const schema = request.schema == null ? undefined : await compileSchema(request.schema, 'model');
      const target = run.cellSubcalls;
      const lanes = recursive ? this.settings.maxConcurrentChildren : this.settings.maxConcurrent;
      const batchId = `${this.idPrefix}.${(++this.batches).toString(36)}`;
      const callSignal = recursive ? signal : this.callSignal(signal, run);
      const one = (prompt: string, index: number) => {
        const call: CallTag = { callId: `${batchId}.${index}`, index };
        return recursive ? this.runChild(prompt, request.model, run, signal, call, schema?.jsonSchema) : this.leafCall(client!, prompt, run, callSignal, call, schema);
      };
      const { prompts } = request;
      const records = prompts.length === 1 ? [await one(prompts[0]!, 0)] : await mapConcurrent(prompts, lanes, one);
      // Recorded in prompt order, whatever order they finished in.
      target?.push(...records);
      return { results: records.map((record) => (record.error !== undefined ? `Error: ${record.error}` : record.response)) };
    } catch (error) {
      return { error: error instanceof ConfigurationError ? error.message : describeError(error) };
    }
  }

  /** The signal of a leaf call: aborted with the cell (`cell`) or the run. */
  private callSignal(cell: AbortSignal, run: Run): AbortSignal {
    const last = this.combined;
    if (last && last.cell === cell && last.run === run.guard.signal) return last.both;
    const both = anySignal(cell, run.guard.signal);
    this.combined = { cell, run: run.guard.signal, both };
    return both;
  }

  /** A custom tool, recorded with what Python got so that a resume can replay it. */
  private async toolCall(request: Extract<HostRequest, { op: 'tool' }>, run: Run): Promise<HostReply> {
    run.guard.check();
    const tool = this.settings.tools.find((t) => t.name === request.name);
    const target = run.cellTools;
    let reply: HostReply;
    try {
      reply = tool ? { value: await callTool(tool, request.args, request.kwargs) } : { error: `unknown tool '${request.name}'` };
    } catch (error) {
      reply = { error: error instanceof ConfigurationError ? error.message : describeError(error) };
    }
    target?.push('value' in reply ? { name: request.name, value: reply.value } : { name: request.name, error: (reply as { error: string }).error });
    return reply;
  }

  /** `signal`: the cell's and the run's, combined. */
  private async leafCall(client: LMClient, prompt: string, run: Run, signal: AbortSignal, call: CallTag, schema: CompiledSchema | undefined): Promise<SubcallRecord> {
    const { callId, index } = call;
    const model = client.model;
    if (run.hub.active) run.hub.emit({ type: 'subcall_start', ...run.base, callId, index, kind: 'llm', model, prompt: prompt.slice(0, 200) });
    const started = performance.now();
    let record: SubcallRecord;
    try {
      run.guard.check();
      const request: LMRequest = { messages: [{ role: 'user', content: prompt }], signal, sampling: this.settings.sampling };
      if (schema?.jsonSchema) request.responseFormat = { name: 'reply', schema: schema.jsonSchema };
      const lm = await client.complete(request);
      run.usage.add(model, lm.usage);
      const usage = summarizeCall(model, lm.usage);
      const executionTimeMs = performance.now() - started;
      if (schema) {
        const checked = await checkReply(schema, lm);
        record = { kind: 'llm', model, prompt, response: checked.response, usage, executionTimeMs: performance.now() - started, callId, index };
        if (checked.error !== undefined) record.error = checked.error;
      } else {
        record = { kind: 'llm', model, prompt, response: lm.text, usage, executionTimeMs, callId, index };
      }
    } catch (error) {
      const message = stoppedMessage(run) ?? `LM query failed - ${error instanceof LMError ? redactURLs(error.message) : describeError(error)}`;
      record = { kind: 'llm', model, prompt, response: '', usage: summarizeCall(model, emptyLMUsage()), executionTimeMs: performance.now() - started, error: message, callId, index };
    }
    if (run.hub.active) run.hub.emit({ type: 'subcall_end', ...run.base, callId, index, record });
    return record;
  }
}

/** A structured reply: its validated value as JSON text, or an error with the issues (and the raw text). */
async function checkReply(schema: CompiledSchema, lm: LMResult): Promise<{ response: string; error?: string }> {
  const parsed = lm.parsed !== undefined ? { value: lm.parsed } : parseJSONReply(lm.text);
  if (!parsed) return { response: lm.text, error: `the reply is not JSON, so it does not match the schema (it starts: ${JSON.stringify(lm.text.slice(0, 80))})` };
  const outcome = await schema.validate(parsed.value);
  if (!outcome.ok) return { response: lm.text, error: `the reply does not match the schema:\n${formatIssues(outcome.issues, 'reply')}` };
  return { response: toJSONText(outcome.value, lm.text) };
}

/** "run stopped: ..." when the run's own limit or signal ended the call. */
export function stoppedMessage(run: Run): string | undefined {
  const reason = run.guard.reason;
  return reason ? `run stopped: ${reason.message}` : undefined;
}
