/**
 * The state of one `completion()`: its limits, usage, event base and where the running
 * cell's sub-calls are recorded. Turns, compaction and sub-calls all work on it.
 */
import type { EventHub } from './events';
import type { RunGuard } from './limits';
import type { RunBase, RunRecorder } from './recorder';
import type { ChatMessage, LMClient, LMResult, ResponseFormat, SamplingArgs, SubcallRecord, ToolCallRecord } from './types';
import type { UsageTracker } from './usage';

export interface Run {
  readonly base: RunBase;
  readonly guard: RunGuard;
  readonly usage: UsageTracker;
  readonly hub: EventHub;
  readonly recorder: RunRecorder;
  /** Sub-calls of the cell running now (recorded in prompt order), if one runs. */
  cellSubcalls: SubcallRecord[] | undefined;
  /** Custom-tool calls of the cell running now, in call order (a resume replays them). */
  cellTools: ToolCallRecord[] | undefined;
  /** The latest non-empty root reply: the partial answer if the run is stopped. */
  bestPartial: string | undefined;
}

/** One root LM call, metered; a stopped run throws its own reason, not the aborted call's. */
export async function callRoot(client: LMClient, run: Run, messages: ChatMessage[], sampling?: SamplingArgs, responseFormat?: ResponseFormat): Promise<LMResult> {
  try {
    const lm = await client.complete({ messages, signal: run.guard.signal, cachePrefix: messages.length, sampling, ...(responseFormat ? { responseFormat } : {}) });
    run.usage.add(client.model, lm.usage);
    return lm;
  } catch (error) {
    throw run.guard.reason ?? error;
  }
}
