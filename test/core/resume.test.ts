/**
 * resume(): a stored run cut off after iteration 2 of 4 is replayed (no LM calls: sub-calls
 * and tools answered from the record) and continued from turn 3 with the conversation the
 * original would have sent; divergence, a missing or different context, and runs that cannot
 * be resumed give typed errors before any LM call.
 */
import { describe, expect, it } from 'vitest';
import { BudgetExceededError, ReplayMismatchError, ResumeError } from '../../src/core/errors';
import type { RunSource } from '../../src/core/resume';
import type { ContextInput, IterationRecord, Trajectory, UsageSummary } from '../../src/core/types';
import { FakeClient, makeRLM, query, RecordingSink, rejection, repl, results, scripted, type Cell } from './fakes/fakes';

const CONTEXT = 'The quick brown fox. '.repeat(20);

class MemorySource implements RunSource {
  readonly runs = new Map<string, Trajectory>();
  readonly contexts = new Map<string, ContextInput>();
  async getRun(id: string): Promise<Trajectory | undefined> {
    return this.runs.get(id);
  }
  async getContext(id: string): Promise<ContextInput | undefined> {
    return this.contexts.get(id);
  }
  /** Keeps `run` as a tab closed after `iterations` iterations would have left it (with the usage it had then). */
  cutAfter(run: Trajectory, iterations: number, usage: UsageSummary, context?: ContextInput): string {
    const copy: Trajectory = structuredClone({ ...run, iterations: run.iterations.slice(0, iterations), status: 'interrupted', usage });
    delete copy.response;
    delete copy.endReason;
    delete copy.executionTimeMs;
    this.runs.set(copy.id, copy);
    if (context !== undefined) this.contexts.set(copy.id, context);
    return copy.id;
  }
}

/** Four turns: two cells with a sub-call and a tool call, a third cell, then the answer. */
function fourTurns(toolCalls: { count: number }, cellOverride: Partial<Record<string, Cell>> = {}) {
  const root = new FakeClient('root-model', scripted(repl('step1'), repl('step2'), repl('step3'), 'FINAL(42)'));
  const sub = new FakeClient('sub-model', (messages) => `sub:${messages[0]!.content}`);
  const cells: Record<string, Cell> = {
    step1: async (ctx) => {
      const r = results(await query(ctx, 'llm_query', ['first', 'second']));
      const t = await ctx.host.handle({ op: 'tool', name: 'lookup', args: ['k'], kwargs: {} }, ctx.signal);
      return { stdout: `${r.join(',')} ${JSON.stringify(t)}\n` };
    },
    step2: { stdout: 'two\n' },
    step3: async (ctx) => ({ stdout: `${results(await query(ctx, 'llm_query', ['third'])).join(',')}\n` }),
    ...cellOverride,
  };
  const customTools = {
    lookup: (key: string) => {
      toolCalls.count++;
      return `value-of-${key}`;
    },
  };
  return { root, sub, cells, customTools };
}

/** The usage a stored header holds after each iteration. */
class UsageSink extends RecordingSink {
  readonly usage: UsageSummary[] = [];
  override iterationFinished(trajectory: Trajectory, iteration: IterationRecord): void {
    super.iterationFinished(trajectory, iteration);
    this.usage.push(structuredClone(trajectory.usage));
  }
}

async function original(source: MemorySource) {
  const tools = { count: 0 };
  const { root, sub, cells, customTools } = fourTurns(tools);
  const sink = new UsageSink();
  const { rlm } = makeRLM({ root, others: [sub], cells, rlm: { customTools, logger: sink } });
  const result = await rlm.completion(CONTEXT, { rootPrompt: 'What?' });
  return { result, root, sub, tools, id: source.cutAfter(result.trajectory, 2, sink.usage[1]!, CONTEXT) };
}

describe('resume', () => {
  it('replays the finished cells from the record and asks the model for turns 3 and 4 only', async () => {
    const source = new MemorySource();
    const first = await original(source);
    const tools = { count: 0 };
    const { root, sub, cells, customTools } = fourTurns(tools);
    // The resumed run's model starts at turn 3.
    const resumedRoot = new FakeClient('root-model', scripted(repl('step3'), 'FINAL(42)'));
    const { rlm, envs, events } = makeRLM({ root: resumedRoot, others: [sub], cells, rlm: { customTools } });
    const result = await rlm.resume(first.id, { store: source });
    expect(result.response).toBe('42');
    expect(root.calls).toHaveLength(0);
    expect(resumedRoot.calls).toHaveLength(2);
    // Turn 3 is sent exactly what the original run sent at turn 3.
    expect(resumedRoot.calls[0]).toEqual(first.root.calls[2]);
    // Sub-calls and tools of the replayed cells came from the record; turn 3's cell called the sub-model.
    expect(sub.calls.map((m) => m[0]!.content)).toEqual(['third']);
    expect(tools.count).toBe(0);
    expect(envs[0]!.executed).toEqual(['step1', 'step2', 'step3']);
    // Same run, all four iterations, usage counting the first session's calls.
    expect(result.trajectory.id).toBe(first.id);
    expect(result.trajectory.iterations.map((it) => it.iteration)).toEqual([1, 2, 3, 4]);
    expect(result.usage.calls).toBe(first.result.usage.calls);
    expect(events.find((e) => e.type === 'resumed')).toMatchObject({ runId: first.id, iterations: 2, cells: 2 });
  });

  it('stops with ReplayMismatchError, before any LM call, when a replayed cell prints something else', async () => {
    const source = new MemorySource();
    const first = await original(source);
    const { sub, cells, customTools } = fourTurns({ count: 0 }, { step2: { stdout: 'two, but different\n' } });
    const root = new FakeClient('root-model', scripted(repl('step3'), 'FINAL(42)'));
    const sink = new RecordingSink();
    const { rlm } = makeRLM({ root, others: [sub], cells, rlm: { customTools, logger: sink } });
    const error = await rejection(rlm.resume(first.id, { store: source }));
    expect(error).toBeInstanceOf(ReplayMismatchError);
    // Nothing was written: the stored run stays as it was.
    expect(sink.log.filter((entry) => entry !== 'flush')).toEqual([]);
    expect(error).toMatchObject({ iteration: 2, block: 0, field: 'stdout', expected: 'two\n', actual: 'two, but different\n', reason: 'replay_mismatch' });
    expect(root.calls).toHaveLength(0);
    expect(sub.calls).toHaveLength(0);
    // The RLM is usable afterwards.
    await expect(rlm.completion(CONTEXT)).resolves.toBeDefined();
  });

  it('stops with ReplayMismatchError when a replayed cell asks for other sub-calls than the record holds', async () => {
    const source = new MemorySource();
    const first = await original(source);
    const { sub, cells, customTools } = fourTurns({ count: 0 }, {
      // As Python would, the cell gets the error reply (and would raise).
      step1: async (ctx) => ({ stdout: JSON.stringify(await query(ctx, 'llm_query', ['first', 'changed'])) }),
    });
    const root = new FakeClient('root-model', () => 'FINAL(x)');
    const { rlm } = makeRLM({ root, others: [sub], cells, rlm: { customTools } });
    const error = await rejection(rlm.resume(first.id, { store: source }));
    expect(error).toMatchObject({ name: 'ReplayMismatchError', field: 'subcalls', expected: 'second', actual: 'changed' });
    expect(sub.calls).toHaveLength(0);
  });

  it('names a missing context and takes it from the caller; refuses a different one', async () => {
    const source = new MemorySource();
    const first = await original(source);
    source.contexts.clear();
    const { sub, cells, customTools } = fourTurns({ count: 0 });
    const make = () => makeRLM({ root: new FakeClient('root-model', scripted(repl('step3'), 'FINAL(42)')), others: [sub], cells, rlm: { customTools } }).rlm;
    const missing = await rejection(make().resume(first.id, { store: source }));
    expect(missing).toBeInstanceOf(ResumeError);
    expect(missing).toMatchObject({ reason: 'context_missing', runId: first.id });
    expect((missing as Error).message).toContain(`rlm.resume('${first.id}', { context })`);
    expect((missing as Error).message).toContain('str of 420 characters');
    const wrong = await rejection(make().resume(first.id, { store: source, context: 'something else' }));
    expect(wrong).toMatchObject({ reason: 'context_mismatch' });
    const result = await make().resume(first.id, { store: source, context: CONTEXT });
    expect(result.response).toBe('42');
  });

  it('compares the byte sizes of a File-like context given again: another size is refused before any replay', async () => {
    const source = new MemorySource();
    const first = await original(source);
    source.contexts.clear();
    // As if the run had read a 420-byte File.
    const stored = source.runs.get(first.id)!;
    stored.context = { ...stored.context, bytes: 420 };
    const { sub, cells, customTools } = fourTurns({ count: 0 });
    const make = () => makeRLM({ root: new FakeClient('root-model', scripted(repl('step3'), 'FINAL(42)')), others: [sub], cells, rlm: { customTools } }).rlm;
    const other = new Blob(['x'.repeat(421)]);
    const wrong = await rejection(make().resume(first.id, { store: source, context: other }));
    expect(wrong).toMatchObject({ reason: 'context_mismatch' });
    expect((wrong as Error).message).toContain('421 bytes');
    expect((wrong as Error).message).toContain('420 bytes');
    expect(sub.calls).toHaveLength(0);
  });

  it('refuses runs it cannot continue, and needs a store', async () => {
    const source = new MemorySource();
    const first = await original(source);
    const { sub, cells, customTools } = fourTurns({ count: 0 });
    const { rlm } = makeRLM({ root: new FakeClient('root-model', () => 'FINAL(x)'), others: [sub], cells, rlm: { customTools } });
    expect(await rejection(rlm.resume(first.id))).toMatchObject({ name: 'ResumeError', reason: 'no_store' });
    expect(await rejection(rlm.resume('nope', { store: source }))).toMatchObject({ reason: 'not_found' });
    source.runs.set('done', { ...first.result.trajectory, id: 'done' });
    expect(await rejection(rlm.resume('done', { store: source }))).toMatchObject({ reason: 'not_resumable' });
    source.runs.set('typed', { ...source.runs.get(first.id)!, id: 'typed', schema: { vendor: 'json-schema' } });
    expect(await rejection(rlm.resume('typed', { store: source }))).toMatchObject({ reason: 'not_resumable' });
    const other = makeRLM({ root: new FakeClient('another-model', () => 'FINAL(x)'), cells }).rlm;
    const wrongModel = await rejection(other.resume(first.id, { store: source }));
    expect((wrongModel as Error).message).toContain("'root-model'");
  });

  it('counts what the run had spent against maxBudget', async () => {
    const source = new MemorySource();
    const first = await original(source);
    const stored = source.runs.get(first.id)!;
    stored.usage.models['root-model']!.costUSD = 0.9;
    const { sub, cells, customTools } = fourTurns({ count: 0 });
    const root = new FakeClient('root-model', scripted(repl('step3'), 'FINAL(42)'), { costUSD: 0.2 });
    const { rlm } = makeRLM({ root, others: [sub], cells, rlm: { customTools, maxBudget: 1 } });
    const error = await rejection(rlm.resume(first.id, { store: source }));
    expect(error).toBeInstanceOf(BudgetExceededError);
    expect(root.calls).toHaveLength(1);
  });
});
