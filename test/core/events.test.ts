/**
 * The event hub's `active`: sub-calls skip building events when nobody listens, and build
 * them for every kind of listener (onEvent, stream(), a subscription made later).
 */
import { describe, expect, it } from 'vitest';
import { EventHub } from '../../src/core/events';
import type { RLMEvent } from '../../src/core/types';
import { FakeClient, makeRLM, query, repl, scripted } from './fakes/fakes';

const CONTEXT = 'The quick brown fox. '.repeat(20);

describe('EventHub.active', () => {
  it('is true while an onEvent or a subscriber exists, and only then', () => {
    const bare = new EventHub();
    expect(bare.active).toBe(false);
    const stop = bare.subscribe(() => undefined);
    expect(bare.active).toBe(true);
    stop();
    expect(bare.active).toBe(false);
    expect(new EventHub(() => undefined).active).toBe(true);
  });
});

describe('sub-call events without onEvent', () => {
  function run() {
    const sub = new FakeClient('sub-model', (messages) => `R:${messages[0]!.content}`);
    const root = new FakeClient('root-model', scripted(repl('go'), 'FINAL(done)'));
    return makeRLM({
      root,
      others: [sub],
      rlm: { onEvent: undefined },
      cells: {
        go: async (ctx) => {
          await query(ctx, 'llm_query', ['a', 'b']);
          return {};
        },
      },
    });
  }

  it('still records every sub-call when nobody listens', async () => {
    const { rlm, events } = run();
    const result = await rlm.completion(CONTEXT);
    expect(events).toEqual([]);
    const subcalls = result.trajectory.iterations[0]?.codeBlocks[0]?.subcalls ?? [];
    expect(subcalls.map((s) => [s.prompt, s.response, s.index])).toEqual([
      ['a', 'R:a', 0],
      ['b', 'R:b', 1],
    ]);
    expect(new Set(subcalls.map((s) => s.callId)).size).toBe(2);
  });

  it('gives stream() readers the sub-call events with their ids', async () => {
    const { rlm } = run();
    const seen: RLMEvent[] = [];
    const stream = rlm.stream(CONTEXT);
    for await (const event of stream) seen.push(event);
    await stream.result;
    const starts = seen.filter((e): e is Extract<RLMEvent, { type: 'subcall_start' }> => e.type === 'subcall_start');
    const ends = seen.filter((e): e is Extract<RLMEvent, { type: 'subcall_end' }> => e.type === 'subcall_end');
    expect(starts.map((e) => e.index)).toEqual([0, 1]);
    expect(ends.map((e) => e.callId).sort()).toEqual(starts.map((e) => e.callId).sort());
  });
});
