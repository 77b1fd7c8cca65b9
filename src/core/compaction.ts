/**
 * Compaction: when the root conversation nears the model's context window, the model
 * summarizes its progress and the conversation restarts from that summary. The REPL's
 * `history` is a list from the first turn on: each turn's messages as one entry, each
 * summary as a `{"type": "summary", "content": ...}` entry.
 */
import { contextWindowFor, estimateTokens } from './context-windows';
import { buildCompactedNote, COMPACTION_REQUEST } from './prompts';
import { callRoot, type Run } from './run';
import type { ChatMessage, LMClient, ReplEnvironment, SamplingArgs } from './types';

export interface CompactionSettings {
  threshold: number;
  contextWindows: Record<string, number> | undefined;
  sampling?: SamplingArgs | undefined;
}

export class Compactor {
  private readonly history: unknown[] = [];
  private count = 0;
  /** Messages a compaction keeps; compacting again is pointless until more arrive. */
  private keptLength = 2;
  /** Settles once the REPL holds the context and the empty `history`. */
  private prepared: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: LMClient,
    private readonly env: ReplEnvironment,
    private readonly settings: CompactionSettings,
  ) {}

  /** `ready` extended with binding `history` to an empty list, so that the first cell can read it. */
  prepare(ready: Promise<void>): Promise<void> {
    this.prepared = ready.then(() => this.env.setVariable('history', this.history, true));
    return this.prepared;
  }

  /** Appends one turn's new messages (the reply and the feedback) to `history`. */
  async record(turn: ChatMessage[], until: <T>(p: Promise<T>) => Promise<T>): Promise<void> {
    this.history.push(turn.map((m) => ({ ...m })));
    await until(this.publish());
  }

  /** The client's figure for the model's window (asked once; undefined when unknown). */
  private known: Promise<number | undefined> | undefined;

  /** Whether `messages` have grown past the threshold since the last compaction. */
  async due(messages: ChatMessage[]): Promise<boolean> {
    if (messages.length <= this.keptLength) return false;
    this.known ??= Promise.resolve(this.client.contextWindow?.()).catch(() => undefined);
    const window = contextWindowFor(this.client.model, this.settings.contextWindows, await this.known);
    return estimateTokens(messages) >= this.settings.threshold * window;
  }

  /**
   * The compacted conversation: system prompt, the opening message (the context's
   * description and any prologue), the summary, then `nextTurn`.
   */
  async compact(run: Run, messages: ChatMessage[], opening: string, nextTurn: string): Promise<ChatMessage[]> {
    const lm = await callRoot(this.client, run, [...messages, { role: 'user', content: COMPACTION_REQUEST }], this.settings.sampling);
    const count = ++this.count;
    this.history.push({ type: 'summary', content: lm.text });
    await this.publish();
    run.hub.emit({ type: 'compaction', ...run.base, summary: lm.text, count });
    run.hub.emit({ type: 'usage', ...run.base, usage: run.usage.summary() });
    const compacted: ChatMessage[] = [
      messages[0]!,
      // The opening without the first turn's "do not answer yet".
      { role: 'user', content: opening },
      { role: 'assistant', content: lm.text },
      { role: 'user', content: `${buildCompactedNote(count)}\n\n${nextTurn}` },
    ];
    this.keptLength = compacted.length;
    return compacted;
  }

  /** The REPL gets the whole list again: setVariable is the one way in the environment contract. */
  private async publish(): Promise<void> {
    await this.prepared;
    await this.env.setVariable('history', this.history, true);
  }
}
