/**
 * Live output: throttled code_output events, bounded per cell, flushed when the cell ends,
 * and the loop passing a cell's writes on as events of that cell.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LiveOutput } from '../../src/core/live-output';
import type { RLMEvent } from '../../src/core/types';
import { FakeClient, makeRLM, repl, scripted } from './fakes/fakes';

type Out = Extract<RLMEvent, { type: 'code_output' }>;
const base = { runId: 'r', depth: 0, iteration: 1, block: 0 };

afterEach(() => {
  vi.useRealTimers();
});

describe('LiveOutput', () => {
  it('gathers writes and sends them at most once per interval, streams kept apart', () => {
    vi.useFakeTimers();
    const events: Out[] = [];
    const live = new LiveOutput(base, (e) => events.push(e), 1000, 100);
    live.write('stdout', 'a');
    live.write('stdout', 'b');
    live.write('stderr', 'oops');
    live.write('stdout', 'c');
    expect(events).toEqual([]);
    vi.advanceTimersByTime(100);
    expect(events.map((e) => [e.stream, e.text])).toEqual([
      ['stdout', 'ab'],
      ['stderr', 'oops'],
      ['stdout', 'c'],
    ]);
    expect(events[0]).toMatchObject(base);
    live.write('stdout', 'd');
    live.close();
    expect(events.at(-1)).toMatchObject({ stream: 'stdout', text: 'd' });
    live.write('stdout', 'after the end');
    vi.advanceTimersByTime(1000);
    expect(events).toHaveLength(4);
  });

  it('plays the attacker: 10 MB in one-byte writes makes a bounded stream and a handful of events', () => {
    vi.useFakeTimers();
    const events: Out[] = [];
    const live = new LiveOutput(base, (e) => events.push(e), 5000, 100);
    for (let i = 0; i < 10_000; i++) {
      live.write('stdout', 'x'.repeat(1000));
      if (i % 1000 === 0) vi.advanceTimersByTime(100);
    }
    live.close();
    const streamed = events.filter((e) => e.stream === 'stdout').reduce((n, e) => n + e.text.length, 0);
    expect(streamed).toBe(5000);
    expect(events.length).toBeLessThanOrEqual(3);
    expect(events.at(-1)?.text).toContain('live output stops after 5000 characters');
  });
});

describe('code_output events from the loop', () => {
  it("streams a running cell's writes as events of that cell, before its code_end", async () => {
    const root = new FakeClient('root', scripted(repl('noisy'), 'FINAL(done)'));
    const { rlm, events } = makeRLM({
      root,
      cells: {
        noisy: async ({ write }) => {
          write?.('stdout', 'step 1\n');
          await new Promise((r) => setTimeout(r, 150));
          write?.('stdout', 'step 2\n');
          write?.('stderr', 'warning\n');
          return { stdout: 'step 1\nstep 2\n', stderr: 'warning\n' };
        },
      },
    });
    await rlm.completion('ctx');
    const kinds = events.filter((e) => e.type === 'code_output' || e.type === 'code_end').map((e) => (e.type === 'code_output' ? `${e.stream}:${e.text}` : 'end'));
    expect(kinds).toEqual(['stdout:step 1\n', 'stdout:step 2\n', 'stderr:warning\n', 'end']);
    expect(events.find((e) => e.type === 'code_output')).toMatchObject({ iteration: 1, block: 0 });
  });
});
