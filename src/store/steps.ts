/**
 * Durable steps in a store: the steps of the iteration a run is in (its reply, finished
 * sub-calls and cells), numbered per run, and the partial iteration they make when the run
 * never finished that iteration (a closed tab, a crash, a limit mid-cell).
 */
import { findCodeBlocks } from '../core/parsing';
import type { CodeBlockRecord, ContextInput, IterationRecord, RunStep, SubcallRecord } from '../core/types';
import { approximateSize } from './types';

/** A step as stored: numbered in the order the run made it. */
export type StoredStep = RunStep & { seq: number };

/**
 * The iteration the steps describe, marked `partial`: the latest reply, the cells that
 * finished, and the running cell with the sub-calls that had finished (batch order). Undefined
 * when there is no reply among the steps.
 */
export function partialIteration(steps: readonly StoredStep[]): IterationRecord | undefined {
  let reply: Extract<RunStep, { kind: 'reply' }> | undefined;
  for (const step of steps) if (step.kind === 'reply' && (!reply || step.iteration >= reply.iteration)) reply = step;
  if (!reply) return undefined;
  const iteration = reply.iteration;
  const codes = findCodeBlocks(reply.response);
  const cells = new Map<number, CodeBlockRecord>();
  const running = new Map<number, SubcallRecord[]>();
  for (const step of [...steps].sort((a, b) => a.seq - b.seq)) {
    if (step.iteration !== iteration) continue;
    if (step.kind === 'cell') cells.set(step.block, step.record);
    if (step.kind === 'subcall') running.set(step.block, [...(running.get(step.block) ?? []), step.record]);
  }
  for (const [block, subcalls] of running) {
    if (cells.has(block)) continue;
    subcalls.sort((a, b) => (a.index ?? 0) - (b.index ?? 0));
    cells.set(block, {
      code: codes[block] ?? '',
      stdout: '',
      stderr: '',
      locals: [],
      executionTimeMs: 0,
      finalAnswer: null,
      errorType: null,
      // It was cut off while it ran.
      interrupted: true,
      subcalls,
    });
  }
  return {
    iteration,
    timestamp: reply.timestamp,
    prompt: [],
    response: reply.response,
    reasoning: reply.reasoning,
    codeBlocks: [...cells.entries()].sort(([a], [b]) => a - b).map(([, record]) => record),
    finalAnswer: null,
    iterationTimeMs: 0,
    usage: reply.usage,
    partial: true,
  };
}

/** Approximate bytes a context takes in a store (without copying it). */
export function contextSize(context: ContextInput): number {
  if (typeof context === 'string') return context.length;
  if (typeof Blob !== 'undefined' && context instanceof Blob) return context.size;
  if (context instanceof ArrayBuffer || ArrayBuffer.isView(context)) return context.byteLength;
  return approximateSize(context);
}
