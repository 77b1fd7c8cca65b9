/**
 * The loop's side of issue 13 (matching the reference `rlms`): `history` from the first turn,
 * orchestrator guidance, the user prologue, sampling args for the root and for sub-calls,
 * child RLMs' own concurrency, and the reminder for replies in another tool syntax.
 */
import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../src/core/errors';
import { resolveOptions } from '../../src/core/options';
import { COMPACTION_REQUEST, NO_CODE_REMINDER, ORCHESTRATOR_GUIDANCE } from '../../src/core/prompts';
import type { ChatMessage, LMRequest } from '../../src/core/types';
import { FakeClient, makeRLM, query, repl, results, scripted, type Cell } from './fakes/fakes';

const CONTEXT = 'The quick brown fox. '.repeat(20);
const QUESTION = 'How many foxes?';

/** A child RLM's first user message has no question: rlm_query passes none. */
const isChild = (messages: ChatMessage[]) => !messages[1]?.content.includes('The question to answer');

/** A root that delegates one task to a child RLM (run with maxDepth 2), then answers. */
function delegating() {
  const root = new FakeClient('root-model', (messages, _request, call) => {
    if (isChild(messages)) return 'FINAL(child done)';
    return call === 0 ? repl('delegate') : 'FINAL(done)';
  });
  const cells: Record<string, Cell> = { delegate: async (ctx) => ({ stdout: results(await query(ctx, 'rlm_query', ['task']))[0] ?? '' }) };
  return { root, cells };
}

describe('`history` with compaction on', () => {
  it('is an empty list before the first cell and gains each turn (reply and feedback) as one entry', async () => {
    const seen: unknown[] = [];
    const look: Cell = ({ repl: r }) => {
      seen.push(JSON.parse(JSON.stringify(r.vars.get('history'))));
      return { stdout: 'looked' };
    };
    const root = new FakeClient('big-model', scripted(repl('look', 'first'), repl('look', 'second'), 'FINAL(done)'));
    const { rlm, env } = makeRLM({ root, cells: { look }, rlm: { compaction: true } });
    await rlm.completion(CONTEXT);
    expect(seen[0]).toEqual([]);
    expect(seen[1]).toEqual([
      [
        { role: 'assistant', content: repl('look', 'first') },
        { role: 'user', content: 'REPL output:\nlooked' },
      ],
    ]);
    expect(env().setCalls.filter((c) => c.name === 'history').every((c) => c.reserved)).toBe(true);
  });

  it('is not set without compaction (the reference binds it only then, or when persistent)', async () => {
    const root = new FakeClient('big-model', scripted(repl('a'), 'FINAL(x)'));
    const { rlm, env } = makeRLM({ root, cells: { a: {} } });
    await rlm.completion(CONTEXT);
    expect(env().setCalls.some((c) => c.name === 'history')).toBe(false);
  });
});

describe('orchestrator', () => {
  it('adds the guidance to the system prompt of the root and of child RLMs', async () => {
    const { root, cells } = delegating();
    const { rlm } = makeRLM({ root, cells, rlm: { orchestrator: true, maxDepth: 2 } });
    await rlm.completion(CONTEXT, { rootPrompt: QUESTION });
    const systems = root.calls.map((c) => c[0]!.content);
    expect(systems).toHaveLength(3);
    for (const system of systems) expect(system.endsWith(`\n\n${ORCHESTRATOR_GUIDANCE}`)).toBe(true);
  });

  it('extends a custom system prompt too, and is off by default', async () => {
    const on = new FakeClient('m', scripted('FINAL(x)'));
    await makeRLM({ root: on, rlm: { orchestrator: true, customSystemPrompt: 'CUSTOM' } }).rlm.completion(CONTEXT);
    expect(on.calls[0]![0]!.content).toBe(`CUSTOM\n\n${ORCHESTRATOR_GUIDANCE}`);
    const off = new FakeClient('m', scripted('FINAL(x)'));
    await makeRLM({ root: off }).rlm.completion(CONTEXT);
    expect(off.calls[0]![0]!.content).not.toContain(ORCHESTRATOR_GUIDANCE);
  });
});

describe('userPrologue', () => {
  const PROLOGUE = 'Tip: the foxes are counted per sentence.';

  it('stands between the context description and the first turn line; children do not get it', async () => {
    const { root, cells } = delegating();
    const { rlm } = makeRLM({ root, cells, rlm: { userPrologue: PROLOGUE, maxDepth: 2 } });
    await rlm.completion(CONTEXT, { rootPrompt: QUESTION });
    const first = root.calls[0]![1]!.content;
    expect(root.calls[0]!.map((m) => m.role)).toEqual(['system', 'user']);
    const [before, after] = first.split(PROLOGUE) as [string, string];
    expect(before).toContain('`context` is a Python `str` of 420 characters.');
    expect(after).toMatch(/^\n\nYou have not looked at the context yet/);
    const child = root.calls.find((c) => isChild(c))!;
    expect(child[1]!.content).not.toContain(PROLOGUE);
  });

  it('survives compaction (the reference drops it)', async () => {
    const padding = 'p'.repeat(700);
    const script = scripted(repl('a = 1', padding), 'FINAL(done)');
    const root = new FakeClient('tiny-model', (messages, request, call) =>
      messages.at(-1)?.content === COMPACTION_REQUEST ? 'SUMMARY' : script(messages, request, call),
    );
    const { rlm } = makeRLM({ root, cells: { 'a = 1': {} }, rlm: { userPrologue: PROLOGUE, compaction: true, compactionThreshold: 0.5, contextWindows: { 'tiny-model': 400 } } });
    await rlm.completion(CONTEXT);
    const compacted = root.calls[2]!;
    expect(compacted.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(compacted[1]!.content).toBe(`\`context\` is a Python \`str\` of 420 characters.\n\n${PROLOGUE}`);
  });

  it('a blank prologue adds nothing', async () => {
    const root = new FakeClient('m', scripted('FINAL(x)'));
    await makeRLM({ root, rlm: { userPrologue: '  \n' } }).rlm.completion(CONTEXT);
    expect(root.calls[0]![1]!.content).toMatch(/characters\.\n\nYou have not looked/);
  });
});

describe('samplingArgs and subSamplingArgs', () => {
  const ROOT = { temperature: 0.2, reasoningEffort: 'low' as const };
  const SUB = { temperature: 0.9, topP: 0.5, maxOutputTokens: 300, stop: ['END'] };

  it('root turns and the out-of-turns call use samplingArgs; sub-calls use subSamplingArgs', async () => {
    const root = new FakeClient('root-model', scripted(repl('ask'), 'My final answer.'));
    const sub = new FakeClient('sub-model', () => 'sub reply');
    const { rlm } = makeRLM({
      root,
      others: [sub],
      cells: { ask: async (ctx) => ({ stdout: results(await query(ctx, 'llm_query', ['q1', 'q2'])).join(',') }) },
      rlm: { samplingArgs: ROOT, subSamplingArgs: SUB, maxIterations: 1 },
    });
    const result = await rlm.completion(CONTEXT);
    expect(result.trajectory.endReason).toBe('max_iterations');
    expect(root.requests.map((r: LMRequest) => r.sampling)).toEqual([ROOT, ROOT]);
    expect(sub.requests.map((r) => r.sampling)).toEqual([SUB, SUB]);
  });

  it('the compaction summary is asked with samplingArgs', async () => {
    const script = scripted(repl('a', 'p'.repeat(700)), 'FINAL(done)');
    const root = new FakeClient('tiny-model', (messages, request, call) =>
      messages.at(-1)?.content === COMPACTION_REQUEST ? 'SUMMARY' : script(messages, request, call),
    );
    const { rlm } = makeRLM({ root, cells: { a: {} }, rlm: { samplingArgs: ROOT, compaction: true, compactionThreshold: 0.5, contextWindows: { 'tiny-model': 400 } } });
    await rlm.completion(CONTEXT);
    expect(root.calls[1]!.at(-1)!.content).toBe(COMPACTION_REQUEST);
    expect(root.requests.map((r) => r.sampling)).toEqual([ROOT, ROOT, ROOT]);
  });

  it('the plain call at maxDepth 0 uses samplingArgs; nothing is sent when none are given', async () => {
    const root = new FakeClient('m', () => 'plain');
    await makeRLM({ root, rlm: { maxDepth: 0, samplingArgs: ROOT } }).rlm.completion('text');
    expect(root.requests[0]!.sampling).toEqual(ROOT);
    const bare = new FakeClient('m', scripted('FINAL(x)'));
    await makeRLM({ root: bare }).rlm.completion(CONTEXT);
    expect(bare.requests[0]!.sampling).toBeUndefined();
  });

  it('bad sampling args are a ConfigurationError that names the fix', () => {
    const resolve = (samplingArgs: unknown) => () => resolveOptions({ backend: new FakeClient('m', () => ''), samplingArgs: samplingArgs as never });
    expect(resolve({ top_p: 0.5 })).toThrow(ConfigurationError);
    expect(resolve({ top_p: 0.5 })).toThrow(/top_p is not a sampling argument; use temperature, topP/);
    expect(resolve({ temperature: 3 })).toThrow(/temperature must be a number from 0 to 2/);
    expect(resolve({ topP: 0 })).toThrow(/topP/);
    expect(resolve({ maxOutputTokens: 1.5 })).toThrow(/maxOutputTokens must be a whole number/);
    expect(resolve({ reasoningEffort: 'extreme' })).toThrow(/reasoningEffort must be one of/);
    expect(resolve({ stop: 'END' })).toThrow(/stop must be a list/);
    expect(resolve('hot')).toThrow(/samplingArgs must be an object/);
    expect(() => resolveOptions({ backend: new FakeClient('m', () => ''), subSamplingArgs: { temperature: -1 } })).toThrow(/subSamplingArgs.temperature/);
  });
});

describe('maxConcurrentChildren', () => {
  /** Root replies: the parent delegates `n` tasks; each child answers after a macrotask, counting overlap. */
  function counting(n: number) {
    const state = { inFlight: 0, most: 0 };
    const root = new FakeClient('root-model', async (messages, _request, call) => {
      if (!isChild(messages)) return call === 0 ? repl('fan_out') : 'FINAL(done)';
      state.inFlight++;
      state.most = Math.max(state.most, state.inFlight);
      await new Promise((resolve) => setTimeout(resolve, 2));
      state.inFlight--;
      return 'FINAL(child)';
    });
    const cells = {
      fan_out: async (ctx: Parameters<Extract<Cell, Function>>[0]) => ({
        stdout: String(results(await query(ctx, 'rlm_query', Array.from({ length: n }, (_, i) => `task ${i}`))).length),
      }),
    };
    return { root, cells, state };
  }

  it('defaults to 4 children at once, apart from maxConcurrentSubcalls', async () => {
    const { root, cells, state } = counting(10);
    const { rlm } = makeRLM({ root, cells, rlm: { maxDepth: 2, maxConcurrentSubcalls: 16 } });
    await rlm.completion(CONTEXT, { rootPrompt: QUESTION });
    expect(state.most).toBe(4);
    expect(root.calls.filter(isChild)).toHaveLength(10);
    await rlm.close();
  });

  it('follows the option', async () => {
    const { root, cells, state } = counting(6);
    const { rlm } = makeRLM({ root, cells, rlm: { maxDepth: 2, maxConcurrentChildren: 2 } });
    await rlm.completion(CONTEXT, { rootPrompt: QUESTION });
    expect(state.most).toBe(2);
    await rlm.close();
  });

  it('leaves plain batched sub-calls at maxConcurrentSubcalls', async () => {
    const state = { inFlight: 0, most: 0 };
    const sub = new FakeClient('sub-model', async () => {
      state.most = Math.max(state.most, ++state.inFlight);
      await new Promise((resolve) => setTimeout(resolve, 2));
      state.inFlight--;
      return 'ok';
    });
    const root = new FakeClient('root-model', scripted(repl('many'), 'FINAL(done)'));
    const { rlm } = makeRLM({
      root,
      others: [sub],
      cells: { many: async (ctx) => ({ stdout: String(results(await query(ctx, 'llm_query', Array.from({ length: 40 }, (_, i) => `p${i}`))).length) }) },
    });
    await rlm.completion(CONTEXT);
    expect(state.most).toBe(16);
  });

  it('must be a whole number of at least 1', () => {
    expect(() => resolveOptions({ backend: new FakeClient('m', () => ''), maxConcurrentChildren: 0 })).toThrow(/maxConcurrentChildren must be a whole number of at least 1/);
    expect(resolveOptions({ backend: new FakeClient('m', () => '') }).maxConcurrentChildren).toBe(4);
  });
});

describe('replies in another tool syntax', () => {
  it('get a reminder that names the markup and says nothing ran, instead of the generic one', async () => {
    const xml = 'Let me check.\n<function_calls>\n<invoke name="python">\n<parameter name="code">print(len(context))</parameter>\n</invoke>\n</function_calls>\n<function_results>420</function_results>';
    const root = new FakeClient('root-model', scripted(xml, 'No code here either.', 'FINAL(done)'));
    const { rlm, env } = makeRLM({ root });
    const result = await rlm.completion(CONTEXT);
    expect(result.response).toBe('done');
    expect(env().executed).toEqual([]);
    const reminder = root.lastMessage(1);
    expect(reminder).toMatch(/^Your reply used tool-call markup \(<function_calls>\)/);
    expect(reminder).toContain('nothing ran');
    expect(reminder).not.toContain(NO_CODE_REMINDER);
    // A reply with no markup still gets the generic reminder.
    expect(root.lastMessage(2)).toContain(NO_CODE_REMINDER);
  });

  it('a repl block in the same reply runs as usual', async () => {
    const root = new FakeClient('root-model', scripted(`<tool_call>{"name":"x"}</tool_call>\n${repl('a')}`, 'FINAL(done)'));
    const { rlm, env } = makeRLM({ root, cells: { a: { stdout: 'A' } } });
    await rlm.completion(CONTEXT);
    expect(env().executed).toEqual(['a']);
    expect(root.lastMessage(1)).toMatch(/^REPL output:\nA/);
  });
});

describe('maxOutputChars', () => {
  it('must be a whole number of at least 1', () => {
    expect(() => resolveOptions({ backend: new FakeClient('m', () => ''), maxOutputChars: 0 })).toThrow(ConfigurationError);
  });
});
