/**
 * Full RLM semantics in Chromium: recursion, limits, interrupts, cancellation, tools,
 * multi-turn sessions, compaction, streaming. Real SDK clients, scripted LM server.
 */
import { expect, ISOLATED_ORIGIN, openHarness, PLAIN_ORIGIN, test } from './support/fixtures';
import { isRootCall, lastUser, repl, turnOf, type ScriptedRequest } from './support/lm-server';

const isChildRoot = (r: ScriptedRequest) => isRootCall(r) && !r.messages[1]?.content.includes('The question to answer');

test('depth 2: rlm_query_batched fans out to child RLMs with their own REPLs; usage and trajectories nest', async ({ harness, lm }) => {
  lm.setScript((r) => {
    if (!isRootCall(r)) return `sub:${lastUser(r).slice(0, 40)}`;
    if (isChildRoot(r)) {
      // A child sees its task only through its own `context`.
      return repl('answer["content"] = "child(" + context + ")=" + llm_query("echo " + context)\nanswer["ready"] = True');
    }
    if (turnOf(r) === 0) return repl('tasks = ["alpha", "beta", "gamma", "delta"]\nres = rlm_query_batched(tasks)\nprint(res)');
    return repl('answer["content"] = " | ".join(res)\nanswer["ready"] = True');
  });
  const out = await harness.evaluate(async (baseURL) => {
    const { RLM } = (window as any).rlmWeb;
    const depths = new Set<number>();
    const rlm = new RLM({
      backendOptions: { model: 'scripted-root', baseURL },
      maxDepth: 2,
      maxConcurrentSubcalls: 4,
      onEvent: (e: { depth: number }) => depths.add(e.depth),
    });
    try {
      const result = await rlm.completion('the root context', { rootPrompt: 'Run the four tasks.' });
      const calls = result.trajectory.iterations[0].codeBlocks[0].subcalls;
      return {
        response: result.response,
        kinds: calls.map((c: any) => c.kind),
        childIterations: calls.map((c: any) => c.trajectory?.iterations.length),
        childCalls: calls.map((c: any) => c.usage.calls),
        childDepth: calls[0].trajectory?.config.depth,
        leafInChild: calls[0].trajectory?.iterations[0].codeBlocks[0].subcalls[0].kind,
        totalCalls: result.usage.calls,
        depths: [...depths].sort(),
      };
    } finally {
      await rlm.close();
    }
  }, lm.openaiURL);
  expect(out.response).toBe('child(alpha)=sub:echo alpha | child(beta)=sub:echo beta | child(gamma)=sub:echo gamma | child(delta)=sub:echo delta');
  expect(out.kinds).toEqual(['rlm', 'rlm', 'rlm', 'rlm']);
  expect(out.childIterations).toEqual([1, 1, 1, 1]);
  // Each child: one root turn + one leaf llm_query, merged into the parent's totals.
  expect(out.childCalls).toEqual([2, 2, 2, 2]);
  expect(out.totalCalls).toBe(2 + 4 * 2);
  expect(out.childDepth).toBe(1);
  expect(out.leafInChild).toBe('llm');
  expect(out.depths).toEqual([0, 1]);
});

test('limits end the run with typed errors carrying the partial answer', async ({ harness, lm }) => {
  lm.setScript((r) => {
    const prompt = lastUser(r);
    if (!isRootCall(r)) return { content: 'sub', usage: { cost: 0.01 } };
    if (r.model === 'slow') return { content: repl('print(1)', 'thinking slowly'), delayMs: 5000 };
    if (r.model === 'erring') return repl('1/0', `attempt ${turnOf(r)}`);
    if (r.model === 'wordy') return repl('print("x")', 'a'.repeat(4000));
    if (r.model === 'looping') return repl(`print(${turnOf(r)})`, `turn ${turnOf(r)}`);
    if (r.model === 'final-call' && prompt.includes('no turns left')) return 'My final answer: 42';
    if (r.model === 'final-call') return repl('print("still looking")', 'looking');
    // 'costly': every root call reports a cost.
    return { content: repl('print(llm_query("hi"))', `costly turn ${turnOf(r)}`), usage: { cost: 0.01 } };
  });
  const out = await harness.evaluate(async (baseURL) => {
    const { RLM } = (window as any).rlmWeb;
    async function attempt(model: string, limits: object) {
      const rlm = new RLM({ backendOptions: { model, baseURL }, ...limits });
      try {
        const r = await rlm.completion('some context', { rootPrompt: 'q' });
        return { ok: true, response: r.response, endReason: r.trajectory.endReason, iterations: r.trajectory.iterations.length };
      } catch (e: any) {
        return { ok: false, name: e.name, isRunEnded: e instanceof (window as any).rlmWeb.RunEndedError, isLimit: e instanceof (window as any).rlmWeb.LimitExceededError, partial: e.partialAnswer, endReason: e.trajectory?.endReason, status: e.trajectory?.status, hasUsage: typeof e.usage?.calls === 'number' };
      } finally {
        await rlm.close();
      }
    }
    return {
      budget: await attempt('costly', { maxBudget: 0.025 }),
      tokens: await attempt('wordy', { maxTokens: 3000 }),
      time: await attempt('slow', { maxTimeMs: 800 }),
      errors: await attempt('erring', { maxErrors: 2 }),
      iterations: await attempt('final-call', { maxIterations: 2 }),
    };
  }, lm.openaiURL);
  expect(out.budget).toMatchObject({ ok: false, name: 'BudgetExceededError', isLimit: true, endReason: 'max_budget', status: 'failed', hasUsage: true });
  expect(out.budget.partial).toContain('costly turn');
  expect(out.tokens).toMatchObject({ ok: false, name: 'TokenLimitExceededError', isLimit: true, endReason: 'max_tokens' });
  expect(out.tokens.partial).toContain('aaaa');
  // The LM call in flight (5 s) is aborted when maxTimeMs (0.8 s) expires.
  expect(out.time).toMatchObject({ ok: false, name: 'TimeoutExceededError', isLimit: true, endReason: 'max_time' });
  expect(out.errors).toMatchObject({ ok: false, name: 'ErrorThresholdExceededError', endReason: 'max_errors', partial: 'attempt 1\n\n```repl\n1/0\n```\n' });
  // Two turns, then the final-answer call, recorded as an iteration of its own.
  expect(out.iterations).toMatchObject({ ok: true, response: 'My final answer: 42', endReason: 'max_iterations', iterations: 3 });
});

for (const mode of ['isolated', 'plain'] as const) {
  test(`a while True cell times out and the run goes on (${mode === 'isolated' ? 'KeyboardInterrupt, state kept' : 'worker restart, contexts reloaded'})`, async ({ page, lm }, testInfo) => {
    const origin = mode === 'isolated' ? ISOLATED_ORIGIN : PLAIN_ORIGIN;
    await openHarness(page, origin);
    lm.setScript((r) => {
      if (turnOf(r) === 0) return repl('kept = 42\nwhile True:\n    pass');
      if (turnOf(r) === 1) return repl('print("kept" in globals(), globals().get("kept"), len(context))');
      return repl('answer["content"] = "done"\nanswer["ready"] = True');
    });
    const out = await page.evaluate(async (baseURL) => {
      const { RLM } = (window as any).rlmWeb;
      const marks: Record<string, number> = {};
      const rlm = new RLM({
        backendOptions: { model: 'scripted-root', baseURL },
        cellTimeoutMs: 1500,
        onEvent: (e: any) => {
          if (e.type === 'code_start' && e.iteration === 1) marks.loopStart = performance.now();
          if (e.type === 'code_end' && e.iteration === 1) marks.loopEnd = performance.now();
          if (e.type === 'code_end' && e.iteration === 2) marks.nextEnd = performance.now();
        },
      });
      try {
        const result = await rlm.completion('x'.repeat(1000), { rootPrompt: 'q' });
        const [first, second] = result.trajectory.iterations;
        return {
          response: result.response,
          interrupted: first.codeBlocks[0].interrupted,
          stderr: first.codeBlocks[0].stderr,
          feedback: second.prompt[second.prompt.length - 1].content,
          after: second.codeBlocks[0].stdout,
          interruptible: rlm.replInfo?.interruptible,
          // From the timeout firing to the next cell's result (LM time is ~0 here).
          recoveryMs: marks.nextEnd! - (marks.loopStart! + 1500),
        };
      } finally {
        await rlm.close();
      }
    }, lm.openaiURL);
    console.log(`[measure] ${testInfo.title}: timeout → next cell done ${out.recoveryMs.toFixed(0)} ms`);
    expect(out.response).toBe('done');
    expect(out.interrupted).toBe(true);
    if (mode === 'isolated') {
      expect(out.interruptible).toBe(true);
      expect(out.stderr).toContain('KeyboardInterrupt');
      expect(out.after.trim()).toBe('True 42 1000');
    } else {
      expect(out.interruptible).toBe(false);
      expect(out.stderr).toContain('REPL was restarted');
      expect(out.after.trim()).toBe('False None 1000');
    }
    expect(out.feedback).toContain(mode === 'isolated' ? 'KeyboardInterrupt' : 'every other variable was lost');
  });
}

test('abort mid-cell and mid-LM-call rejects with CancellationError and the partial answer', async ({ harness, lm }) => {
  lm.setScript((r) => {
    if (r.model === 'slow-lm') return { content: 'never seen', delayMs: 20_000 };
    return repl('while True:\n    pass', 'Spinning now.');
  });
  const out = await harness.evaluate(async (baseURL) => {
    const { RLM } = (window as any).rlmWeb;
    async function abortAfter(model: string, when: string) {
      const controller = new AbortController();
      const rlm = new RLM({
        backendOptions: { model, baseURL },
        onEvent: (e: any) => {
          if (e.type === when) setTimeout(() => controller.abort(), 300);
        },
      });
      const started = performance.now();
      try {
        await rlm.completion('ctx', { rootPrompt: 'q', signal: controller.signal });
        return { ok: true };
      } catch (e: any) {
        return { ok: false, name: e.name, partial: e.partialAnswer, status: e.trajectory?.status, ms: performance.now() - started };
      } finally {
        await rlm.close();
      }
    }
    return { cell: await abortAfter('spinner', 'code_start'), lm: await abortAfter('slow-lm', 'iteration_start') };
  }, lm.openaiURL);
  expect(out.cell).toMatchObject({ ok: false, name: 'CancellationError', status: 'cancelled' });
  expect(out.cell.partial).toContain('Spinning now.');
  expect(out.lm).toMatchObject({ ok: false, name: 'CancellationError', status: 'cancelled' });
  // The 20 s LM call was aborted, not waited out.
  expect(out.lm.ms).toBeLessThan(15_000);
});

test('custom tools: a JS function called from Python in a loop, data as a variable, reserved names rejected', async ({ harness, lm }) => {
  lm.setScript((r) => {
    if (turnOf(r) === 0) return repl('vals = [lookup(k, scale=10) for k in ["a", "b", "c"]]\nprint(vals, table["unit"], type(table).__name__)');
    return repl('answer["content"] = str(sum(vals))\nanswer["ready"] = True');
  });
  const out = await harness.evaluate(async (baseURL) => {
    const { RLM, ConfigurationError } = (window as any).rlmWeb;
    const seen: unknown[] = [];
    const rlm = new RLM({
      backendOptions: { model: 'scripted-root', baseURL },
      customTools: {
        lookup: {
          tool: async (key: string, opts: { scale: number }) => {
            seen.push(key);
            await new Promise((r) => setTimeout(r, 5));
            return { a: 1, b: 2, c: 3 }[key]! * opts.scale;
          },
          description: 'Looks up a value by key.',
        },
        table: { unit: 'kg', rows: [1, 2] },
      },
    });
    let rejected = '';
    try {
      new RLM({ backendOptions: { model: 'm', baseURL }, customTools: { context: 1, llm_query: () => 1 } });
    } catch (e: any) {
      rejected = `${e instanceof ConfigurationError} ${e.message}`;
    }
    try {
      const result = await rlm.completion('ctx', { rootPrompt: 'q' });
      return { response: result.response, stdout: result.trajectory.iterations[0].codeBlocks[0].stdout, seen, system: result.trajectory.iterations[0].prompt[0].content, rejected };
    } finally {
      await rlm.close();
    }
  }, lm.openaiURL);
  expect(out.response).toBe('60');
  expect(out.stdout.trim()).toBe('[10, 20, 30] kg dict');
  expect(out.seen).toEqual(['a', 'b', 'c']);
  expect(out.system).toContain('`lookup`: Looks up a value by key.');
  expect(out.rejected).toContain('true');
  expect(out.rejected).toContain("'context', 'llm_query'");
});

test('persistent: three turns share one REPL (and its interpreter, by design); context_N and history_N accumulate', async ({ harness, lm }) => {
  lm.setScript((r) => {
    const turnIndex = (r.messages[1]?.content.match(/turn-(\d)/) ?? [])[1];
    if (turnIndex === '1') return repl('import builtins\nbuiltins._turn_1 = "kept"\nmemo = "from turn 1"\nanswer["content"] = context\nanswer["ready"] = True');
    if (turnIndex === '2') return repl('answer["content"] = f"{memo} / {context_1} / {len(history_0)} msgs"\nanswer["ready"] = True');
    return repl('import builtins\nanswer["content"] = f"{context_0} {context_2} {len(history)} {len(history_1)} {builtins._turn_1}"\nanswer["ready"] = True');
  });
  const out = await harness.evaluate(async (baseURL) => {
    const { RLM } = (window as any).rlmWeb;
    const rlm = new RLM({ backendOptions: { model: 'scripted-root', baseURL }, persistent: true });
    try {
      const a = await rlm.completion('ctx-A', { rootPrompt: 'turn-1' });
      const b = await rlm.completion('ctx-B', { rootPrompt: 'turn-2' });
      const c = await rlm.completion('ctx-C', { rootPrompt: 'turn-3' });
      return [a.response, b.response, c.response, c.trajectory.iterations[0].prompt[1].content];
    } finally {
      await rlm.close();
    }
  }, lm.openaiURL);
  expect(out[0]).toBe('ctx-A');
  expect(out[1]).toBe('from turn 1 / ctx-B / 3 msgs');
  expect(out[2]).toBe('ctx-A ctx-C 3 3 kept');
  expect(out[3]).toContain('3 contexts are loaded');
  expect(out[3]).toContain('2 previous conversations');
});

test('compaction at a tiny threshold summarizes the history and keeps it in `history`', async ({ harness, lm }) => {
  lm.setScript((r) => {
    if (lastUser(r).startsWith('The conversation is getting long')) return 'SUMMARY: counted to two; x holds 2.';
    const compacted = r.messages.some((m) => m.content.includes('SUMMARY: counted'));
    if (!compacted) return repl(`x = ${turnOf(r) + 1}\nprint("y" * 3000)`);
    return repl('answer["content"] = f"x={x}, history entries={len(history)}, first={history[0][\'role\'] if isinstance(history[0], dict) else type(history[0]).__name__}"\nanswer["ready"] = True');
  });
  const out = await harness.evaluate(async (baseURL) => {
    const { RLM } = (window as any).rlmWeb;
    const compactions: string[] = [];
    const rlm = new RLM({
      backendOptions: { model: 'scripted-root', baseURL },
      compaction: true,
      compactionThreshold: 0.5,
      contextWindows: { 'scripted-root': 3000 },
      onEvent: (e: any) => e.type === 'compaction' && compactions.push(e.summary),
    });
    try {
      const result = await rlm.completion('ctx', { rootPrompt: 'q' });
      const last = result.trajectory.iterations[result.trajectory.iterations.length - 1];
      return { response: result.response, compactions, lastPrompt: last.prompt.map((m: any) => m.content).join('\n') };
    } finally {
      await rlm.close();
    }
  }, lm.openaiURL);
  expect(out.compactions.length).toBeGreaterThanOrEqual(1);
  expect(out.compactions[0]).toContain('SUMMARY');
  expect(out.response).toMatch(/^x=\d, history entries=\d+, first=list$/);
  expect(out.lastPrompt).toContain('The conversation was summarized');
  expect(out.lastPrompt).not.toContain('y'.repeat(3000));
});

test('rlm.stream() yields the events and resolves the result; a failure arrives as a final error event', async ({ harness, lm }) => {
  lm.setScript((r) => {
    if (r.model === 'broken') return { status: 401, error: 'bad key' };
    return repl('answer["content"] = "streamed"\nanswer["ready"] = True');
  });
  const out = await harness.evaluate(async (baseURL) => {
    const { RLM } = (window as any).rlmWeb;
    const rlm = new RLM({ backendOptions: { model: 'scripted-root', baseURL } });
    const types: string[] = [];
    const stream = rlm.stream('ctx', { rootPrompt: 'q' });
    for await (const e of stream) types.push(e.type);
    const { response } = await stream.result;
    await rlm.close();
    const bad = new RLM({ backendOptions: { model: 'broken', baseURL, maxRetries: 0 } });
    const badTypes: string[] = [];
    const badStream = bad.stream('ctx', { rootPrompt: 'q' });
    let lastError = '';
    for await (const e of badStream) {
      badTypes.push(e.type);
      if (e.type === 'error') lastError = e.error.name;
    }
    const rejected = await badStream.result.then(() => 'resolved', (e: Error) => e.name);
    await bad.close();
    return { types, response, badTypes, lastError, rejected };
  }, lm.openaiURL);
  expect(out.response).toBe('streamed');
  expect(out.types[0]).toBe('run_start');
  expect(out.types[out.types.length - 1]).toBe('run_end');
  expect(out.types).toContain('iteration_end');
  expect(out.badTypes[out.badTypes.length - 1]).toBe('error');
  expect(out.lastError).toBe('LMAuthenticationError');
  expect(out.rejected).toBe('LMAuthenticationError');
});
