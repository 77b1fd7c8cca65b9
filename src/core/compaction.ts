/**
 * Compaction: when the root conversation nears the model's context window, the model
 * summarizes its progress and the conversation restarts from that summary. The REPL's
 * `history` keeps every compacted stretch and its summary.
 */
import { contextWindowFor, estimateTokens } from './context-windows';
import { buildCompactedNote, COMPACTION_REQUEST } from './prompts';
import { callRoot, type Run } from './run';
import type { ChatMessage, LMClient, ReplEnvironment } from './types';

export class Compactor {
  private readonly history: unknown[] = [];
  private count = 0;
  /** Messages a compaction keeps; compacting again is pointless until more arrive. */
  private keptLength = 2;

  constructor(
    private readonly client: LMClient,
    private readonly env: ReplEnvironment,
    private readonly settings: { threshold: number; contextWindows: Record<string, number> | undefined },
  ) {}

  /** Whether `messages` have grown past the threshold since the last compaction. */
  due(messages: ChatMessage[]): boolean {
    if (messages.length <= this.keptLength) return false;
    const window = contextWindowFor(this.client.model, this.settings.contextWindows);
    return estimateTokens(messages) >= this.settings.threshold * window;
  }

  /** The compacted conversation: system prompt, metadata, the summary, then `nextTurn`. */
  async compact(run: Run, messages: ChatMessage[], metadata: string, nextTurn: string): Promise<ChatMessage[]> {
    const lm = await callRoot(this.client, run, [...messages, { role: 'user', content: COMPACTION_REQUEST }]);
    const count = ++this.count;
    this.history.push(messages.slice(2).map((m) => ({ ...m })), { type: 'summary', content: lm.text });
    await this.env.setVariable('history', this.history, true);
    run.hub.emit({ type: 'compaction', ...run.base, summary: lm.text, count });
    run.hub.emit({ type: 'usage', ...run.base, usage: run.usage.summary() });
    const compacted: ChatMessage[] = [
      messages[0]!,
      // The metadata without the first turn's "do not answer yet".
      { role: 'user', content: metadata },
      { role: 'assistant', content: lm.text },
      { role: 'user', content: `${buildCompactedNote(count)}\n\n${nextTurn}` },
    ];
    this.keptLength = compacted.length;
    return compacted;
  }
}
