/**
 * One suite of REPL behaviours, run against every environment: Pyodide in a worker and a
 * remote sandbox behind rlm-web-proxy (local provider). Each case is a real completion —
 * the openai SDK against the scripted LM server, sub-calls answered by the page — whose
 * root model writes the case's cells turn by turn and then answers FINAL(done).
 */
import type { Page } from '@playwright/test';
import { expect, haystack, test } from './support/fixtures';
import { isRootCall, lastUser, repl, turnOf, type LMServer, type ScriptedRequest, type ScriptedReply } from './support/lm-server';
import { PROXY_TOKEN, startProxy, type TestProxy } from './support/proxy';
import { runCompletion, type RunOutcome } from './support/run';

/** Sub-model: echoes; prompts starting with "fail" get an API error; "slow" ones answer late. */
function subModel(request: ScriptedRequest): ScriptedReply {
  const prompt = lastUser(request);
  if (prompt.startsWith('fail')) return { status: 400, error: `scripted failure for ${prompt}` };
  return { content: `echo:${prompt}`, delayMs: prompt.startsWith('slow') ? 400 : 0 };
}

/** Root model: turn k writes the blocks of turns[k]; after the last, `finalText`. */
function rootScript(turns: string[][], finalText: string) {
  return (request: ScriptedRequest): string | ScriptedReply => {
    if (!isRootCall(request)) return subModel(request);
    // A child RLM (rlm_query below maxDepth) has no question of its own: answer from its context.
    if (!request.messages.some((m) => m.content.includes('Run the cells.'))) {
      return repl('answer["content"] = "child saw " + context\nanswer["ready"] = True');
    }
    const turn = turnOf(request);
    if (turn < turns.length) return turns[turn]!.map((code) => repl(code)).join('\n');
    return finalText;
  };
}

const CONTEXT = haystack(200, 'The needle line.', 0.5);

for (const environment of ['pyodide', 'remote'] as const) {
  test.describe(`REPL behaviour in ${environment}`, () => {
    let proxy: TestProxy | undefined;

    test.beforeAll(async () => {
      if (environment === 'remote') proxy = await startProxy();
    });

    test.afterAll(async () => {
      await proxy?.close();
    });

    async function run(page: Page, lm: LMServer, turns: string[][], finalText = 'FINAL(done)', extra: { maxDepth?: number; tools?: boolean } = {}): Promise<RunOutcome> {
      lm.setScript(rootScript(turns, finalText));
      const environmentOptions = environment === 'remote' ? { proxyURL: proxy!.url, token: PROXY_TOKEN, provider: 'local' } : {};
      const run = await runCompletion(page, lm, {
        context: CONTEXT,
        rootPrompt: 'Run the cells.',
        environment,
        environmentOptions,
        options: { maxDepth: extra.maxDepth ?? 1 },
        ...(extra.tools ? { functionTools: { add: '(a, b) => a + b' }, dataTools: { settings: { tool: { mode: 'fast', n: 3 }, description: 'data' } } } : {}),
      });
      if (!run.ok) throw new Error(`${run.errorName}: ${run.errorMessage}`);
      expect(run.bridge).toBe(environment === 'remote' ? 'remote' : 'jspi');
      if (proxy) expect(proxy.proxy.sandboxCount).toBe(0); // close() deleted the sandbox
      return run;
    }

    test('llm_query: a sub-call answered by the page', async ({ harness, lm }) => {
      const r = await run(harness, lm, [['reply = llm_query("hello there")\nprint(reply)']]);
      const block = r.turns[0]![0]!;
      expect(block.stdout).toBe('echo:hello there\n');
      expect(block.subcalls).toEqual([{ prompt: 'hello there', response: 'echo:hello there' }]);
      expect(lm.requests.filter((q) => q.model === 'scripted-sub').map(lastUser)).toEqual(['hello there']);
      expect(r.calls).toBe(3); // two root turns and the sub-call
      expect(r.response).toBe('done');
    });

    test('live output: what a cell prints reaches the page as code_output while the cell still runs', async ({ harness, lm }) => {
      const r = await run(harness, lm, [['import sys, time\nprint("first")\nsys.stderr.write("careful\\n")\ntime.sleep(1.5)\nprint("second")']]);
      expect(r.turns[0]![0]!.stdout).toBe('first\nsecond\n');
      // The chunk with the first line came on its own (the second was not printed yet), before code_end.
      const first = r.output.find((o) => o.text.includes('first'));
      expect(first!.stream).toBe('stdout');
      expect(first!.text).not.toContain('second');
      expect(first!.at).toBeLessThan(r.events.indexOf('code_end'));
      expect(r.output.filter((o) => o.stream === 'stderr').map((o) => o.text).join('')).toBe('careful\n');
    });

    test('llm_query_batched keeps prompt order and isolates a failed item', async ({ harness, lm }) => {
      const r = await run(harness, lm, [['rs = llm_query_batched(["slow a", "fail b", "c"])\nfor x in rs: print(repr(x))']]);
      const lines = r.turns[0]![0]!.stdout.trim().split('\n');
      expect(lines).toHaveLength(3);
      expect(lines[0]).toBe("'echo:slow a'");
      expect(lines[1]).toMatch(/^'Error: .*scripted failure for fail b/);
      expect(lines[2]).toBe("'echo:c'");
      expect(r.turns[0]![0]!.subcalls).toHaveLength(3);
      expect(r.turns[0]![0]!.errorType).toBeNull();
    });

    test('rlm_query: a plain LM call at the depth limit, a child RLM in its own REPL below it', async ({ harness, lm }) => {
      const flat = await run(harness, lm, [['print(rlm_query("flat"))\nprint(rlm_query_batched(["p", "q"]))']]);
      expect(flat.turns[0]![0]!.stdout).toBe("echo:flat\n['echo:p', 'echo:q']\n");
      lm.requests.length = 0;
      const deep = await run(harness, lm, [['print(rlm_query("the sub task"))\nprint(rlm_query_batched(["one", "two"]))\nprint(len(context))']], 'FINAL(done)', { maxDepth: 2 });
      expect(deep.turns[0]![0]!.stdout).toBe(`child saw the sub task\n['child saw one', 'child saw two']\n${CONTEXT.length}\n`);
      expect(deep.turns[0]![0]!.subcalls.map((s) => s.response)).toEqual(['child saw the sub task', 'child saw one', 'child saw two']);
    });

    test('custom tools: a page function and a data value', async ({ harness, lm }) => {
      const r = await run(harness, lm, [['print(add(2, 3), settings["mode"], settings["n"] * 2)']], 'FINAL(done)', { tools: true });
      expect(r.turns[0]![0]!.stdout).toBe('5 fast 6\n');
    });

    test('answer dict ends the run with its content', async ({ harness, lm }) => {
      const r = await run(harness, lm, [['answer["content"] = "forty-" + str(40 + 2)\nanswer["ready"] = True']], 'never reached');
      expect(r.response).toBe('forty-42');
      expect(r.iterations).toBe(1);
    });

    test('FINAL_VAR in a cell and in the response text', async ({ harness, lm }) => {
      const inCell = await run(harness, lm, [['result = "value " + str(len(context.splitlines()))\nFINAL_VAR("result")']], 'never reached');
      expect(inCell.response).toBe('value 200');
      lm.requests.length = 0;
      const inText = await run(harness, lm, [['kept = {"a": 1}']], 'Done.\nFINAL_VAR(kept)');
      expect(inText.response).toBe("{'a': 1}");
      expect(inText.iterations).toBe(2);
    });

    test('SHOW_VARS lists user variables only', async ({ harness, lm }) => {
      const r = await run(harness, lm, [['import json\nalpha = 1\nbeta = "two"\nprint(SHOW_VARS())']]);
      const out = r.turns[0]![0]!.stdout;
      expect(out).toContain("'alpha': int");
      expect(out).toContain("'beta': str");
      expect(out).toContain("'context': str");
      expect(out).not.toContain('llm_query');
      expect(out).not.toContain('json');
      expect(r.turns[0]![0]!.locals).toEqual(expect.arrayContaining(['alpha', 'beta', 'context']));
    });

    test('reserved names are restored after user code overwrites them', async ({ harness, lm }) => {
      const r = await run(harness, lm, [
        ['llm_query = None\ncontext = "gone"\nSHOW_VARS = 3\nanswer = 5'],
        ['print(llm_query("again"), len(context) == ' + CONTEXT.length + ', callable(SHOW_VARS), type(answer).__name__, answer["ready"])'],
      ]);
      expect(r.turns[1]![0]!.stdout).toBe('echo:again True True AnswerDict False\n');
      expect(r.turns[1]![0]!.errorType).toBeNull();
    });

    test('stdout and stderr are captured per cell, with the last expression shown', async ({ harness, lm }) => {
      const r = await run(harness, lm, [['import sys\nprint("out 1")\nprint("err 1", file=sys.stderr)\nsys.stdout.write("out 2\\n")\n6 * 7']]);
      const block = r.turns[0]![0]!;
      expect(block.stdout).toBe('out 1\nout 2\n42\n');
      expect(block.stderr).toBe('err 1\n');
    });

    test('state persists across cells and turns', async ({ harness, lm }) => {
      const r = await run(harness, lm, [['x = 40', 'y = x + 1'], ['def f(v):\n    return v * 2\nprint(x + y, f(y))']]);
      expect(r.turns[0]).toHaveLength(2);
      expect(r.turns[0]![1]!.locals).toEqual(expect.arrayContaining(['x', 'y']));
      expect(r.turns[1]![0]!.stdout).toBe('81 82\n');
    });

    test('an exception gives a short traceback and the REPL goes on', async ({ harness, lm }) => {
      const r = await run(harness, lm, [['before = 1\ndef g():\n    return 1 / 0\ng()'], ['print("after", before)']]);
      const failed = r.turns[0]![0]!;
      expect(failed.errorType).toBe('ZeroDivisionError');
      expect(failed.stderr).toContain('Traceback (most recent call last):');
      expect(failed.stderr).toContain('<cell-');
      expect(failed.stderr).toContain('in g');
      expect(failed.stderr).toContain('ZeroDivisionError: division by zero');
      expect(failed.stderr).not.toContain('rlm_runtime');
      expect(r.turns[1]![0]!.stdout).toBe('after 1\n');
    });
  });
}
