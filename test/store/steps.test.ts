/**
 * Durable steps on the store side: the partial iteration that steps make, and how RLMLogger
 * writes steps (bursts share a write, a finished iteration supersedes them) and contexts.
 */
import { describe, expect, it } from 'vitest';
import type { ContextInput, LMUsage, RunStep, SubcallRecord, Trajectory } from '../../src/core/types';
import { RLMLogger } from '../../src/store/logger';
import { contextSize, partialIteration, type StoredStep } from '../../src/store/steps';
import type { RunSummary } from '../../src/store/types';
import { RecordingStore, sampleTrajectory, usageOf } from './fixtures';

const usage: LMUsage = { inputTokens: 10, outputTokens: 2, cachedInputTokens: 0 };
const reply = (iteration: number, seq: number): StoredStep => ({
  kind: 'reply',
  iteration,
  seq,
  timestamp: '2026-11-24T09:00:00.000Z',
  response: 'Look.\n```repl\nprint(1)\n```\nThen:\n```repl\nr = llm_query_batched(["a", "b", "c"])\n```',
  usage,
});
const sub = (index: number): SubcallRecord => ({ kind: 'llm', model: 'sub', prompt: `p${index}`, response: `r${index}`, usage: usageOf('sub', 1, 1), executionTimeMs: 1, callId: `c${index}`, index });

describe('partialIteration', () => {
  it('is the reply, the finished cells, and the running cell with its finished sub-calls in batch order', () => {
    const cell0 = { code: 'print(1)', stdout: '1\n', stderr: '', locals: [], executionTimeMs: 3, finalAnswer: null, errorType: null, interrupted: false, subcalls: [] };
    const steps: StoredStep[] = [
      reply(2, 0),
      { kind: 'cell', iteration: 2, block: 0, record: cell0, seq: 1 },
      { kind: 'subcall', iteration: 2, block: 1, record: sub(2), seq: 2 },
      { kind: 'subcall', iteration: 2, block: 1, record: sub(0), seq: 3 },
    ];
    const partial = partialIteration(steps)!;
    expect(partial).toMatchObject({ iteration: 2, partial: true, finalAnswer: null, usage });
    expect(partial.response).toContain('llm_query_batched');
    expect(partial.codeBlocks).toHaveLength(2);
    expect(partial.codeBlocks[0]).toEqual(cell0);
    expect(partial.codeBlocks[1]).toMatchObject({ code: 'r = llm_query_batched(["a", "b", "c"])', interrupted: true });
    expect(partial.codeBlocks[1]!.subcalls.map((s) => s.index)).toEqual([0, 2]);
  });

  it('is nothing without a reply', () => {
    expect(partialIteration([])).toBeUndefined();
    expect(partialIteration([{ kind: 'subcall', iteration: 1, block: 0, record: sub(0), seq: 0 }])).toBeUndefined();
  });
});

describe('contextSize', () => {
  it('measures without copying', () => {
    expect(contextSize('abc')).toBe(3);
    expect(contextSize(new Uint8Array(10))).toBe(10);
    expect(contextSize(new Blob(['12345']))).toBe(5);
    expect(contextSize(['a', 'b'])).toBeGreaterThan(2);
  });
});

class StepStore extends RecordingStore {
  readonly stepWrites: StoredStep[][] = [];
  readonly contexts = new Map<string, ContextInput>();
  /** While set, step writes wait for it (a slow disk the test controls). */
  gate: Promise<void> | undefined;
  async writeSteps(run: RunSummary, steps: StoredStep[]): Promise<void> {
    if (this.gate) await this.gate;
    if (this.delayMs) await new Promise((ok) => setTimeout(ok, this.delayMs));
    this.stepWrites.push(steps);
    this.log.push(`steps ${run.id} ${steps.map((s) => s.seq).join(',')}`);
  }
  async writeContext(runId: string, context: ContextInput): Promise<void> {
    this.contexts.set(runId, context);
  }
}

function live(): Trajectory {
  return { ...sampleTrajectory(), iterations: [], status: 'running' };
}

const subStep = (i: number): RunStep => ({ kind: 'subcall', iteration: 1, block: 0, record: sub(i) });

describe('RLMLogger steps', () => {
  it('writes a burst of steps in one write, and later ones together while a write is out', async () => {
    const store = new StepStore();
    let open: () => void = () => undefined;
    store.gate = new Promise((ok) => (open = ok));
    const logger = new RLMLogger({ store });
    const t = live();
    logger.runStarted(t);
    logger.stepRecorded(t, { kind: 'reply', iteration: 1, timestamp: t.startedAt, response: 'r', usage });
    await Promise.resolve();
    // While that write is out, three sub-calls finish in separate tasks.
    for (let i = 0; i < 3; i++) {
      logger.stepRecorded(t, subStep(i));
      await new Promise((ok) => setTimeout(ok, 0));
    }
    open();
    await logger.flush();
    expect(store.stepWrites.map((w) => w.map((s) => s.seq))).toEqual([[0], [1, 2, 3]]);
  });

  it('drops unwritten steps of an iteration once it finishes, and writes the last steps before the final header', async () => {
    const store = new StepStore();
    store.delayMs = 5;
    const logger = new RLMLogger({ store });
    const t = live();
    const finished = sampleTrajectory().iterations[0]!;
    logger.runStarted(t);
    logger.stepRecorded(t, subStep(0));
    // The iteration ends in the same task: its record replaces the step.
    t.iterations.push(finished);
    logger.iterationFinished(t, finished);
    logger.stepRecorded(t, { kind: 'reply', iteration: 2, timestamp: t.startedAt, response: 'r', usage });
    t.status = 'failed';
    logger.runEnded(t);
    await logger.flush();
    expect(store.log).toEqual(['run run-1 running', 'iteration run-1 1', 'steps run-1 1', 'run run-1 failed']);
  });

  it('keeps contexts up to keepContextBytes, and none with 0', async () => {
    const store = new StepStore();
    const logger = new RLMLogger({ store, keepContextBytes: 100 });
    const small = { ...live(), id: 'small' };
    const big = { ...live(), id: 'big' };
    logger.runStarted(small);
    logger.contextGiven(small, 'x'.repeat(100));
    logger.runStarted(big);
    logger.contextGiven(big, 'x'.repeat(101));
    await logger.flush();
    expect([...store.contexts.keys()]).toEqual(['small']);
    const none = new StepStore();
    const off = new RLMLogger({ store: none, keepContextBytes: 0 });
    const t = live();
    off.runStarted(t);
    off.contextGiven(t, 'x');
    await off.flush();
    expect(none.contexts.size).toBe(0);
  });
});
