/**
 * Issue 13 in Chromium with real Pyodide: where rlm-web now matches the reference `rlms` —
 * `history` from the first turn under compaction, SHOW_VARS listing context_N / history_N,
 * one output cap per cell, variable previews in the trajectory and its JSONL (read the way the
 * reference visualizer reads them), and sampling args on the wire of both SDKs.
 */
import { visualize } from '../test/store/reference-visualizer';
import { expect, test } from './support/fixtures';
import { isRootCall, lastUser, repl, turnOf } from './support/lm-server';

test('compaction on: `history` is a list from turn 1; one cell output cap; bounded variable previews reach the JSONL', async ({ harness, lm }) => {
  const first = [
    'h0 = (type(history).__name__, len(history))',
    'big = "x" * 1_000_000',
    'nums = list(range(1_000_000))',
    'class Loud:',
    '    def __repr__(self):',
    '        raise SystemExit("a preview ran user code")',
    'loud = Loud()',
    'for i in range(300):',
    '    globals()[f"v{i}"] = i',
    'import sys',
    'print("o" * 3000)',
    'print("e" * 3000, file=sys.stderr)',
  ].join('\n');
  lm.setScript((r) => {
    if (turnOf(r) === 0) return repl(first);
    return repl('answer["content"] = f"{h0} {type(history).__name__} {len(history)} {history[0][0][\'role\']}"\nanswer["ready"] = True');
  });
  const out = await harness.evaluate(async (baseURL) => {
    const { RLM, toJSONL } = (window as any).rlmWeb;
    const rlm = new RLM({ backendOptions: { model: 'scripted-root', baseURL }, compaction: true, maxOutputChars: 1000 });
    try {
      const result = await rlm.completion('the context text', { rootPrompt: 'q' });
      const block = result.trajectory.iterations[0].codeBlocks[0];
      return { response: result.response, previews: block.previews, localsCount: block.locals.length, jsonl: toJSONL(result.trajectory) };
    } finally {
      await rlm.close();
    }
  }, lm.openaiURL);
  // `history` existed (empty) in turn 1, and held turn 1 (reply, feedback) in turn 2.
  expect(out.response).toBe("('list', 0) list 1 assistant");

  // The model saw at most 1000 characters of the cell's stdout and stderr together.
  const feedback = lastUser(lm.requests.filter(isRootCall)[1]!);
  const shown = (feedback.match(/o{10,}|e{10,}/g) ?? []).join('').length;
  expect(shown).toBe(1000);
  expect(feedback).toContain('2500 more characters cut');
  expect(feedback).toContain('[2500 earlier characters cut]');
  expect(feedback).toMatch(/\(and \d+ more; SHOW_VARS\(\) lists them all\)/);

  // Previews: short whatever the value's size, no user __repr__ run, at most 100 variables.
  expect(out.localsCount).toBeGreaterThan(300);
  const previews = out.previews as Record<string, string>;
  expect(Object.keys(previews)).toHaveLength(100);
  expect(previews.context).toBe('the context text');
  expect(previews.big).toBe(`${'x'.repeat(200)}... [1000000 chars]`);
  expect(previews.nums).toBe('[0, 1, 2, 3, 4, 5, ... 1000000 items]');
  expect(previews.loud).toBe('<Loud object>');
  expect(previews.h0).toBe("('list', 0)");
  expect(previews.history).toBe('[]');
  for (const text of Object.values(previews)) expect(text.length).toBeLessThanOrEqual(220);

  // The export, read the way the reference visualizer reads it.
  const view = visualize(out.jsonl);
  expect(view.header).toBe('scripted-root • openai • pyodide');
  expect(view.context).toBe('the context text');
  expect(view.variables[0]![0]).toEqual(expect.arrayContaining(['big = xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...', 'loud = <Loud object>', 'h0 = (\'list\', 0)']));
  expect(view.hasErrors).toBe(true);
  expect(JSON.parse(out.jsonl.split('\n')[0]!).backend_kwargs.model_name).toBe('scripted-root');
});

test('persistent: SHOW_VARS() lists context_N and history_N on a later turn', async ({ harness, lm }) => {
  lm.setScript((r) => {
    if (r.messages[1]?.content.includes('turn-1')) return repl('answer["content"] = "first"\nanswer["ready"] = True');
    return repl('answer["content"] = SHOW_VARS()\nanswer["ready"] = True');
  });
  const listing = await harness.evaluate(async (baseURL) => {
    const { RLM } = (window as any).rlmWeb;
    const rlm = new RLM({ backendOptions: { model: 'scripted-root', baseURL }, persistent: true });
    try {
      await rlm.completion('ctx-A', { rootPrompt: 'turn-1' });
      return (await rlm.completion('ctx-B', { rootPrompt: 'turn-2' })).response as string;
    } finally {
      await rlm.close();
    }
  }, lm.openaiURL);
  for (const name of ['context', 'context_0', 'context_1', 'history', 'history_0']) expect(listing).toContain(`'${name}'`);
  expect(listing).not.toContain('llm_query');
  expect(listing).not.toContain("'answer'");
});

test('samplingArgs and subSamplingArgs reach the wire of the OpenAI and Anthropic SDKs', async ({ harness, lm }) => {
  lm.setScript((r) => {
    if (!isRootCall(r)) return 'sub reply';
    if (turnOf(r) === 0) return repl('print(llm_query("hi"))');
    return repl('answer["content"] = "done"\nanswer["ready"] = True');
  });
  const run = (backend: string, baseURL: string) =>
    harness.evaluate(
      async ({ backend, baseURL }) => {
        const { RLM } = (window as any).rlmWeb;
        const rlm = new RLM({
          backend,
          backendOptions: { model: `${backend}-root`, baseURL },
          samplingArgs: { temperature: 0.2, reasoningEffort: 'low', maxOutputTokens: 777 },
          subSamplingArgs: { topP: 0.5, stop: ['END'] },
        });
        try {
          return (await rlm.completion('ctx', { rootPrompt: 'q' })).response as string;
        } finally {
          await rlm.close();
        }
      },
      { backend, baseURL },
    );

  expect(await run('openai', lm.openaiURL)).toBe('done');
  const openaiRoot = lm.requests.filter((r) => r.api === 'openai' && isRootCall(r));
  const openaiSub = lm.requests.filter((r) => r.api === 'openai' && !isRootCall(r));
  expect(openaiRoot).toHaveLength(2);
  for (const r of openaiRoot) {
    expect(r.body).toMatchObject({ temperature: 0.2, reasoning_effort: 'low', max_completion_tokens: 777 });
    expect(r.body).not.toHaveProperty('top_p');
  }
  expect(openaiSub).toHaveLength(1);
  expect(openaiSub[0]!.body).toMatchObject({ top_p: 0.5, stop: ['END'] });
  expect(openaiSub[0]!.body).not.toHaveProperty('temperature');

  expect(await run('anthropic', lm.anthropicURL)).toBe('done');
  const anthropicRoot = lm.requests.filter((r) => r.api === 'anthropic' && isRootCall(r));
  const anthropicSub = lm.requests.filter((r) => r.api === 'anthropic' && !isRootCall(r));
  expect(anthropicRoot).toHaveLength(2);
  for (const r of anthropicRoot) expect(r.body).toMatchObject({ temperature: 0.2, max_tokens: 777, output_config: { effort: 'low' } });
  expect(anthropicSub).toHaveLength(1);
  expect(anthropicSub[0]!.body).toMatchObject({ top_p: 0.5, stop_sequences: ['END'], max_tokens: 8192 });
  expect(anthropicSub[0]!.body).not.toHaveProperty('temperature');
});
