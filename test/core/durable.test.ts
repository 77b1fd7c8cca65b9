/**
 * Ids on sub-call events (callId, index, a child's parentCallId) and durable steps: the
 * reply, each sub-call and each cell reach the sink as they happen, before the iteration ends.
 */
import { describe, expect, it } from 'vitest';
import type { ContextInput, RLMEvent, RunStep, Trajectory } from '../../src/core/types';
import type { ChatMessage } from '../../src/core/types';
import { FakeClient, makeRLM, query, RecordingSink, repl, results, scripted } from './fakes/fakes';

const CONTEXT = 'The quick brown fox. '.repeat(20);

class StepSink extends RecordingSink {
  readonly steps: RunStep[] = [];
  readonly contexts: ContextInput[] = [];
  stepRecorded(trajectory: Trajectory, step: RunStep): void {
    this.log.push(`step:${step.kind}:${trajectory.iterations.length}`);
    this.steps.push(step);
  }
  contextGiven(_trajectory: Trajectory, context: ContextInput): void {
    this.contexts.push(context);
  }
}

function subEvents(events: RLMEvent[]) {
  return events.filter((e): e is Extract<RLMEvent, { type: 'subcall_start' | 'subcall_end' }> => e.type === 'subcall_start' || e.type === 'subcall_end');
}

describe('sub-call ids', () => {
  it('gives every item of a batch its own callId and index, on both events and the record', async () => {
    const sub = new FakeClient('sub-model', async (messages) => {
      const prompt = messages[0]!.content;
      // The first item finishes last: pairing by order would be wrong.
      if (prompt === 'a') await new Promise((r) => setTimeout(r, 15));
      return `R:${prompt}`;
    });
    const root = new FakeClient('root-model', scripted(repl('go'), 'FINAL(done)'));
    const { rlm, events } = makeRLM({
      root,
      others: [sub],
      cells: { go: async (ctx) => ({ stdout: results(await query(ctx, 'llm_query', ['a', 'b', 'c'])).join(',') }) },
    });
    const result = await rlm.completion(CONTEXT);
    const sub3 = subEvents(events);
    const starts = sub3.filter((e) => e.type === 'subcall_start');
    const ends = sub3.filter((e) => e.type === 'subcall_end');
    expect(starts.map((e) => e.index)).toEqual([0, 1, 2]);
    expect(new Set(starts.map((e) => e.callId)).size).toBe(3);
    // 'a' ends last, and its end carries the id its start had.
    expect(ends[2]?.record.prompt).toBe('a');
    for (const end of ends) {
      const start = starts.find((s) => s.callId === end.callId);
      expect(start?.index).toBe(end.index);
      expect(end.record.callId).toBe(end.callId);
      expect(end.record.index).toBe(end.index);
      expect(start?.prompt).toBe(end.record.prompt);
    }
    // The record keeps prompt order whatever the finishing order.
    expect(result.trajectory.iterations[0]?.codeBlocks[0]?.subcalls.map((s) => s.index)).toEqual([0, 1, 2]);
  });

  it('never gives two calls the same callId, across batches and single calls', async () => {
    const sub = new FakeClient('sub-model', async (messages) => `R:${messages[0]!.content}`);
    const root = new FakeClient('root-model', scripted(repl('go'), repl('again'), 'FINAL(done)'));
    const twice = async (ctx: Parameters<typeof query>[0]) => {
      await query(ctx, 'llm_query', ['a', 'b']);
      await query(ctx, 'llm_query', ['c', 'd']);
      await query(ctx, 'llm_query', ['e']);
      return { stdout: 'ok' };
    };
    const { rlm, events } = makeRLM({ root, others: [sub], cells: { go: twice, again: twice } });
    await rlm.completion(CONTEXT);
    const ids = subEvents(events)
      .filter((e) => e.type === 'subcall_start')
      .map((e) => e.callId);
    expect(ids).toHaveLength(10);
    expect(new Set(ids).size).toBe(10);
  });

  it("tags every event of a child RLM with the callId of the rlm_query that started it", async () => {
    const isChild = (messages: ChatMessage[]) => messages[0]!.content.includes('recursion is off');
    const parentScript = scripted(repl('delegate'), 'FINAL(7)');
    const root = new FakeClient('root-model', (messages, request, call) => (isChild(messages) ? repl('child_answer') : parentScript(messages, request, call)));
    const { rlm, events } = makeRLM({
      root,
      rlm: { maxDepth: 2 },
      cells: {
        delegate: async (ctx) => ({ stdout: results(await query(ctx, 'rlm_query', ['task one', 'task two'])).join('|') }),
        child_answer: { finalAnswer: 'child done' },
      },
    });
    await rlm.completion(CONTEXT);
    const starts = subEvents(events).filter((e) => e.type === 'subcall_start' && e.depth === 0);
    expect(starts).toHaveLength(2);
    const childEvents = events.filter((e) => e.depth === 1);
    expect(childEvents.length).toBeGreaterThan(0);
    // Every child event says which call it belongs to; each call has its own child run.
    for (const e of childEvents) expect(starts.map((s) => s.callId)).toContain(e.parentCallId);
    for (const start of starts) {
      const runIds = new Set(childEvents.filter((e) => e.parentCallId === start.callId).map((e) => e.runId));
      expect(runIds.size).toBe(1);
    }
    // The root run's own events have none.
    expect(events.filter((e) => e.depth === 0).every((e) => e.parentCallId === undefined)).toBe(true);
  });
});

describe('durable steps', () => {
  it('hands the sink the reply before the cell runs, each sub-call as it finishes, and each cell', async () => {
    const sink = new StepSink();
    let stepsWhenCellRan = -1;
    const sub = new FakeClient('sub-model', (messages) => `R:${messages[0]!.content}`);
    const root = new FakeClient('root-model', scripted(repl('go'), 'FINAL(done)'));
    const { rlm } = makeRLM({
      root,
      others: [sub],
      rlm: { logger: sink },
      cells: {
        go: async (ctx) => {
          stepsWhenCellRan = sink.steps.length;
          await query(ctx, 'llm_query', ['x', 'y']);
          return { stdout: 'ran' };
        },
      },
    });
    await rlm.completion(CONTEXT);
    // The reply was with the sink before its code started.
    expect(stepsWhenCellRan).toBe(1);
    expect(sink.steps.map((s) => s.kind)).toEqual(['reply', 'subcall', 'subcall', 'cell', 'reply']);
    const [reply, first, , cell] = sink.steps;
    expect(reply).toMatchObject({ kind: 'reply', iteration: 1 });
    expect(first).toMatchObject({ kind: 'subcall', iteration: 1, block: 0 });
    expect(cell).toMatchObject({ kind: 'cell', iteration: 1, block: 0 });
    // Steps of iteration 1 all come before the iteration itself is finished.
    expect(sink.log.indexOf('iterationFinished:1:1')).toBeGreaterThan(sink.log.lastIndexOf('step:cell:0'));
    expect(sink.contexts).toEqual([CONTEXT]);
  });

  it('records custom-tool calls in the cell, results and failures alike', async () => {
    const root = new FakeClient('root-model', scripted(repl('go'), 'FINAL(done)'));
    const { rlm } = makeRLM({
      root,
      rlm: {
        customTools: {
          add: (a: number, b: number) => a + b,
          boom: () => {
            throw new Error('tool broke');
          },
        },
      },
      cells: {
        go: async (ctx) => {
          await ctx.host.handle({ op: 'tool', name: 'add', args: [2, 3], kwargs: {} }, ctx.signal);
          await ctx.host.handle({ op: 'tool', name: 'boom', args: [], kwargs: {} }, ctx.signal);
          return {};
        },
      },
    });
    const result = await rlm.completion(CONTEXT);
    expect(result.trajectory.iterations[0]?.codeBlocks[0]?.toolCalls).toEqual([
      { name: 'add', value: 5 },
      { name: 'boom', error: expect.stringContaining('tool broke') },
    ]);
  });
});
