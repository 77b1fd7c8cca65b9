/**
 * The engine end to end in Chromium: the real openai / anthropic SDKs against the scripted
 * LM server, Pyodide in a module worker, both sync bridges.
 */
import type { Page } from '@playwright/test';
import { expect, haystack, openHarness, PLAIN_ORIGIN, test } from './support/fixtures';
import { isRootCall, lastUser, repl, turnOf, type LMServer } from './support/lm-server';
import { countSubcalls, NEEDLE, needleScript, replStartError, runCompletion, type CountedOutcome } from './support/run';

/** The needle run of these tests: chunks of 1 MB, on the page's default environment; a failed run throws. */
async function runNeedle(page: Page, lm: LMServer, backend: 'openai' | 'anthropic', bridge: 'auto' | 'sab' | 'jspi', text: string): Promise<CountedOutcome> {
  lm.setScript(needleScript(1_000_000));
  const run = await runCompletion(page, lm, { backend, context: text, environmentOptions: { bridge } });
  if (!run.ok) throw new Error(`${run.errorName}: ${run.errorMessage}`);
  return countSubcalls(run);
}

test('needle in a 6 MB haystack: chunk, llm_query_batched, answer (OpenAI SDK, JSPI)', async ({ harness, lm }) => {
  const text = haystack(80_000, NEEDLE, 0.73);
  expect(text.length).toBeGreaterThan(6_000_000);
  const run = await runNeedle(harness, lm, 'openai', 'auto', text);
  expect(run.response).toBe('4817305');
  expect(run.bridge).toBe('jspi');
  expect(run.iterations).toBe(2);
  expect(run.blocks[0]!.stdout).toContain(`str ${text.length}`);
  const chunks = Math.ceil(text.length / 1_000_000);
  expect(run.blocks[1]!.subcalls).toBe(chunks);
  expect(run.blocks[1]!.stdout).toContain(`${chunks} ['4817305']`);
  // Two root turns plus one sub-call per chunk, every one through the SDK to the server.
  expect(run.calls).toBe(2 + chunks);
  expect(lm.requests.filter((r) => r.model === 'scripted-sub')).toHaveLength(chunks);
  // The root model never saw the context itself.
  for (const r of lm.requests.filter(isRootCall)) {
    expect(r.messages.map((m) => m.content).join('').length).toBeLessThan(20_000);
  }
  expect(run.events).toEqual(expect.arrayContaining(['run_start', 'repl_ready', 'iteration_start', 'code_start', 'subcall_start', 'subcall_end', 'code_end', 'iteration_end', 'run_end']));
});

test('needle through the Anthropic SDK (system prompt moved to `system`)', async ({ harness, lm }) => {
  const run = await runNeedle(harness, lm, 'anthropic', 'auto', haystack(30_000, NEEDLE, 0.2));
  expect(run.response).toBe('4817305');
  const root = lm.requests.find((r) => r.api === 'anthropic' && r.model === 'scripted-root')!;
  expect(typeof root.body.system === 'object' || typeof root.body.system === 'string').toBe(true);
  expect((root.body.messages as { role: string }[]).every((m) => m.role !== 'system')).toBe(true);
  expect(root.headers['anthropic-dangerous-direct-browser-access']).toBe('true');
  expect(`${root.headers['x-api-key'] ?? ''} ${root.headers.authorization ?? ''}`).toContain('test-key');
});

test('SharedArrayBuffer bridge: chosen by default on a cross-origin isolated page', async ({ isolated, lm }) => {
  expect(await isolated.evaluate(() => crossOriginIsolated)).toBe(true);
  const run = await runNeedle(isolated, lm, 'openai', 'auto', haystack(30_000, NEEDLE, 0.5));
  expect(run.bridge).toBe('sab');
  expect(run.response).toBe('4817305');
});

test('SharedArrayBuffer bridge: live output reaches the page while the worker waits in Atomics.wait for a sub-call', async ({ isolated, lm }) => {
  lm.setScript((request) => {
    if (!isRootCall(request)) return { content: `echo:${lastUser(request)}`, delayMs: 1500 };
    return turnOf(request) === 0 ? repl('print("first")\nreply = llm_query("slow")\nprint("second", reply)') : 'FINAL(done)';
  });
  const run = await runCompletion(isolated, lm, { context: 'x', environmentOptions: { bridge: 'sab' } });
  if (!run.ok) throw new Error(`${run.errorName}: ${run.errorMessage}`);
  expect(run.bridge).toBe('sab');
  expect(run.blocks[0]!.stdout).toBe('first\nsecond echo:slow\n');
  const first = run.output.find((o) => o.text.includes('first'));
  expect(first!.stream).toBe('stdout');
  expect(first!.text).not.toContain('second');
  // Before the sub-call ended, let alone the cell.
  expect(first!.at).toBeLessThan(run.events.indexOf('subcall_end'));
});

test('JSPI can be forced on an isolated page; SAB forced on a plain page fails with BridgeUnavailableError', async ({ isolated, lm }) => {
  const run = await runNeedle(isolated, lm, 'openai', 'jspi', haystack(1_000, NEEDLE, 0.5));
  expect(run.bridge).toBe('jspi');
  expect(run.response).toBe('4817305');
  const plain = await isolated.context().newPage();
  await openHarness(plain, PLAIN_ORIGIN);
  const error = await replStartError(plain, { bridge: 'sab' });
  expect(error).toContain('BridgeUnavailableError');
  expect(error).toContain('cross-origin isolated');
});

test('llm_query is an ordinary sync function: nested defs, loops, comprehensions, sorted(key=), map, exec', async ({ harness, lm }) => {
  lm.setScript((r) => {
    if (!isRootCall(r)) return `<${lastUser(r)}>`;
    if (turnOf(r) === 0) {
      return repl(`
def outer(x):
    def inner(y):
        return llm_query(f"inner {y}")
    return inner(x)
a = outer(1)
b = [llm_query(f"comp {i}") for i in range(3)]
c = sorted(["b", "a"], key=lambda s: llm_query(s))
d = list(map(lambda s: llm_query(s), ["m"]))
ns = {"llm_query": llm_query}
exec("e = llm_query('exec')", ns)
total = ""
for i in range(2):
    total += llm_query(f"loop {i}")
gen = "".join(llm_query(f"gen {i}") for i in range(2))
print(a, b, c, d, ns["e"], total, gen)
`);
    }
    return repl('answer["content"] = "ok"\nanswer["ready"] = True');
  });
  const stdout = await harness.evaluate(async (baseURL) => {
    const { RLM } = (window as any).rlmWeb;
    const rlm = new RLM({ backendOptions: { model: 'scripted-root', baseURL } });
    try {
      const result = await rlm.completion('ctx', { rootPrompt: 'q' });
      return result.trajectory.iterations[0].codeBlocks[0].stdout + result.trajectory.iterations[0].codeBlocks[0].stderr;
    } finally {
      await rlm.close();
    }
  }, lm.openaiURL);
  expect(stdout.trim()).toBe("<inner 1> ['<comp 0>', '<comp 1>', '<comp 2>'] ['a', 'b'] ['<m>'] <exec> <loop 0><loop 1> <gen 0><gen 1>");
});

test('a Python exception is fed back with a short traceback; the model recovers; FINAL(...) in text answers', async ({ harness, lm }) => {
  lm.setScript((r) => {
    if (turnOf(r) === 0) return repl('def f(d):\n    return d["missing"]\nf({})');
    if (turnOf(r) === 1) return repl('reserved_ok = callable(llm_query)\nllm_query = None\nanswer = "oops"\nprint(SHOW_VARS())');
    if (turnOf(r) === 2) return repl('print(callable(llm_query), type(answer).__name__, answer["ready"])');
    return 'I have verified it.\nFINAL(the key was missing (KeyError))';
  });
  const run = await runCompletion(harness, lm, { context: 'ctx', rootPrompt: 'q' });
  const its = run.trajectory!.iterations;
  const out = { response: run.response, err: its[0]!.codeBlocks[0]!, feedback: its[1]!.prompt[its[1]!.prompt.length - 1]!.content, vars: its[1]!.codeBlocks[0]!.stdout, restored: its[2]!.codeBlocks[0]!.stdout };
  expect(out.response).toBe('the key was missing (KeyError)');
  expect(out.err.errorType).toBe('KeyError');
  expect(out.err.stderr).toContain('Traceback (most recent call last)');
  expect(out.err.stderr).toContain('return d["missing"]');
  expect(out.err.stderr).toContain("KeyError: 'missing'");
  expect(out.feedback).toContain("KeyError: 'missing'");
  expect(out.vars).toContain("'reserved_ok': bool");
  // Reserved names overwritten by the cell are restored after it.
  expect(out.restored.trim()).toBe('True AnswerDict False');
});

test('FINAL_VAR(name) resolves a REPL variable; a missing one is fed back, not taken as the answer', async ({ harness, lm }) => {
  lm.setScript((r) => {
    if (turnOf(r) === 0) return 'Answering early.\nFINAL_VAR(result)';
    if (turnOf(r) === 1) return repl('result = "value from the REPL"');
    return 'FINAL_VAR("result")';
  });
  const run = await runCompletion(harness, lm, { context: 'ctx', rootPrompt: 'q' });
  const its = run.trajectory!.iterations;
  const out = { response: run.response, iterations: its.length, feedback: its[1]!.prompt[its[1]!.prompt.length - 1]!.content };
  expect(out.response).toBe('value from the REPL');
  expect(out.iterations).toBe(3);
  expect(out.feedback).toContain("there is no variable named 'result'");
});

test('contexts of every kind reach Python: list, dict, Blob, ArrayBuffer, non-ASCII text', async ({ harness, lm }) => {
  lm.setScript(() => repl('answer["content"] = f"{type(context).__name__}:{len(context)}:{context if not isinstance(context, str) or len(context) < 20 else context[:5]}"\nanswer["ready"] = True'));
  const out = await harness.evaluate(async (baseURL) => {
    const { RLM } = (window as any).rlmWeb;
    const rlm = new RLM({ backendOptions: { model: 'scripted-root', baseURL } });
    const run = async (c: unknown) => (await rlm.completion(c, { rootPrompt: 'q' })).response;
    try {
      return [
        await run(['a', 1, { b: null }]),
        await run({ k: [1, 2], s: 'é' }),
        await run(new Blob(['blob text ✓'])),
        await run(new TextEncoder().encode('bytes!').buffer),
        await run('naïve 日本 🙂'),
      ];
    } finally {
      await rlm.close();
    }
  }, lm.openaiURL);
  expect(out).toEqual([
    "list:3:['a', 1, {'b': None}]",
    "dict:2:{'k': [1, 2], 's': 'é'}",
    'str:11:blob text ✓',
    'str:6:bytes!',
    // Python counts code points: the emoji is one character (two UTF-16 units in JS).
    'str:10:naïve 日本 🙂',
  ]);
});

test('bad input: 401, unreachable endpoint, malformed reply, empty or unsupported context give typed errors; reasoning-only replies work', async ({ harness, lm }) => {
  lm.setScript((r) => {
    if (r.model === 'unauthorized') return { status: 401, error: 'Incorrect API key provided' };
    if (r.model === 'malformed') return { raw: '{"id": "x", "object": "chat.completion"}' };
    if (r.model === 'reasoner') return { content: null, reasoning: repl('answer["content"] = "from reasoning"\nanswer["ready"] = True') };
    return 'unused';
  });
  const out = await harness.evaluate(async (baseURL) => {
    const w = (window as any).rlmWeb;
    async function attempt(model: string, url: string, context: unknown) {
      const rlm = new w.RLM({ backendOptions: { model, baseURL: url, maxRetries: 0 } });
      try {
        return { ok: true, response: (await rlm.completion(context, { rootPrompt: 'q' })).response };
      } catch (e: any) {
        return { ok: false, name: e.name, message: e.message, lm: e instanceof w.LMError, config: e instanceof w.ConfigurationError };
      } finally {
        await rlm.close();
      }
    }
    let unknownBackend = '';
    try {
      new w.RLM({ backend: 'nope', backendOptions: { model: 'm' } });
    } catch (e: any) {
      unknownBackend = e.name + ': ' + e.message;
    }
    return {
      unauthorized: await attempt('unauthorized', baseURL, 'ctx'),
      unreachable: await attempt('m', 'http://127.0.0.1:9/v1', 'ctx'),
      malformed: await attempt('malformed', baseURL, 'ctx'),
      empty: await attempt('m', baseURL, ''),
      unsupported: await attempt('m', baseURL, 42),
      reasoner: await attempt('reasoner', baseURL, 'ctx'),
      unknownBackend,
    };
  }, lm.openaiURL);
  expect(out.unauthorized).toMatchObject({ ok: false, name: 'LMAuthenticationError', lm: true });
  expect(out.unauthorized.message).toContain('Check backendOptions.apiKey');
  expect(out.unreachable).toMatchObject({ ok: false, name: 'LMConnectionError', lm: true });
  expect(out.unreachable.message).toContain('baseURL');
  expect(out.malformed).toMatchObject({ ok: false, name: 'LMResponseError', lm: true });
  expect(out.empty).toMatchObject({ ok: false, name: 'ConfigurationError', config: true });
  expect(out.empty.message).toContain('context is empty');
  expect(out.unsupported).toMatchObject({ ok: false, name: 'ConfigurationError' });
  expect(out.reasoner).toEqual({ ok: true, response: 'from reasoning' });
  expect(out.unknownBackend).toContain('ConfigurationError: Unknown backend');
});

test('prompt caching: Anthropic marks the stable prefix; OpenAI prefixes stay byte-stable; cached tokens are counted', async ({ harness, lm }) => {
  lm.setScript((r) => {
    const reply = turnOf(r) < 2 ? repl(`print(${turnOf(r)})`) : repl('answer["content"] = "cached"\nanswer["ready"] = True');
    return { content: reply, usage: { input: 1000, output: 10, cached: turnOf(r) * 400 } };
  });
  const run = (backend: string, baseURL: string) =>
    harness.evaluate(
      async ({ backend, baseURL }) => {
        const { RLM } = (window as any).rlmWeb;
        const rlm = new RLM({ backend, backendOptions: { model: `cache-${backend}`, baseURL } });
        try {
          const result = await rlm.completion('ctx', { rootPrompt: 'q' });
          return { response: result.response, cached: result.usage.cachedInputTokens, input: result.usage.inputTokens };
        } finally {
          await rlm.close();
        }
      },
      { backend, baseURL },
    );
  const anthropic = await run('anthropic', lm.anthropicURL);
  expect(anthropic.response).toBe('cached');
  // Turns 0, 1, 2 report 0, 400 and 800 cache-read tokens.
  expect(anthropic.cached).toBe(1200);
  expect(anthropic.input).toBe(3000 + 1200);
  const bodies = lm.requests.filter((r) => r.model === 'cache-anthropic').map((r) => r.body as any);
  for (const body of bodies) {
    expect(body.system[body.system.length - 1].cache_control).toEqual({ type: 'ephemeral' });
    const last = body.messages[body.messages.length - 1];
    expect(last.content[last.content.length - 1].cache_control).toEqual({ type: 'ephemeral' });
  }
  const openai = await run('openai', lm.openaiURL);
  expect(openai.cached).toBe(1200);
  const convos = lm.requests.filter((r) => r.model === 'cache-openai').map((r) => r.messages);
  for (let i = 1; i < convos.length; i++) {
    const previous = convos[i - 1]!;
    // Every earlier message is sent again unchanged, so the provider's prefix cache applies.
    expect(JSON.stringify(convos[i]!.slice(0, previous.length))).toBe(JSON.stringify(previous));
  }
});

test('boot from a memory snapshot: the first REPL stores one, the next boots from it and works the same', async ({ harness, lm }) => {
  lm.setScript((r) => {
    if (!isRootCall(r)) return `echo:${lastUser(r)}`;
    return repl('import random\nanswer["content"] = llm_query("hi") + " " + str(len(context)) + " " + str(random.random())\nanswer["ready"] = True');
  });
  const out = await harness.evaluate(async (baseURL) => {
    const { RLM } = (window as any).rlmWeb;
    const infos: unknown[] = [];
    const responses: string[] = [];
    for (const snapshot of [true, true, true, false]) {
      const rlm = new RLM({ backendOptions: { model: 'scripted-root', baseURL }, environmentOptions: { snapshot } });
      responses.push((await rlm.completion('abc', { rootPrompt: 'q' })).response);
      infos.push(rlm.replInfo.snapshot);
      await rlm.close();
    }
    return { infos, responses };
  }, lm.openaiURL);
  expect(out.infos).toEqual(['saved', 'loaded', 'loaded', 'none']);
  const answers = out.responses.map((r) => r.split(' '));
  expect(answers.map(([echo, length]) => `${echo} ${length}`)).toEqual(Array(4).fill('echo:hi 3'));
  // Each REPL draws its own random numbers (Pyodide starts random from one fixed state, the snapshot too).
  expect(new Set(answers.map((a) => a[2])).size).toBe(4);
});

test('a REPL that does not boot in time is replaced once, then fails with ReplCrashedError instead of hanging', async ({ harness, lm }) => {
  lm.setScript(() => repl('print(1)'));
  const out = await harness.evaluate(async (baseURL) => {
    const { RLM } = (window as any).rlmWeb;
    const rlm = new RLM({ backendOptions: { model: 'scripted-root', baseURL }, environmentOptions: { bootTimeoutMs: 1 } });
    try {
      await rlm.completion('ctx', { rootPrompt: 'q' });
      return 'resolved';
    } catch (e: any) {
      return `${e.name}: ${e.message}`;
    } finally {
      await rlm.close();
    }
  }, lm.openaiURL);
  expect(out).toBe('ReplCrashedError: Pyodide did not start within 1 ms (environmentOptions.bootTimeoutMs).');
});
