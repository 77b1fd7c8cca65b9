import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  BudgetExceededError,
  CancellationError,
  ConfigurationError,
  ErrorThresholdExceededError,
  LMError,
  RLMError,
  RunEndedError,
  TimeoutExceededError,
  TokenLimitExceededError,
} from '../../src/core/errors';
import { COMPACTION_REQUEST, FINAL_REQUEST, NO_CODE_REMINDER } from '../../src/core/prompts';
import type { ChatMessage, CompletionResult, HostReply, RLMEvent } from '../../src/core/types';
import {
  FakeClient,
  hangUntilAborted,
  makeRLM,
  query,
  RecordingSink,
  rejection,
  repl,
  results,
  scripted,
  type Cell,
} from './fakes/fakes';

const CONTEXT = 'The quick brown fox. '.repeat(20);


afterEach(() => {
  vi.useRealTimers();
});

describe('answers', () => {
  it('ends when a cell marks an answer', async () => {
    const root = new FakeClient('root-model', scripted(repl('x = 1\nprint(x)'), repl('answer_it')));
    const { rlm, env } = makeRLM({ root, cells: { 'x = 1\nprint(x)': { stdout: '1\n', locals: ['x'] }, answer_it: { finalAnswer: '42' } } });
    const result = await rlm.completion(CONTEXT, { rootPrompt: 'What is x?' });
    expect(result.response).toBe('42');
    expect(result.trajectory.status).toBe('completed');
    expect(result.trajectory.endReason).toBe('answer');
    expect(result.trajectory.response).toBe('42');
    expect(result.trajectory.iterations).toHaveLength(2);
    expect(result.trajectory.iterations[1]?.finalAnswer).toBe('42');
    expect(env().executed).toEqual(['x = 1\nprint(x)', 'answer_it']);
    expect(root.calls).toHaveLength(2);
    expect(root.lastMessage(1)).toContain('REPL output:\n1\n\nREPL variables: [x]');
    expect(result.usage.calls).toBe(2);
    expect(result.usage.models['root-model']?.calls).toBe(2);
    expect(result.executionTimeMs).toBeGreaterThanOrEqual(0);
  });

  it('runs the blocks of a reply in order and stops at the block that answers', async () => {
    const root = new FakeClient('root-model', scripted(['```repl', 'a', '```', '```repl', 'b', '```', '```repl', 'c', '```'].join('\n')));
    const { rlm, env } = makeRLM({ root, cells: { a: { stdout: 'A' }, b: { finalAnswer: 'from b' }, c: { stdout: 'C' } } });
    const result = await rlm.completion(CONTEXT);
    expect(result.response).toBe('from b');
    expect(env().executed).toEqual(['a', 'b']);
    expect(result.trajectory.iterations[0]?.codeBlocks.map((b) => b.code)).toEqual(['a', 'b']);
  });

  it('feeds back every block of a reply, numbered', async () => {
    const root = new FakeClient('root-model', scripted(['```repl', 'a', '```', '```repl', 'b', '```'].join('\n'), 'FINAL(done)'));
    const { rlm } = makeRLM({ root, cells: { a: { stdout: 'out-a' }, b: { stderr: 'ZeroDivisionError: division by zero', errorType: 'ZeroDivisionError' } } });
    await rlm.completion(CONTEXT);
    const feedback = root.lastMessage(1);
    expect(feedback).toContain('REPL output (block 1):\nout-a');
    expect(feedback).toContain('REPL output (block 2):\nZeroDivisionError: division by zero');
  });

  it('accepts FINAL(...) written in the reply text', async () => {
    const root = new FakeClient('root-model', scripted(repl('print(1)'), 'I have verified it.\nFINAL(Paris)'));
    const { rlm, env } = makeRLM({ root, cells: { 'print(1)': { stdout: '1' } } });
    const result = await rlm.completion(CONTEXT);
    expect(result.response).toBe('Paris');
    expect(result.trajectory.endReason).toBe('answer');
    expect(env().executed).toEqual(['print(1)']);
  });

  it('resolves FINAL_VAR(name) in the REPL', async () => {
    const root = new FakeClient('root-model', scripted(repl('result = "forty-two"'), 'FINAL_VAR(result)'));
    const { rlm } = makeRLM({
      root,
      cells: {
        'result = "forty-two"': ({ repl: r }) => {
          r.vars.set('result', 'forty-two');
          return { locals: ['result'] };
        },
      },
    });
    const result = await rlm.completion(CONTEXT);
    expect(result.response).toBe('forty-two');
    expect(result.trajectory.iterations[1]?.finalAnswer).toBe('forty-two');
  });

  it('feeds back a FINAL_VAR of a missing variable as an error, not an answer', async () => {
    const root = new FakeClient('root-model', scripted('FINAL_VAR(nope)', repl('nope = 7'), 'FINAL_VAR("nope")'));
    const { rlm } = makeRLM({
      root,
      cells: {
        'nope = 7': ({ repl: r }) => {
          r.vars.set('nope', 7);
          return {};
        },
      },
    });
    const result = await rlm.completion(CONTEXT);
    expect(result.response).toBe('7');
    expect(result.trajectory.iterations[0]?.finalAnswer).toBeNull();
    expect(root.lastMessage(1)).toContain("no variable named 'nope'");
    expect(root.lastMessage(1)).not.toContain(NO_CODE_REMINDER);
    expect(result.trajectory.iterations).toHaveLength(3);
  });

  it('runs the code of a reply before resolving its FINAL_VAR', async () => {
    const reply = `${repl('total = 12')}\nFINAL_VAR(total)`;
    const root = new FakeClient('root-model', scripted(reply));
    const { rlm } = makeRLM({
      root,
      cells: {
        'total = 12': ({ repl: r }) => {
          r.vars.set('total', 12);
          return {};
        },
      },
    });
    expect((await rlm.completion(CONTEXT)).response).toBe('12');
  });

  it('does not take FINAL(...) inside a repl block as an answer', async () => {
    const root = new FakeClient('root-model', scripted(repl('FINAL(not yet)'), 'FINAL(yes)'));
    const { rlm } = makeRLM({ root, cells: { 'FINAL(not yet)': { stderr: "NameError: name 'FINAL' is not defined", errorType: 'NameError' } } });
    const result = await rlm.completion(CONTEXT);
    expect(result.response).toBe('yes');
    expect(root.calls).toHaveLength(2);
  });
});

describe('replies without code', () => {
  it('feeds a reply with no code back with the reminder', async () => {
    const root = new FakeClient('root-model', scripted('Let me think about this.', 'FINAL(ok)'));
    const { rlm } = makeRLM({ root });
    const result = await rlm.completion(CONTEXT);
    expect(result.response).toBe('ok');
    expect(root.lastMessage(1)).toContain(NO_CODE_REMINDER);
    expect(root.calls[1]?.at(-2)).toEqual({ role: 'assistant', content: 'Let me think about this.' });
  });

  it('says a ```python block was not run', async () => {
    const root = new FakeClient('root-model', scripted('```python\nprint(context[:100])\n```', 'FINAL(ok)'));
    const { rlm, env } = makeRLM({ root });
    await rlm.completion(CONTEXT);
    expect(root.lastMessage(1)).toContain(NO_CODE_REMINDER);
    expect(root.lastMessage(1)).toMatch(/python.*not run/);
    expect(env().executed).toEqual([]);
  });

  it('does not crash on an empty or blank reply', async () => {
    const root = new FakeClient('root-model', scripted('', '   \n', 'FINAL(recovered)'));
    const { rlm } = makeRLM({ root });
    const result = await rlm.completion(CONTEXT);
    expect(result.response).toBe('recovered');
    expect(root.lastMessage(1)).toContain(NO_CODE_REMINDER);
    expect(root.lastMessage(2)).toContain(NO_CODE_REMINDER);
    expect(result.trajectory.iterations.map((i) => i.response)).toEqual(['', '   \n', 'FINAL(recovered)']);
  });

  it('keeps the reasoning text in the iteration record', async () => {
    const root = new FakeClient('root-model', scripted({ text: 'FINAL(a)', reasoning: 'I thought hard' }));
    const { rlm } = makeRLM({ root });
    const result = await rlm.completion(CONTEXT);
    expect(result.trajectory.iterations[0]?.reasoning).toBe('I thought hard');
  });
});

describe('running out of iterations', () => {
  it('makes one last call asking for a final answer', async () => {
    const root = new FakeClient('root-model', scripted(repl('a'), repl('b'), 'The answer is 7.'));
    const { rlm, env } = makeRLM({ root, cells: { a: { stdout: 'A' }, b: { stdout: 'B' } }, rlm: { maxIterations: 2 } });
    const result = await rlm.completion(CONTEXT);
    expect(result.response).toBe('The answer is 7.');
    expect(result.trajectory.endReason).toBe('max_iterations');
    expect(result.trajectory.status).toBe('completed');
    expect(root.calls).toHaveLength(3);
    expect(root.lastMessage(1)).toContain('Turn 2 of 2');
    expect(root.lastMessage(2)).toContain(FINAL_REQUEST);
    expect(root.lastMessage(2)).toContain('REPL output:\nB');
    expect(env().executed).toEqual(['a', 'b']);
  });

  it('reads FINAL(...) in the last reply', async () => {
    const root = new FakeClient('root-model', scripted(repl('a'), 'FINAL(7)'));
    const { rlm } = makeRLM({ root, cells: { a: {} }, rlm: { maxIterations: 1 } });
    const result = await rlm.completion(CONTEXT);
    expect(result.response).toBe('7');
    expect(result.trajectory.endReason).toBe('max_iterations');
  });

  it('counts the last call in the usage', async () => {
    const root = new FakeClient('root-model', scripted(repl('a'), 'done'));
    const { rlm } = makeRLM({ root, cells: { a: {} }, rlm: { maxIterations: 1 } });
    const result = await rlm.completion(CONTEXT);
    expect(result.usage.calls).toBe(2);
  });

  describe('running out of iterations', () => {
    it('records the final-answer call in the trajectory, as the reference does', async () => {
      const root = new FakeClient('root-model', scripted(repl('a'), 'The answer is 7.'));
      const { rlm } = makeRLM({ root, cells: { a: {} }, rlm: { maxIterations: 1 } });
      const { trajectory } = await rlm.completion(CONTEXT);
      expect(trajectory.iterations).toHaveLength(2);
      expect(trajectory.iterations[1]?.response).toBe('The answer is 7.');
      expect(trajectory.iterations[1]?.finalAnswer).toBe('The answer is 7.');
    });
  });
});

describe('what the model is sent', () => {
  it('opens with the system prompt and a metadata message that never contains the context', async () => {
    const context = `SECRET-NEEDLE-${'x'.repeat(5000)}`;
    const root = new FakeClient('root-model', scripted(repl('print(len(context))'), 'FINAL(5014)'));
    const { rlm } = makeRLM({ root, cells: { 'print(len(context))': { stdout: '5014' } } });
    await rlm.completion(context, { rootPrompt: 'How long is it?' });
    const first = root.calls[0]!;
    expect(first.map((m) => m.role)).toEqual(['system', 'user']);
    expect(first[0]?.content).toContain('llm_query');
    expect(first[1]?.content).toContain('How long is it?');
    expect(first[1]?.content).toContain('`str`');
    expect(first[1]?.content).toContain('5,014 characters');
    expect(first[1]?.content).toContain('Turn 1 of 30');
    for (const call of root.calls) for (const m of call) expect(m.content).not.toContain('SECRET-NEEDLE');
  });

  it('describes list and dict contexts by item count', async () => {
    const root = new FakeClient('root-model', scripted('FINAL(a)', 'FINAL(b)'));
    const { rlm } = makeRLM({ root });
    await rlm.completion(['alpha', 'beta', 'gamma']);
    await rlm.completion({ k1: 'secret-value-1', k2: 'secret-value-2' });
    expect(root.calls[0]?.[1]?.content).toContain('`list` of 3 items');
    expect(root.calls[1]?.[1]?.content).toContain('`dict` of 2 items');
    expect(root.calls[1]?.[1]?.content).not.toContain('secret-value');
  });

  it('uses a custom system prompt when given', async () => {
    const root = new FakeClient('root-model', scripted('FINAL(a)'));
    const { rlm } = makeRLM({ root, rlm: { customSystemPrompt: 'You are a custom controller.' } });
    await rlm.completion(CONTEXT);
    expect(root.calls[0]?.[0]).toEqual({ role: 'system', content: 'You are a custom controller.' });
  });

  it('sends the model the truncation note of a long output', async () => {
    const root = new FakeClient('root-model', scripted(repl('print(context)'), 'FINAL(x)'));
    const { rlm } = makeRLM({ root, cells: { 'print(context)': { stdout: 'z'.repeat(250) } }, rlm: { maxOutputChars: 100 } });
    const result = await rlm.completion(CONTEXT);
    const feedback = root.lastMessage(1);
    expect(feedback).toContain('150 more characters cut');
    expect(feedback).toContain('z'.repeat(100));
    expect(feedback).not.toContain('z'.repeat(101));
    // The trajectory keeps the full output.
    expect(result.trajectory.iterations[0]?.codeBlocks[0]?.stdout).toBe('z'.repeat(250));
  });

  it('keeps the conversation a byte-stable, growing prefix and marks it for caching', async () => {
    const root = new FakeClient('root-model', scripted(repl('a'), repl('b'), 'FINAL(c)'));
    const { rlm } = makeRLM({ root, cells: { a: { stdout: 'A' }, b: { stdout: 'B' } } });
    await rlm.completion(CONTEXT);
    for (let n = 1; n < root.calls.length; n++) {
      const previous = root.calls[n - 1]!;
      expect(root.calls[n]!.slice(0, previous.length)).toEqual(previous);
      expect(root.calls[n]).toHaveLength(previous.length + 2);
    }
    expect(root.requests.every((r) => r.cachePrefix !== undefined && r.cachePrefix > 0)).toBe(true);
  });

  it('records each prompt as a snapshot that later turns and edits do not alter', async () => {
    const root = new FakeClient('root-model', scripted(repl('a'), repl('b'), 'FINAL(c)'));
    const { rlm } = makeRLM({ root, cells: { a: {}, b: {} } });
    const { trajectory } = await rlm.completion(CONTEXT);
    const [one, two, three] = trajectory.iterations;
    expect(one?.prompt).toHaveLength(2);
    expect(two?.prompt).toHaveLength(4);
    expect(three?.prompt).toHaveLength(6);
    expect(one?.prompt).toEqual(root.calls[0]);
    expect(two?.prompt).toEqual(root.calls[1]);
    const systemBefore = one!.prompt[0]!.content;
    three!.prompt[0]!.content = 'edited';
    three!.prompt.push({ role: 'user', content: 'extra' });
    expect(one!.prompt[0]!.content).toBe(systemBefore);
    expect(two!.prompt[0]!.content).toBe(systemBefore);
    expect(two?.prompt).toHaveLength(4);
  });
});

describe('sub-calls', () => {
  function subcallRun(cell: Cell, others: FakeClient[], rlmOptions = {}) {
    // Sub-calls to the root model are single user messages; the loop's calls are not.
    const script = scripted(repl('go'), 'FINAL(done)');
    const root = new FakeClient(
      'root-model',
      (messages, request, call) => (messages.length === 1 ? `root says: ${messages[0]!.content}` : script(messages, request, call)),
      { inputTokens: 100, outputTokens: 10 },
    );
    const harness = makeRLM({ root, others, cells: { go: cell }, rlm: rlmOptions });
    return { root, ...harness };
  }

  it('serves llm_query with otherBackends[0], and model= picks any registered model', async () => {
    const sub = new FakeClient('sub-model', (messages) => `sub says: ${messages[0]!.content}`, { inputTokens: 3, outputTokens: 2 });
    const other = new FakeClient('other-model', (messages) => `other says: ${messages[0]!.content}`);
    const replies: HostReply[] = [];
    const { rlm, root } = subcallRun(async (ctx) => {
      replies.push(await query(ctx, 'llm_query', ['p1']));
      replies.push(await query(ctx, 'llm_query', ['p2'], 'other-model'));
      replies.push(await query(ctx, 'llm_query', ['p3'], 'root-model'));
      return { stdout: 'ok' };
    }, [sub, other]);
    const result = await rlm.completion(CONTEXT);
    expect(replies.map(results)).toEqual([['sub says: p1'], ['other says: p2'], ['root says: p3']]);
    expect(sub.calls).toEqual([[{ role: 'user', content: 'p1' }]]);
    expect(other.calls).toEqual([[{ role: 'user', content: 'p2' }]]);
    expect(root.calls).toHaveLength(3);
    expect(root.calls[1]).toEqual([{ role: 'user', content: 'p3' }]);
    const subcalls = result.trajectory.iterations[0]?.codeBlocks[0]?.subcalls ?? [];
    expect(subcalls.map((s) => [s.kind, s.model, s.prompt])).toEqual([
      ['llm', 'sub-model', 'p1'],
      ['llm', 'other-model', 'p2'],
      ['llm', 'root-model', 'p3'],
    ]);
    expect(subcalls[0]?.response).toBe('sub says: p1');
    expect(subcalls[0]?.usage.inputTokens).toBe(3);
    expect(result.usage.models['sub-model']).toMatchObject({ calls: 1, inputTokens: 3, outputTokens: 2 });
    expect(result.usage.models['other-model']?.calls).toBe(1);
    expect(result.usage.models['root-model']?.calls).toBe(3);
    expect(result.usage.calls).toBe(5);
  });

  it('serves llm_query with the root model when there is no other backend', async () => {
    let reply: HostReply | undefined;
    const { rlm, root } = subcallRun(async (ctx) => {
      reply = await query(ctx, 'llm_query', ['hello']);
      return {};
    }, []);
    await rlm.completion(CONTEXT);
    expect(reply && results(reply)).toEqual(['root says: hello']);
    expect(root.calls[1]).toEqual([{ role: 'user', content: 'hello' }]);
  });

  it('answers an unknown model with an error that lists the registered ones', async () => {
    const sub = new FakeClient('sub-model', () => 'unused');
    let reply: HostReply | undefined;
    const { rlm } = subcallRun(async (ctx) => {
      reply = await query(ctx, 'llm_query', ['x', 'y'], 'gpt-nonexistent');
      return {};
    }, [sub]);
    await rlm.completion(CONTEXT);
    expect(reply).toBeDefined();
    expect(reply && 'error' in reply).toBe(true);
    const message = (reply as { error: string }).error;
    expect(message).toContain("unknown model 'gpt-nonexistent'");
    expect(message).toContain("'root-model'");
    expect(message).toContain("'sub-model'");
    expect(sub.calls).toHaveLength(0);
  });

  it('keeps the order of llm_query_batched and isolates a failure as an "Error: ..." string', async () => {
    const sub = new FakeClient('sub-model', async (messages) => {
      const prompt = messages[0]!.content;
      if (prompt === 'slow') await new Promise((r) => setTimeout(r, 20));
      if (prompt === 'bad') throw new LMError('The sub API failed with HTTP 500: boom', 'fake', 'sub-model', 500);
      return `R:${prompt}`;
    });
    let reply: HostReply | undefined;
    const { rlm } = subcallRun(async (ctx) => {
      reply = await query(ctx, 'llm_query', ['slow', 'bad', 'fast']);
      return {};
    }, [sub]);
    const result = await rlm.completion(CONTEXT);
    const out = results(reply!);
    expect(out[0]).toBe('R:slow');
    expect(out[1]).toMatch(/^Error: /);
    expect(out[1]).toContain('HTTP 500: boom');
    expect(out[2]).toBe('R:fast');
    const records = result.trajectory.iterations[0]?.codeBlocks[0]?.subcalls ?? [];
    expect(records).toHaveLength(3);
    expect(records.find((r) => r.prompt === 'bad')?.error).toContain('boom');
    expect(records.filter((r) => r.error === undefined)).toHaveLength(2);
    expect(result.usage.models['sub-model']?.calls).toBe(2);
  });

  it('runs at most maxConcurrentSubcalls of a batch at once', async () => {
    let inFlight = 0;
    let peak = 0;
    const sub = new FakeClient('sub-model', async (messages) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, 2));
      inFlight--;
      return messages[0]!.content.toUpperCase();
    });
    let reply: HostReply | undefined;
    const prompts = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const { rlm } = subcallRun(async (ctx) => {
      reply = await query(ctx, 'llm_query', prompts);
      return {};
    }, [sub], { maxConcurrentSubcalls: 3 });
    await rlm.completion(CONTEXT);
    expect(results(reply!)).toEqual(prompts.map((p) => p.toUpperCase()));
    expect(peak).toBe(3);
  });

  it('treats rlm_query as a plain LM call at the depth limit', async () => {
    const sub = new FakeClient('sub-model', () => 'plain');
    let reply: HostReply | undefined;
    const { rlm, envs } = subcallRun(async (ctx) => {
      reply = await query(ctx, 'rlm_query', ['task']);
      return {};
    }, [sub]);
    const result = await rlm.completion(CONTEXT);
    expect(results(reply!)).toEqual(['plain']);
    // No child REPL: only the root's (and the spare the next completion takes).
    expect(envs.filter((e) => e.group)).toEqual([]);
    expect(result.trajectory.iterations[0]?.codeBlocks[0]?.subcalls[0]?.kind).toBe('llm');
  });

  it('emits sub-call events with the records', async () => {
    const sub = new FakeClient('sub-model', () => 'r');
    const { rlm, events } = subcallRun(async (ctx) => {
      await query(ctx, 'llm_query', ['q1', 'q2']);
      return {};
    }, [sub]);
    await rlm.completion(CONTEXT);
    const starts = events.filter((e) => e.type === 'subcall_start');
    const ends = events.filter((e): e is Extract<RLMEvent, { type: 'subcall_end' }> => e.type === 'subcall_end');
    expect(starts).toHaveLength(2);
    expect(ends.map((e) => e.record.prompt).sort()).toEqual(['q1', 'q2']);
  });

  it('aborts a sub-call with the signal it was asked with, and a later request with another signal goes through', async () => {
    const sub = new FakeClient('sub-model', (messages, request) => (messages[0]!.content === 'hang' ? hangUntilAborted(request.signal) : 'ok'));
    const replies: HostReply[] = [];
    const { rlm } = subcallRun(async ({ host }) => {
      const first = new AbortController();
      const pending = host.handle({ op: 'llm_query', prompts: ['hang'], model: null }, first.signal);
      first.abort();
      replies.push(await pending);
      // The signals a dispatcher combines are per cell: a new one must not inherit the aborted one.
      const second = new AbortController();
      replies.push(await host.handle({ op: 'llm_query', prompts: ['a', 'b'], model: null }, second.signal));
      replies.push(await host.handle({ op: 'llm_query', prompts: ['c'], model: null }, second.signal));
      second.abort();
      replies.push(await host.handle({ op: 'llm_query', prompts: ['hang'], model: null }, second.signal));
      return {};
    }, [sub]);
    await rlm.completion(CONTEXT);
    expect(replies.map((r) => ('results' in r ? r.results.map((x) => x.slice(0, 6)) : r))).toEqual([['Error:'], ['ok', 'ok'], ['ok'], ['Error:']]);
  });

  it('answers no sub-calls outside a run', async () => {
    const root = new FakeClient('root-model', scripted('FINAL(x)'));
    const { rlm, env } = makeRLM({ root });
    await rlm.completion(CONTEXT);
    const reply = await env().host.handle({ op: 'llm_query', prompts: ['late'], model: null }, new AbortController().signal);
    expect('error' in reply).toBe(true);
  });
});

describe('custom tools', () => {
  it('registers tools with the REPL and lists their descriptions in the system prompt', async () => {
    const root = new FakeClient('root-model', scripted('FINAL(x)'));
    const { rlm, env } = makeRLM({
      root,
      rlm: { customTools: { lookup: { tool: (key: string) => key, description: 'lookup(key) finds a record' }, limits: { max: 3 } } },
    });
    await rlm.completion(CONTEXT);
    expect(env().tools).toEqual([
      { name: 'lookup', kind: 'function' },
      { name: 'limits', kind: 'data', value: { max: 3 } },
    ]);
    expect(root.calls[0]?.[0]?.content).toContain('lookup(key) finds a record');
    expect(root.calls[0]?.[0]?.content).toContain('`limits`');
  });

  it('calls a tool function through the host with args and kwargs and converts the result', async () => {
    const seen: unknown[][] = [];
    const lookup = async (...args: unknown[]) => {
      seen.push(args);
      return { found: args[0], at: new Date(0) };
    };
    const replies: HostReply[] = [];
    const root = new FakeClient('root-model', scripted(repl('use_tool'), 'FINAL(x)'));
    const { rlm } = makeRLM({
      root,
      rlm: {
        customTools: {
          lookup,
          broken: () => {
            throw new Error('tool exploded');
          },
        },
      },
      cells: {
        use_tool: async ({ host, signal }) => {
          replies.push(await host.handle({ op: 'tool', name: 'lookup', args: ['k1'], kwargs: { exact: true } }, signal));
          replies.push(await host.handle({ op: 'tool', name: 'lookup', args: ['k2'], kwargs: {} }, signal));
          replies.push(await host.handle({ op: 'tool', name: 'missing', args: [], kwargs: {} }, signal));
          replies.push(await host.handle({ op: 'tool', name: 'broken', args: [], kwargs: {} }, signal));
          return {};
        },
      },
    });
    await rlm.completion(CONTEXT);
    expect(seen).toEqual([['k1', { exact: true }], ['k2']]);
    expect(replies[0]).toEqual({ value: { found: 'k1', at: '1970-01-01T00:00:00.000Z' } });
    expect(replies[1]).toEqual({ value: { found: 'k2', at: '1970-01-01T00:00:00.000Z' } });
    expect(replies[2]).toEqual({ error: expect.stringContaining("unknown tool 'missing'") });
    expect(replies[3]).toEqual({ error: expect.stringContaining('tool exploded') });
  });

  it('rejects reserved tool names at construction', () => {
    const root = new FakeClient('root-model', scripted());
    expect(() => makeRLM({ root, rlm: { customTools: { llm_query: () => 1 } } })).toThrow(ConfigurationError);
    expect(() => makeRLM({ root, rlm: { customSubTools: { answer: 1 } } })).toThrow(ConfigurationError);
  });

  describe('warmUp()', () => {
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
});

describe('limits', () => {
  it('ends the run with BudgetExceededError when a sub-call crosses maxBudget', async () => {
    const sub = new FakeClient('sub-model', () => 'pricey', { costUSD: 0.5 });
    const reply1 = repl('spend', 'Spending now.');
    const root = new FakeClient('root-model', scripted(reply1, 'FINAL(never)'), { costUSD: 0.01 });
    const { rlm, env, events } = makeRLM({
      root,
      others: [sub],
      rlm: { maxBudget: 0.1 },
      cells: {
        spend: async (ctx) => {
          await query(ctx, 'llm_query', ['expensive']);
          return {};
        },
      },
    });
    const error = (await rejection(rlm.completion(CONTEXT))) as BudgetExceededError;
    expect(error).toBeInstanceOf(BudgetExceededError);
    expect(error.partialAnswer).toBe(reply1);
    expect(error.usage?.costUSD).toBeCloseTo(0.51, 10);
    expect(error.trajectory?.status).toBe('failed');
    expect(error.trajectory?.endReason).toBe('max_budget');
    expect(error.trajectory?.error).toContain('BudgetExceededError');
    expect(root.calls).toHaveLength(1);
    expect(env().executed).toEqual(['spend']);
    const last = events.at(-1);
    expect(last?.type).toBe('error');
  });

  it('ends the run with BudgetExceededError when root calls cross maxBudget', async () => {
    const root = new FakeClient('root-model', scripted(repl('a', 'first'), repl('b', 'second'), 'FINAL(never)'), { costUSD: 0.006 });
    const { rlm } = makeRLM({ root, cells: { a: {}, b: {} }, rlm: { maxBudget: 0.01 } });
    const error = (await rejection(rlm.completion(CONTEXT))) as BudgetExceededError;
    expect(error).toBeInstanceOf(BudgetExceededError);
    expect(error.partialAnswer).toBeDefined();
    expect(error.trajectory?.endReason).toBe('max_budget');
    expect(root.calls).toHaveLength(2);
  });

  it('ends the run with TokenLimitExceededError past maxTokens', async () => {
    const root = new FakeClient('root-model', scripted(repl('a', 'one'), repl('b', 'two'), 'FINAL(never)'));
    const { rlm } = makeRLM({ root, cells: { a: {}, b: {} }, rlm: { maxTokens: 25 } });
    const error = (await rejection(rlm.completion(CONTEXT))) as TokenLimitExceededError;
    expect(error).toBeInstanceOf(TokenLimitExceededError);
    expect(error.used).toBe(30);
    expect(error.allowed).toBe(25);
    expect(error.usage?.inputTokens).toBe(20);
    expect(error.trajectory?.endReason).toBe('max_tokens');
    expect(error.trajectory?.status).toBe('failed');
    expect(root.calls).toHaveLength(2);
  });

  it('ends the run with ErrorThresholdExceededError after maxErrors failing iterations in a row', async () => {
    const root = new FakeClient('root-model', scripted(repl('bad', 'try 1'), repl('bad', 'try 2'), 'FINAL(never)'));
    const { rlm } = makeRLM({ root, cells: { bad: { stderr: 'ValueError: bad input', errorType: 'ValueError' } }, rlm: { maxErrors: 2 } });
    const error = (await rejection(rlm.completion(CONTEXT))) as ErrorThresholdExceededError;
    expect(error).toBeInstanceOf(ErrorThresholdExceededError);
    expect(error.lastError).toContain('ValueError: bad input');
    expect(error.partialAnswer).toBe(repl('bad', 'try 2'));
    expect(error.trajectory?.endReason).toBe('max_errors');
    expect(error.trajectory?.iterations).toHaveLength(2);
    expect(root.calls).toHaveLength(2);
  });

  it('resets the error count after a clean iteration, and does not count interrupted cells', async () => {
    const root = new FakeClient('root-model', scripted(repl('bad'), repl('good'), repl('bad'), repl('slow'), repl('good'), repl('bad'), 'FINAL(fine)'));
    const { rlm } = makeRLM({
      root,
      cells: {
        bad: { stderr: 'ValueError: x', errorType: 'ValueError' },
        good: { stdout: 'ok' },
        slow: { stderr: 'KeyboardInterrupt', errorType: 'KeyboardInterrupt', interrupted: true },
      },
      rlm: { maxErrors: 2 },
    });
    expect((await rlm.completion(CONTEXT)).response).toBe('fine');
  });

  it('ends the run with TimeoutExceededError when maxTimeMs passes during an LM call', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const root = new FakeClient('root-model', scripted(repl('a', 'looking'), (_m, request) => hangUntilAborted(request.signal)));
    const { rlm } = makeRLM({ root, cells: { a: {} }, rlm: { maxTimeMs: 60_000 } });
    const run = rejection(rlm.completion(CONTEXT));
    await vi.advanceTimersByTimeAsync(60_000);
    const error = (await run) as TimeoutExceededError;
    expect(error).toBeInstanceOf(TimeoutExceededError);
    expect(error.partialAnswer).toBe(repl('a', 'looking'));
    expect(error.trajectory?.endReason).toBe('max_time');
    expect(root.calls).toHaveLength(2);
    expect(root.requests[1]?.signal?.aborted).toBe(true);
  });

  it('hands a cell the run signal, which a limit aborts', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let cellSignal: AbortSignal | undefined;
    const root = new FakeClient('root-model', scripted(repl('forever')));
    const { rlm } = makeRLM({
      root,
      rlm: { maxTimeMs: 1_000 },
      cells: {
        forever: ({ signal }) =>
          new Promise((resolve) => {
            cellSignal = signal;
            signal.addEventListener('abort', () => resolve({ stderr: 'KeyboardInterrupt', errorType: 'KeyboardInterrupt', interrupted: true }));
          }),
      },
    });
    const run = rejection(rlm.completion(CONTEXT));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await run).toBeInstanceOf(TimeoutExceededError);
    expect(cellSignal?.aborted).toBe(true);
  });

  describe('limits crossed by a root call', () => {
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
});

describe('cancellation', () => {
  it('rejects with CancellationError and the partial answer when the signal aborts an LM call', async () => {
    const controller = new AbortController();
    const root = new FakeClient(
      'root-model',
      scripted(repl('a', 'halfway'), (_m, request) => {
        queueMicrotask(() => controller.abort());
        return hangUntilAborted(request.signal);
      }),
    );
    const { rlm, events } = makeRLM({ root, cells: { a: {} } });
    const error = (await rejection(rlm.completion(CONTEXT, { signal: controller.signal }))) as CancellationError;
    expect(error).toBeInstanceOf(CancellationError);
    expect(error).toBeInstanceOf(RunEndedError);
    expect(error.partialAnswer).toBe(repl('a', 'halfway'));
    expect(error.trajectory?.status).toBe('cancelled');
    expect(error.trajectory?.endReason).toBe('cancelled');
    expect(error.trajectory?.iterations).toHaveLength(1);
    expect(events.at(-1)?.type).toBe('error');
  });

  it('interrupts a running cell when the signal aborts', async () => {
    const controller = new AbortController();
    const root = new FakeClient('root-model', scripted(repl('loop')));
    const { rlm } = makeRLM({
      root,
      cells: {
        loop: ({ signal }) =>
          new Promise((resolve) => {
            signal.addEventListener('abort', () => resolve({ interrupted: true, errorType: 'KeyboardInterrupt' }));
            queueMicrotask(() => controller.abort());
          }),
      },
    });
    const error = await rejection(rlm.completion(CONTEXT, { signal: controller.signal }));
    expect(error).toBeInstanceOf(CancellationError);
  });

  it('does not call the model when the signal is already aborted', async () => {
    const root = new FakeClient('root-model', scripted('FINAL(x)'));
    const { rlm } = makeRLM({ root });
    const error = await rejection(rlm.completion(CONTEXT, { signal: AbortSignal.abort() }));
    expect(error).toBeInstanceOf(CancellationError);
    expect(root.calls).toHaveLength(0);
  });

  it('can run again after a cancelled run', async () => {
    const root = new FakeClient('root-model', scripted('FINAL(second run)'));
    const { rlm } = makeRLM({ root });
    await rejection(rlm.completion(CONTEXT, { signal: AbortSignal.abort() }));
    expect((await rlm.completion(CONTEXT)).response).toBe('second run');
  });

  describe('a REPL that never boots', () => {
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
});

describe('child RLMs (maxDepth 2)', () => {
  // Parent and child share the root client; the child's system prompt says recursion is off.
  const isChild = (messages: ChatMessage[]) => messages[0]!.content.includes('recursion is off');

  function depthTwo(childReplies: (metadata: string) => string) {
    const parentScript = scripted(repl('delegate'), 'FINAL(7)');
    const root = new FakeClient('root-model', (messages, request, call) => {
      if (isChild(messages)) return childReplies(messages[1]!.content);
      return parentScript(messages, request, call);
    });
    return root;
  }

  it('starts the first child REPL while the root works (and warmUp() does too); without recursion no child REPL is made', async () => {
    let startsWhenRootCalled: number[] = [];
    const root = new FakeClient('root-model', () => {
      startsWhenRootCalled = envs.map((e) => e.starts);
      return 'FINAL(no children needed)';
    });
    const { rlm, envs } = makeRLM({ root, rlm: { maxDepth: 2 } });
    await rlm.completion(CONTEXT);
    // The root's REPL, then the child pool's, both started before the root's first LM call returned.
    expect(envs.slice(0, 2).map((e) => e.group === undefined)).toEqual([true, false]);
    expect(startsWhenRootCalled).toEqual([1, 1]);
    // Both end with the run; the next run's two boot as it ends, and it makes no others.
    await vi.waitFor(() => expect(envs.map((e) => e.starts)).toEqual([1, 1, 1, 1]));
    expect(envs.map((e) => e.closed)).toEqual([true, true, false, false]);
    await rlm.completion(CONTEXT);
    expect(envs[1]?.executed).toEqual([]);
    expect(envs[3]?.executed).toEqual([]);
    await vi.waitFor(() => expect(envs).toHaveLength(6));
    await rlm.close();
    expect(envs.every((e) => e.closed)).toBe(true);

    const warm = makeRLM({ root: new FakeClient('root-model', () => 'FINAL(x)'), rlm: { maxDepth: 2 } });
    await warm.rlm.warmUp();
    expect(warm.envs.map((e) => e.starts)).toEqual([1, 1]);
    const flat = makeRLM({ root: new FakeClient('root-model', () => 'FINAL(x)'), rlm: { maxDepth: 1 } });
    await flat.rlm.warmUp();
    await flat.rlm.completion(CONTEXT);
    expect(flat.envs.filter((e) => e.group)).toEqual([]);
  });

  it('runs rlm_query as a child RLM whose usage merges into the parent and whose trajectory nests under the sub-call', async () => {
    const root = depthTwo(() => repl('child_answer'));
    let reply: HostReply | undefined;
    const { rlm, envs, events } = makeRLM({
      root,
      rlm: { maxDepth: 2 },
      cells: {
        delegate: async (ctx) => {
          reply = await query(ctx, 'rlm_query', ['CHILD-TASK: count the foxes']);
          return { stdout: results(reply)[0] ?? '' };
        },
        child_answer: { finalAnswer: 'child says 7' },
      },
    });
    const result = await rlm.completion(CONTEXT);
    expect(result.response).toBe('7');
    expect(results(reply!)).toEqual(['child says 7']);
    // Parent: 2 root calls; child: 1.
    expect(result.usage.calls).toBe(3);
    expect(result.usage.models['root-model']?.calls).toBe(3);
    const record = result.trajectory.iterations[0]?.codeBlocks[0]?.subcalls[0];
    expect(record?.kind).toBe('rlm');
    expect(record?.response).toBe('child says 7');
    expect(record?.usage.calls).toBe(1);
    expect(record?.trajectory?.config.depth).toBe(1);
    expect(record?.trajectory?.response).toBe('child says 7');
    expect(record?.trajectory?.iterations).toHaveLength(1);
    // The child ran in its own REPL, with the prompt as its context.
    expect(envs[1]?.group).toBeDefined();
    expect(envs[1]?.loaded).toEqual([[0, 'CHILD-TASK: count the foxes']]);
    expect(envs[0]?.executed).toEqual(['delegate']);
    expect(envs[1]?.executed).toEqual(['child_answer']);
    // The child's events reach the parent's listener, tagged with its depth.
    expect(events.some((e) => e.type === 'iteration_start' && e.depth === 1)).toBe(true);
    // The parent's system prompt offers child RLMs.
    expect(root.calls[0]?.[0]?.content).toContain('child RLM');
    await rlm.close();
    expect(envs.every((e) => e.closed)).toBe(true);
  });

  it('runs rlm_query_batched children with order kept and a failed child isolated', async () => {
    // A child's metadata gives its context's length: 'ok-1' and 'ok-22' answer, the 7-character one fails.
    const root = depthTwo((metadata) => {
      if (metadata.includes('of 7 characters')) throw new LMError('child model down', 'fake', 'root-model', 503);
      return metadata.includes('of 4 characters') ? 'FINAL(four)' : 'FINAL(five)';
    });
    let reply: HostReply | undefined;
    const { rlm } = makeRLM({
      root,
      rlm: { maxDepth: 2 },
      cells: {
        delegate: async (ctx) => {
          reply = await query(ctx, 'rlm_query', ['ok-1', 'fail-me', 'ok-22']);
          return {};
        },
      },
    });
    const result = await rlm.completion(CONTEXT);
    const out = results(reply!);
    expect(out[0]).toBe('four');
    expect(out[1]).toMatch(/^Error: /);
    expect(out[1]).toContain('child model down');
    expect(out[2]).toBe('five');
    const records = result.trajectory.iterations[0]?.codeBlocks[0]?.subcalls ?? [];
    expect(records.map((r) => r.kind)).toEqual(['rlm', 'rlm', 'rlm']);
    expect(records.filter((r) => r.error !== undefined)).toHaveLength(1);
  });

  it('passes the remaining limits to a child, whose limit errors come back as strings', async () => {
    // The child's own budget is what is left of the parent's: its first call overspends it.
    const root = new FakeClient(
      'root-model',
      (messages) => {
        if (isChild(messages)) return { text: repl('x'), usage: { costUSD: 0.3 } };
        return messages.length === 2 ? { text: repl('delegate'), usage: { costUSD: 0.5 } } : 'FINAL(after child)';
      },
    );
    let reply: HostReply | undefined;
    const { rlm } = makeRLM({
      root,
      rlm: { maxDepth: 2, maxBudget: 0.7 },
      cells: {
        delegate: async (ctx) => {
          reply = await query(ctx, 'rlm_query', ['sub task']);
          return {};
        },
        x: {},
      },
    });
    const error = await rejection(rlm.completion(CONTEXT));
    // 0.5 + 0.3 > 0.7: the parent's budget is gone too, so the whole run ends.
    expect(error).toBeInstanceOf(BudgetExceededError);
    expect(reply && results(reply)[0]).toMatch(/^Error: /);
  });
});

describe('what a child RLM inherits', () => {
  const isChild = (messages: ChatMessage[]) => messages[0]!.content.includes('recursion is off');

  function run(rlmOptions: Parameters<typeof makeRLM>[0]['rlm']) {
    const parent = scripted({ text: repl('delegate'), usage: { costUSD: 0.25, inputTokens: 100, outputTokens: 0 } }, 'FINAL(done)');
    const root = new FakeClient('root-model', (messages, request, call) => (isChild(messages) ? repl('child') : parent(messages, request, call)));
    const toolsSeen: string[][] = [];
    const harness = makeRLM({
      root,
      rlm: { maxDepth: 2, ...rlmOptions },
      cells: {
        delegate: async (ctx) => {
          await query(ctx, 'rlm_query', ['task']);
          return {};
        },
        child: ({ repl: r }) => {
          toolsSeen.push(r.tools.map((t) => t.name));
          return { finalAnswer: 'ok' };
        },
      },
    });
    return { ...harness, root, toolsSeen };
  }

  it('gets the remaining budget and tokens, and the same maxErrors', async () => {
    const { rlm } = run({ maxBudget: 1, maxTokens: 1_000, maxErrors: 3 });
    const result = await rlm.completion(CONTEXT);
    const child = result.trajectory.iterations[0]?.codeBlocks[0]?.subcalls[0]?.trajectory;
    expect(child?.config.maxBudget).toBeCloseTo(0.75, 10);
    expect(child?.config.maxTokens).toBe(900);
    expect(child?.config.maxErrors).toBe(3);
    expect(child?.config.depth).toBe(1);
  });

  it('gets customTools by default', async () => {
    const { rlm, toolsSeen } = run({ customTools: { lookup: () => 1 } });
    await rlm.completion(CONTEXT);
    expect(toolsSeen).toEqual([['lookup']]);
  });

  it('gets customSubTools instead when given, and none for {}', async () => {
    const a = run({ customTools: { lookup: () => 1 }, customSubTools: { child_only: () => 2 } });
    await a.rlm.completion(CONTEXT);
    expect(a.toolsSeen).toEqual([['child_only']]);
    const b = run({ customTools: { lookup: () => 1 }, customSubTools: {} });
    await b.rlm.completion(CONTEXT);
    expect(b.toolsSeen).toEqual([[]]);
  });

  it('does not get the parent’s logger; its trajectory reaches the logger nested in the parent’s', async () => {
    const sink = new RecordingSink();
    const { rlm } = run({ logger: sink });
    await rlm.completion(CONTEXT);
    expect(sink.log.filter((l) => l === 'runStarted')).toHaveLength(1);
    expect(sink.iterations[0]?.codeBlocks[0]?.subcalls[0]?.trajectory?.config.depth).toBe(1);
  });

  it('runs with the model picked by model=', async () => {
    const other = new FakeClient('other-model', () => 'FINAL(from other)');
    const parent = scripted(repl('delegate'), 'FINAL(done)');
    const root = new FakeClient('root-model', (messages, request, call) => parent(messages, request, call));
    let reply: HostReply | undefined;
    const { rlm } = makeRLM({
      root,
      others: [other],
      rlm: { maxDepth: 2 },
      cells: {
        delegate: async (ctx) => {
          reply = await query(ctx, 'rlm_query', ['task'], 'other-model');
          return {};
        },
      },
    });
    const result = await rlm.completion(CONTEXT);
    expect(results(reply!)).toEqual(['from other']);
    const record = result.trajectory.iterations[0]?.codeBlocks[0]?.subcalls[0];
    expect(record?.model).toBe('other-model');
    expect(record?.trajectory?.config.rootModel).toBe('other-model');
    expect(result.usage.models['other-model']?.calls).toBe(1);
  });

  describe('child RLMs on pooled REPLs', () => {
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
      const children = envs.filter((e) => e.group && e.group === envs[1]?.group);
      expect(children).toHaveLength(1);
      expect(children[0]?.resets).toBe(2);
      expect(toolsSeen).toEqual([['lookup'], ['lookup']]);
    });
  });
});

describe('persistent sessions', () => {
  it('keeps one REPL across completions, adding context_N and history_N', async () => {
    const root = new FakeClient(
      'root-model',
      scripted(repl('keep = 1'), 'FINAL(turn one)', repl('print(keep)'), 'FINAL_VAR(keep)'),
    );
    const { rlm, envs } = makeRLM({
      root,
      rlm: { persistent: true },
      cells: {
        'keep = 1': ({ repl: r }) => {
          r.vars.set('keep', 1);
          return {};
        },
        'print(keep)': ({ repl: r }) => ({ stdout: String(r.vars.get('keep')) }),
      },
    });
    const first = await rlm.completion('first context');
    const second = await rlm.completion(['a', 'b', 'c']);
    expect(first.response).toBe('turn one');
    expect(second.response).toBe('1');
    expect(envs).toHaveLength(1);
    const env = envs[0]!;
    expect(env.resets).toBe(0);
    expect([...env.contexts.keys()]).toEqual([0, 1]);
    expect(env.contexts.get(1)).toEqual(['a', 'b', 'c']);
    expect(env.executed).toEqual(['keep = 1', 'print(keep)']);

    const histories = env.setCalls.filter((c) => c.name.startsWith('history'));
    expect(histories.map((c) => c.name)).toEqual(['history_0', 'history', 'history_1']);
    expect(histories.every((c) => c.reserved)).toBe(true);
    const history0 = histories[0]!.value as ChatMessage[];
    expect(history0.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant']);
    expect(history0.at(-1)?.content).toBe('FINAL(turn one)');

    // The second turn is told about both contexts and the previous conversation.
    const opening = root.calls[2]![1]!.content;
    expect(opening).toContain('2 contexts');
    expect(opening).toContain('context_0 through context_1');
    expect(opening).toContain('`history`');
  });

  it('counts several previous conversations', async () => {
    const root = new FakeClient('root-model', scripted('FINAL(1)', 'FINAL(2)', 'FINAL(3)'));
    const { rlm } = makeRLM({ root, rlm: { persistent: true } });
    await rlm.completion('one');
    await rlm.completion('two');
    await rlm.completion('three');
    const opening = root.calls[2]![1]!.content;
    expect(opening).toContain('3 contexts');
    expect(opening).toContain('2 previous conversations');
    expect(opening).toContain('history_0 through history_1');
  });

  it('without persistence, runs each completion in a REPL of its own, starting again at context_0', async () => {
    const root = new FakeClient('root-model', scripted('FINAL(1)', 'FINAL(2)'));
    const { rlm, envs } = makeRLM({ root, rlm: { customTools: { t: 5 } } });
    await rlm.completion('one');
    await rlm.completion('two');
    const [first, second] = envs;
    expect([...first!.contexts.values()]).toEqual(['one']);
    expect([...second!.contexts.entries()]).toEqual([[0, 'two']]);
    // Ended, not reset and reused; the tools are registered in the new one.
    expect([first!.closed, first!.resets, second!.resets]).toEqual([true, 0, 0]);
    expect(second!.tools).toEqual([{ name: 't', kind: 'data', value: 5 }]);
    expect(envs.flatMap((e) => e.setCalls).filter((c) => c.name.startsWith('history'))).toEqual([]);
    expect(root.calls[1]![1]!.content).not.toContain('contexts');
  });

  describe('persistent sessions', () => {
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
});

describe('compaction', () => {
  it('summarizes the history near the context window, keeps it in `history` and tells the model', async () => {
    const padding = 'p'.repeat(700);
    const script = scripted(repl('a = 1', `Exploring. ${padding}`), 'FINAL(done)');
    const root = new FakeClient('tiny-model', (messages, request, call) => {
      if (messages.at(-1)?.content === COMPACTION_REQUEST) return 'SUMMARY: a holds 1.';
      return script(messages, request, call);
    });
    const { rlm, env, events } = makeRLM({
      root,
      cells: { 'a = 1': { stdout: 'ok' } },
      rlm: { compaction: true, compactionThreshold: 0.5, contextWindows: { 'tiny-model': 400 }, customSystemPrompt: 'SYS' },
    });
    const result = await rlm.completion(CONTEXT);
    expect(result.response).toBe('done');
    // Call 0: turn 1; call 1: the summary request; call 2: turn 2 on the compacted history.
    expect(root.calls).toHaveLength(3);
    expect(root.lastMessage(1)).toBe(COMPACTION_REQUEST);
    const compacted = root.calls[2]!;
    expect(compacted.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(compacted[0]).toEqual(root.calls[0]![0]);
    // The metadata stays; the first turn's "do not answer in this turn" does not.
    expect(compacted[1]).toEqual({ role: 'user', content: '`context` is a Python `str` of 420 characters.' });
    expect(compacted[2]?.content).toBe('SUMMARY: a holds 1.');
    expect(compacted[3]?.content).toContain('`history`');
    expect(compacted[3]?.content).toContain('Turn 2 of 30');

    // `history`: an empty list before the first cell, then each turn, then the summary.
    const stored = env().setCalls.filter((c) => c.name === 'history');
    expect(stored.map((c) => (c.value as unknown[]).length)).toEqual([0, 1, 2]);
    expect(stored.every((c) => c.reserved)).toBe(true);
    const history = stored[2]!.value as unknown[];
    const stretch = history[0] as ChatMessage[];
    expect(stretch.map((m) => m.role)).toEqual(['assistant', 'user']);
    expect(stretch[0]?.content).toContain(padding);
    expect(stretch[1]?.content).toContain('REPL output:\nok');
    expect(history[1]).toEqual({ type: 'summary', content: 'SUMMARY: a holds 1.' });

    const compaction = events.filter((e) => e.type === 'compaction');
    expect(compaction).toEqual([expect.objectContaining({ summary: 'SUMMARY: a holds 1.', count: 1 })]);
    expect(result.usage.calls).toBe(3);
  });

  it('does not compact below the threshold', async () => {
    const root = new FakeClient('big-model', scripted(repl('a'), 'FINAL(x)'));
    const { rlm, events } = makeRLM({ root, cells: { a: {} }, rlm: { compaction: true } });
    await rlm.completion(CONTEXT);
    expect(events.some((e) => e.type === 'compaction')).toBe(false);
    expect(root.calls[0]?.[0]?.content).toContain('`history`');
  });

  describe('compaction', () => {
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
});

describe('events and logging', () => {
  it('emits typed events in order', async () => {
    const root = new FakeClient('root-model', scripted(repl('a'), 'FINAL(x)'));
    const { rlm, events } = makeRLM({ root, cells: { a: { stdout: 'A' } } });
    const result = await rlm.completion(CONTEXT, { rootPrompt: 'q?' });
    const types = events.map((e) => e.type);
    expect(types.filter((t) => t !== 'repl_ready' && t !== 'context_loaded')).toEqual([
      'run_start',
      'iteration_start',
      'lm_response',
      'code_start',
      'code_end',
      'iteration_end',
      'usage',
      'iteration_start',
      'lm_response',
      'iteration_end',
      'usage',
      'run_end',
    ]);
    expect(types.indexOf('repl_ready')).toBeGreaterThan(types.indexOf('run_start'));
    expect(types.indexOf('context_loaded')).toBeGreaterThan(types.indexOf('repl_ready'));
    expect(types.indexOf('context_loaded')).toBeLessThan(types.indexOf('code_start'));
    const runId = result.trajectory.id;
    expect(events.every((e) => e.runId === runId && e.depth === 0)).toBe(true);
    const starts = events.filter((e): e is Extract<RLMEvent, { type: 'iteration_start' }> => e.type === 'iteration_start');
    expect(starts.map((e) => e.iteration)).toEqual([1, 2]);
    const end = events.at(-1) as Extract<RLMEvent, { type: 'run_end' }>;
    expect(end.result).toBe(result);
    const runStart = events[0] as Extract<RLMEvent, { type: 'run_start' }>;
    expect(runStart.rootPrompt).toBe('q?');
    expect(runStart.config.rootModel).toBe('root-model');
  });

  it('keeps running when an event handler throws', async () => {
    const root = new FakeClient('root-model', scripted('FINAL(x)'));
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const { rlm } = makeRLM({
      root,
      rlm: {
        onEvent: () => {
          throw new Error('handler bug');
        },
      },
    });
    expect((await rlm.completion(CONTEXT)).response).toBe('x');
    errors.mockRestore();
  });

  it('calls the logger at the start, after each iteration, at the end, then flushes', async () => {
    const root = new FakeClient('root-model', scripted(repl('a'), repl('b'), 'FINAL(x)'));
    const sink = new RecordingSink();
    const { rlm } = makeRLM({ root, cells: { a: {}, b: {} }, rlm: { logger: sink } });
    const result = await rlm.completion(CONTEXT);
    expect(sink.log).toEqual(['runStarted', 'iterationFinished:1:1', 'iterationFinished:2:2', 'iterationFinished:3:3', 'runEnded', 'flush']);
    expect(sink.iterations.map((i) => i.iteration)).toEqual([1, 2, 3]);
    expect(sink.ended).toBe(result.trajectory);
    expect(sink.endedStatus).toBe('completed');
  });

  it('tells the logger how a failed run ended', async () => {
    const root = new FakeClient('root-model', scripted(repl('a'), repl('a')));
    const sink = new RecordingSink();
    const { rlm } = makeRLM({ root, cells: { a: {} }, rlm: { logger: sink, maxTokens: 20 } });
    await rejection(rlm.completion(CONTEXT));
    expect(sink.log.at(-2)).toBe('runEnded');
    expect(sink.log.at(-1)).toBe('flush');
    expect(sink.endedStatus).toBe('failed');
    expect(sink.ended?.endReason).toBe('max_tokens');
  });

  it('keeps secrets out of the run config', async () => {
    const root = new FakeClient('root-model', scripted('FINAL(x)'));
    const { rlm } = makeRLM({
      root,
      rlm: { environmentOptions: { indexURL: '/py/', token: 'sk-secret', proxyURL: 'http://p' } },
    });
    const { trajectory } = await rlm.completion(CONTEXT);
    expect(JSON.stringify(trajectory.config)).not.toContain('sk-secret');
    expect(trajectory.config.environmentOptions).toEqual({ indexURL: '/py/', proxyURL: 'http://p' });
  });

  describe('run config', () => {
    it('keeps non-secret backend options such as maxOutputTokens', async () => {
      const root = new FakeClient('root-model', scripted('FINAL(x)'));
      const { rlm } = makeRLM({ root, rlm: { backendOptions: { model: 'root-model', apiKey: 'sk-secret', maxOutputTokens: 1024, timeoutMs: 5000 } } });
      const { trajectory } = await rlm.completion(CONTEXT);
      expect(JSON.stringify(trajectory.config)).not.toContain('sk-secret');
      expect(trajectory.config.backendOptions).toEqual({ model: 'root-model', maxOutputTokens: 1024, timeoutMs: 5000 });
    });
  });

  describe('storage failures', () => {
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
});

describe('LM failures', () => {
  it('rejects with the client’s typed error and records the failed run', async () => {
    const root = new FakeClient(
      'root-model',
      scripted(repl('a'), () => {
        throw new LMError('The fake API refused the key (401).', 'fake', 'root-model', 401);
      }),
    );
    const sink = new RecordingSink();
    const { rlm, events } = makeRLM({ root, cells: { a: {} }, rlm: { logger: sink } });
    const error = await rejection(rlm.completion(CONTEXT));
    expect(error).toBeInstanceOf(LMError);
    expect((error as LMError).status).toBe(401);
    const last = events.at(-1) as Extract<RLMEvent, { type: 'error' }>;
    expect(last.type).toBe('error');
    expect(last.error).toBe(error);
    expect(last.trajectory.status).toBe('failed');
    expect(last.trajectory.endReason).toBe('error');
    expect(last.trajectory.error).toContain('401');
    expect(last.trajectory.iterations).toHaveLength(1);
    expect(sink.endedStatus).toBe('failed');
  });

  it('rejects with the REPL’s error when the context cannot be loaded', async () => {
    const root = new FakeClient('root-model', scripted(repl('a'), 'FINAL(x)'));
    const { rlm } = makeRLM({
      root,
      cells: { a: {} },
      onRepl: (r) => {
        r.loadContext = () => Promise.reject(new ConfigurationError('unsupported context'));
      },
    });
    await expect(rlm.completion(CONTEXT)).rejects.toThrow('unsupported context');
  });
});

describe('misuse', () => {
  it('rejects an empty context with a ConfigurationError', async () => {
    const root = new FakeClient('root-model', scripted());
    const { rlm } = makeRLM({ root });
    await expect(rlm.completion('')).rejects.toThrow(ConfigurationError);
    await expect(rlm.completion(new ArrayBuffer(0))).rejects.toThrow(ConfigurationError);
    expect(root.calls).toHaveLength(0);
  });

  it('refuses a second completion while one runs', async () => {
    let release: (() => void) | undefined;
    const root = new FakeClient(
      'root-model',
      scripted(
        () =>
          new Promise<string>((resolve) => {
            release = () => resolve('FINAL(first)');
          }),
      ),
    );
    const { rlm } = makeRLM({ root });
    const first = rlm.completion(CONTEXT);
    await expect(rlm.completion(CONTEXT)).rejects.toThrow(RLMError);
    await vi.waitFor(() => expect(release).toBeDefined());
    release!();
    expect((await first).response).toBe('first');
  });

  it('refuses to run after close()', async () => {
    const root = new FakeClient('root-model', scripted('FINAL(x)'));
    const { rlm, env } = makeRLM({ root });
    await rlm.completion(CONTEXT);
    await rlm.close();
    expect(env().closed).toBe(true);
    await expect(rlm.completion(CONTEXT)).rejects.toThrow(/closed/);
  });

  it('checks whole-number options at construction', () => {
    const root = new FakeClient('root-model', scripted());
    expect(() => makeRLM({ root, rlm: { maxIterations: 0 } })).toThrow(ConfigurationError);
    expect(() => makeRLM({ root, rlm: { maxDepth: 1.5 } })).toThrow(ConfigurationError);
  });

  it('answers with one plain LM call at depth >= maxDepth', async () => {
    const root = new FakeClient('root-model', (messages) => `plain: ${messages[0]!.content}`);
    const { rlm, envs } = makeRLM({ root, depth: 1, rlm: { maxDepth: 1 } });
    const result: CompletionResult = await rlm.completion('ctx', { rootPrompt: 'q' });
    expect(result.response).toBe('plain: ctx\n\nq');
    expect(envs).toHaveLength(0);
    expect(result.usage.calls).toBe(1);
  });

  describe('failures while a run is being set up', () => {
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

  describe('maxDepth 0', () => {
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
});

describe('stream()', () => {
  it('yields the run’s events in order and resolves `result`', async () => {
    const root = new FakeClient('root-model', scripted(repl('a'), 'FINAL(streamed)'));
    const { rlm, events } = makeRLM({ root, cells: { a: { stdout: 'A' } } });
    const stream = rlm.stream(CONTEXT);
    const seen: RLMEvent[] = [];
    for await (const event of stream) seen.push(event);
    const result = await stream.result;
    expect(result.response).toBe('streamed');
    expect(seen.map((e) => e.type)).toEqual(events.map((e) => e.type));
    expect(seen.at(-1)?.type).toBe('run_end');
  });

  it('includes a child RLM’s events', async () => {
    const parent = scripted(repl('delegate'), 'FINAL(done)');
    const root = new FakeClient('root-model', (messages, request, call) =>
      messages[0]!.content.includes('recursion is off') ? 'FINAL(child)' : parent(messages, request, call),
    );
    const { rlm } = makeRLM({
      root,
      rlm: { maxDepth: 2 },
      cells: {
        delegate: async (ctx) => {
          await query(ctx, 'rlm_query', ['task']);
          return {};
        },
      },
    });
    const stream = rlm.stream(CONTEXT);
    const depths = new Set<number>();
    for await (const event of stream) depths.add(event.depth);
    await stream.result;
    expect([...depths].sort()).toEqual([0, 1]);
  });

  it('ends with an error event when the run fails, and rejects `result`', async () => {
    const root = new FakeClient('root-model', scripted(repl('a'), repl('a')));
    const { rlm } = makeRLM({ root, cells: { a: {} }, rlm: { maxTokens: 20 } });
    const stream = rlm.stream(CONTEXT);
    const seen: RLMEvent[] = [];
    for await (const event of stream) seen.push(event);
    await expect(stream.result).rejects.toBeInstanceOf(TokenLimitExceededError);
    const last = seen.at(-1);
    expect(last?.type).toBe('error');
    expect(last?.type === 'error' && last.error).toBeInstanceOf(TokenLimitExceededError);
    expect(seen.filter((e) => e.type === 'error')).toHaveLength(1);
  });

  it('ends with an error event when the run cannot start', async () => {
    const root = new FakeClient('root-model', scripted());
    const { rlm } = makeRLM({ root });
    const stream = rlm.stream('');
    const seen: RLMEvent[] = [];
    for await (const event of stream) seen.push(event);
    await expect(stream.result).rejects.toBeInstanceOf(ConfigurationError);
    expect(seen.map((e) => e.type)).toEqual(['error']);
  });
});
