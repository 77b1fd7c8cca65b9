/**
 * Regression tests for bugs found in the loop, its parsing and the Anthropic conversion
 * (each failed before its fix).
 */
import { describe, expect, it, vi } from 'vitest';
import { toAnthropicMessages } from '../../src/clients/anthropic';
import { findTextAnswer } from '../../src/core/parsing';
import { BudgetExceededError, CancellationError, ConfigurationError, TimeoutExceededError } from '../../src/core/errors';
import { COMPACTION_REQUEST } from '../../src/core/prompts';
import type { ChatMessage, HostReply } from '../../src/core/types';
import { FakeClient, makeRLM, query, RecordingSink, rejection, repl, results, scripted } from './fakes/fakes';

const CONTEXT = 'The quick brown fox. '.repeat(20);


describe('regression: limits crossed by a root call', () => {
  it('carries the latest model response as the partial answer', async () => {
    const second = repl('b', 'second, more complete reply');
    const root = new FakeClient('root-model', scripted(repl('a', 'first'), second, 'FINAL(never)'), { costUSD: 0.006 });
    const { rlm } = makeRLM({ root, cells: { a: {}, b: {} }, rlm: { maxBudget: 0.01 } });
    const error = (await rejection(rlm.completion(CONTEXT))) as BudgetExceededError;
    expect(error).toBeInstanceOf(BudgetExceededError);
    expect(error.partialAnswer).toBe(second);
  });

  it('runs no code from a reply that arrived after the run was stopped', async () => {
    const root = new FakeClient('root-model', scripted(repl('a'), repl('b'), 'FINAL(never)'), { costUSD: 0.006 });
    const { rlm, env } = makeRLM({ root, cells: { a: {}, b: {} }, rlm: { maxBudget: 0.01 } });
    expect(await rejection(rlm.completion(CONTEXT))).toBeInstanceOf(BudgetExceededError);
    expect(env().executed).toEqual(['a']);
  });
});

describe('regression: running out of iterations', () => {
  it('records the final-answer call in the trajectory, as the reference does', async () => {
    const root = new FakeClient('root-model', scripted(repl('a'), 'The answer is 7.'));
    const { rlm } = makeRLM({ root, cells: { a: {} }, rlm: { maxIterations: 1 } });
    const { trajectory } = await rlm.completion(CONTEXT);
    expect(trajectory.iterations).toHaveLength(2);
    expect(trajectory.iterations[1]?.response).toBe('The answer is 7.');
    expect(trajectory.iterations[1]?.finalAnswer).toBe('The answer is 7.');
  });
});

describe('regression: persistent sessions', () => {
  it('does not describe the newest context as `context` (which stays context_0)', async () => {
    const root = new FakeClient('root-model', scripted('FINAL(1)', 'FINAL(2)'));
    const { rlm } = makeRLM({ root, rlm: { persistent: true } });
    await rlm.completion('a string context of 33 characters');
    await rlm.completion(['x', 'y', 'z']);
    const opening = root.calls[1]![1]!.content;
    // `context` is still the string; the new list is context_1.
    expect(opening).not.toMatch(/`context` is a Python `list`/);
    expect(opening).toMatch(/`context_1`[^.\n]*`list`/);
  });
});

describe('regression: compaction', () => {
  it('does not compact before the model has replied, even at a tiny threshold', async () => {
    const script = scripted(repl('a'), 'FINAL(x)');
    const root = new FakeClient('tiny-model', (messages, request, call) =>
      messages.at(-1)?.content === COMPACTION_REQUEST ? 'SUMMARY' : script(messages, request, call),
    );
    const { rlm, env } = makeRLM({ root, cells: { a: {} }, rlm: { compaction: true, compactionThreshold: 0.01, contextWindows: { 'tiny-model': 1000 } } });
    await rlm.completion(CONTEXT);
    expect(root.lastMessage(0)).not.toBe(COMPACTION_REQUEST);
    const history = env().setCalls.filter((c) => c.name === 'history').at(-1)?.value as unknown[] | undefined;
    for (const entry of history ?? []) if (Array.isArray(entry)) expect(entry.length).toBeGreaterThan(0);
  });
});

describe('regression: child RLMs on pooled REPLs', () => {
  it('gives a child on a reused (reset) REPL the custom tools too', async () => {
    const isChild = (messages: ChatMessage[]) => messages[0]!.content.includes('recursion is off');
    const parent = scripted(repl('delegate'), 'FINAL(done)');
    const root = new FakeClient('root-model', (messages, request, call) => (isChild(messages) ? repl('child') : parent(messages, request, call)));
    const toolsSeen: string[][] = [];
    const replies: HostReply[] = [];
    const { rlm, envs } = makeRLM({
      root,
      rlm: { maxDepth: 2, customTools: { lookup: () => 1 } },
      cells: {
        delegate: async (ctx) => {
          replies.push(await query(ctx, 'rlm_query', ['first child']));
          replies.push(await query(ctx, 'rlm_query', ['second child']));
          return {};
        },
        child: ({ repl: r }) => {
          toolsSeen.push(r.tools.map((t) => t.name));
          return { finalAnswer: 'ok' };
        },
      },
    });
    await rlm.completion(CONTEXT);
    expect(replies.map(results)).toEqual([['ok'], ['ok']]);
    // The second child reused the first child's REPL after the pool reset it.
    expect(envs).toHaveLength(2);
    expect(toolsSeen).toEqual([['lookup'], ['lookup']]);
  });
});

describe('regression: Anthropic messages', () => {
  it('never sends an empty text block (the API rejects them) when a reply was empty', () => {
    const input: ChatMessage[] = [
      { role: 'system', content: 's' },
      { role: 'user', content: 'metadata' },
      { role: 'assistant', content: '' },
      { role: 'user', content: 'No ```repl block was found...' },
    ];
    const { system, messages } = toAnthropicMessages(input, true);
    for (const block of [...system, ...messages.flatMap((m) => m.content)]) expect(block.text.trim()).not.toBe('');
    // Alternation is kept: the API requires user/assistant turns to alternate.
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
  });
});

describe('regression: a REPL that never boots', () => {
  /** Lets every pending promise callback and immediate run (the fakes are all in memory). */
  const drain = async () => {
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  };

  function hangingBoot(signal: AbortSignal | undefined, rlmOptions = {}) {
    const root = new FakeClient('root-model', scripted(repl('print(1)'), 'FINAL(x)'));
    const { rlm } = makeRLM({
      root,
      cells: { 'print(1)': { stdout: '1' } },
      rlm: rlmOptions,
      // The boot never finishes (worker files missing, a wedged worker).
      onRepl: (r) => {
        r.start = () => new Promise(() => undefined);
      },
    });
    let settled: unknown;
    rlm.completion(CONTEXT, { signal }).then(
      () => (settled = 'resolved'),
      (error: unknown) => (settled = error),
    );
    return { root, settled: () => settled };
  }

  it('still ends with CancellationError when the signal aborts', async () => {
    const controller = new AbortController();
    const run = hangingBoot(controller.signal);
    await drain();
    // The first reply has code, so the loop now waits for the REPL.
    expect(run.root.calls).toHaveLength(1);
    expect(run.settled()).toBeUndefined();
    controller.abort();
    await drain();
    expect(run.settled()).toBeInstanceOf(CancellationError);
  });

  it('still ends with TimeoutExceededError when maxTimeMs passes', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const run = hangingBoot(undefined, { maxTimeMs: 10_000 });
      await vi.advanceTimersByTimeAsync(10_000);
      await drain();
      expect(run.settled()).toBeInstanceOf(TimeoutExceededError);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('regression: run config', () => {
  it('keeps non-secret backend options such as maxOutputTokens', async () => {
    const root = new FakeClient('root-model', scripted('FINAL(x)'));
    const { rlm } = makeRLM({ root, rlm: { backendOptions: { model: 'root-model', apiKey: 'sk-secret', maxOutputTokens: 1024, timeoutMs: 5000 } } });
    const { trajectory } = await rlm.completion(CONTEXT);
    expect(JSON.stringify(trajectory.config)).not.toContain('sk-secret');
    expect(trajectory.config.backendOptions).toEqual({ model: 'root-model', maxOutputTokens: 1024, timeoutMs: 5000 });
  });
});

describe('regression: FINAL(...) over several lines', () => {
  it('does not stop at a nested ")" that happens to end a line', () => {
    expect(findTextAnswer('FINAL(The options are (a)\nand (b), in that order)')).toEqual({
      kind: 'final',
      value: 'The options are (a)\nand (b), in that order',
    });
    expect(findTextAnswer('FINAL(Steps:\n1. parse (fast)\n2. count)')).toEqual({ kind: 'final', value: 'Steps:\n1. parse (fast)\n2. count' });
  });
});

describe('regression: failures while a run is being set up', () => {
  it('ends the run cleanly when the environment factory throws (e.g. remote without proxyURL)', async () => {
    const root = new FakeClient('root-model', scripted('FINAL(x)'));
    const sink = new RecordingSink();
    const { rlm, events } = makeRLM({
      root,
      rlm: { logger: sink },
      onRepl: () => {
        throw new ConfigurationError("environment 'remote' needs environmentOptions.proxyURL");
      },
    });
    await expect(rlm.completion(CONTEXT)).rejects.toThrow(ConfigurationError);
    // A run the logger saw start must be seen to end, or the store keeps it 'running' forever.
    expect(sink.log).toContain('runStarted');
    expect(sink.endedStatus).toBe('failed');
    expect(events.map((e) => e.type)).toEqual(['run_start', 'error']);
    // The instance is not left marked as busy.
    await expect(rlm.completion(CONTEXT)).rejects.toThrow(/proxyURL/);
  });

  it('leaves no timer behind when the context type is unsupported', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const root = new FakeClient('root-model', scripted());
      const { rlm } = makeRLM({ root, rlm: { maxTimeMs: 60_000 } });
      await expect(rlm.completion(42 as unknown as string)).rejects.toThrow(ConfigurationError);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('regression: warmUp()', () => {
  it('still registers the custom tools in the first completion', async () => {
    const root = new FakeClient('root-model', scripted('FINAL(x)'));
    const { rlm, env } = makeRLM({ root, rlm: { customTools: { lookup: () => 1, limit: 3 } } });
    const info = await rlm.warmUp();
    expect(info.runtime).toBe('fake');
    await rlm.completion(CONTEXT);
    expect(env().tools).toEqual([
      { name: 'lookup', kind: 'function' },
      { name: 'limit', kind: 'data', value: 3 },
    ]);
  });
});

describe('regression: maxDepth 0', () => {
  it('is a plain LM call on the context and the question, logged like any run', async () => {
    const root = new FakeClient('root-model', scripted('plain answer'));
    const sink = new RecordingSink();
    const { rlm, events } = makeRLM({ root, rlm: { maxDepth: 0, logger: sink } });
    const result = await rlm.completion(new Blob(['blob context']), { rootPrompt: 'the question' });
    expect(result.response).toBe('plain answer');
    expect(root.calls[0]).toEqual([{ role: 'user', content: 'blob context\n\nthe question' }]);
    expect(result.trajectory.iterations).toHaveLength(1);
    expect(sink.log).toContain('runStarted');
    expect(sink.endedStatus).toBe('completed');
    expect(events.map((e) => e.type)).toEqual(['run_start', 'iteration_end', 'usage', 'run_end']);
  });
});

describe('regression: storage failures', () => {
  it('become storage_error events when the logger reports them', async () => {
    const { StorageError } = await import('../../src/core/errors');
    class FailingSink extends EventTarget {
      runStarted() {
        const event = Object.assign(new Event('error'), { error: new StorageError('quota exceeded', 'quota') });
        this.dispatchEvent(event);
      }
      iterationFinished() {}
      runEnded() {}
      async flush() {}
    }
    const root = new FakeClient('root-model', scripted('FINAL(x)'));
    const { rlm, events } = makeRLM({ root, rlm: { logger: new FailingSink() } });
    const result = await rlm.completion(CONTEXT);
    expect(result.response).toBe('x');
    const storage = events.filter((e) => e.type === 'storage_error');
    expect(storage).toHaveLength(1);
    expect(storage[0]).toMatchObject({ error: { reason: 'quota' } });
  });
});
