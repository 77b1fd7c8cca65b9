/**
 * Child RLMs in one interpreter: the REPLs of a root's children are namespaces of one
 * Pyodide worker (JSPI lets a cell waiting for a sub-call give the interpreter to another).
 * What must hold: their variables, output, files and interrupts stay apart; a child that will
 * not stop takes its siblings' cells down with the worker, never their runs.
 */
import { expect, ISOLATED_ORIGIN, openHarness, PLAIN_ORIGIN, test } from './support/fixtures';
import { isRootCall, lastUser, repl, turnOf, type ScriptedRequest } from './support/lm-server';

const isChildRoot = (r: ScriptedRequest) => isRootCall(r) && !r.messages[1]?.content.includes('The question to answer');

// Each child: remember its task, write a file, wait in a sub-call (siblings run meanwhile),
// then report what it sees. `_probe` counts children on the interpreter's builtins: shared
// module state is how one can tell that they run in one interpreter.
const CHILD_CELL = [
  'import builtins, os',
  'fresh = "mine" not in globals()',
  'mine = context',
  'probe = builtins._probe = getattr(builtins, "_probe", 0) + 1',
  'with open("task.txt", "w") as f:',
  '    f.write(context)',
  'print("before", context)',
  'echo = llm_query("echo " + context)',
  'print("after", context)',
  'seen = sorted(n for n in globals() if n.startswith("sibling_"))',
  'globals()["sibling_" + context] = True',
  'answer["content"] = "|".join([mine, open("task.txt").read(), echo, str(seen), str(fresh), str(probe)])',
  'answer["ready"] = True',
].join('\n');

test('children share one interpreter, not their variables, output, files or leftovers from earlier children', async ({ harness, lm }) => {
  lm.setScript((r) => {
    if (!isRootCall(r)) return { content: `sub:${lastUser(r)}`, delayMs: 150 };
    if (isChildRoot(r)) return repl(CHILD_CELL);
    if (turnOf(r) === 0) return repl('first = rlm_query_batched([f"t{i}" for i in range(6)])');
    if (turnOf(r) === 1) return repl('second = rlm_query_batched([f"u{i}" for i in range(6)])');
    return repl('answer["content"] = "\\n".join(first + second)\nanswer["ready"] = True');
  });
  const out = await harness.evaluate(async (baseURL) => {
    const { RLM } = (window as any).rlmWeb;
    const rlm = new RLM({ backendOptions: { model: 'scripted-root', baseURL }, maxDepth: 2, maxConcurrentChildren: 6 });
    try {
      const result = await rlm.completion('root', { rootPrompt: 'Fan out twice.' });
      const children = result.trajectory.iterations.slice(0, 2).flatMap((it: any) => it.codeBlocks[0].subcalls);
      return {
        lines: String(result.response).split('\n'),
        stdouts: children.map((c: any) => c.trajectory.iterations[0].codeBlocks[0].stdout),
        errors: children.map((c: any) => c.error ?? null),
      };
    } finally {
      await rlm.close();
    }
  }, lm.openaiURL);
  expect(out.errors).toEqual(Array(12).fill(null));
  const rows = out.lines.map((line) => line.split('|'));
  rows.forEach(([mine, file, echo, seen, fresh], i) => {
    const task = i < 6 ? `t${i}` : `u${i - 6}`;
    // Its own task, its own file, its own reply; no sibling's variables; no leftovers.
    expect([mine, file, echo, seen, fresh]).toEqual([task, task, `sub:echo ${task}`, '[]', 'True']);
    // Print output stays with the cell that printed it, across the sub-call.
    expect(out.stdouts[i]).toBe(`before ${task}\nafter ${task}\n`);
  });
  // Twelve children counted on one interpreter's builtins: one interpreter for all of them.
  expect(rows.map((r) => Number(r[5])).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
});

for (const mode of ['isolated', 'plain'] as const) {
  test(`REPLs of one group: one spins past its cell timeout (${mode === 'isolated' ? 'interrupted alone' : 'no interrupt buffer: the shared worker restarts'})`, async ({ page }) => {
    await openHarness(page, mode === 'isolated' ? ISOLATED_ORIGIN : PLAIN_ORIGIN);
    const out = await page.evaluate(async () => {
      const { createPyodideEnvironment } = (window as any).rlmWeb;
      // What the pool passes for the children of one root: one group object.
      const group = {};
      const host = {
        handle: async (request: { prompts: string[] }) => {
          await new Promise((r) => setTimeout(r, 400));
          return { results: request.prompts.map((p) => `sub:${p}`) };
        },
      };
      const names = ['spin', 'a', 'b', 'c'];
      const repls = names.map(() => createPyodideEnvironment({ host, environmentOptions: {}, group }));
      try {
        await Promise.all(repls.map((r: any, i: number) => r.loadContext(0, names[i])));
        const first = await Promise.all(
          repls.map((r: any, i: number) =>
            r.execute(i === 0 ? 'kept = context\nwhile True:\n    pass' : 'kept = context\nreply = llm_query("echo " + context)\nprint("got", reply)', { timeoutMs: i === 0 ? 1500 : 30_000 }),
          ),
        );
        const second = [];
        for (const r of repls) second.push((await r.execute('import builtins\nbuiltins.n = getattr(builtins, "n", 0) + 1\nprint(globals().get("kept"), globals().get("reply"), context, builtins.n)', { timeoutMs: 10_000 })).stdout.trim());
        return { interruptible: repls[0].info.interruptible, first: first.map((c: any) => ({ interrupted: c.interrupted, stderr: c.stderr, stdout: c.stdout })), second };
      } finally {
        await Promise.all(repls.map((r: any) => r.close()));
      }
    });
    const [spin, ...siblings] = out.first;
    expect(spin!.interrupted).toBe(true);
    // The context is reloaded in every case; the four counted on one interpreter's builtins.
    if (mode === 'isolated') {
      expect(out.interruptible).toBe(true);
      // Only the spinning namespace got KeyboardInterrupt: it keeps its state, and its siblings'
      // cells finished untouched.
      expect(spin!.stderr).toContain('KeyboardInterrupt');
      for (const [i, cell] of siblings.entries()) expect(cell).toEqual({ interrupted: false, stderr: '', stdout: `got sub:echo ${'abc'[i]}\n` });
      expect(out.second).toEqual(['spin None spin 1', 'a sub:echo a a 2', 'b sub:echo b b 3', 'c sub:echo c c 4']);
    } else {
      expect(out.interruptible).toBe(false);
      // The spinning cell cannot be interrupted, so the worker is replaced: the cells of every
      // namespace in it report the restart (variables lost, context reloaded).
      expect(spin!.stderr).toContain('REPL was restarted');
      for (const cell of siblings) expect(cell.stderr).toContain('REPL was restarted');
      expect(out.second).toEqual(['None None spin 1', 'None None a 2', 'None None b 3', 'None None c 4']);
    }
  });
}

test('a hostile namespace that ignores SIGINT and spins cannot hold the shared interpreter: it is restarted, and every namespace works again', async ({ page }) => {
  await openHarness(page, ISOLATED_ORIGIN);
  const out = await page.evaluate(async () => {
    const { createPyodideEnvironment } = (window as any).rlmWeb;
    const group = {};
    const host = {
      handle: async (request: { prompts: string[] }) => {
        await new Promise((r) => setTimeout(r, 300));
        return { results: request.prompts.map((p) => `sub:${p}`) };
      },
    };
    const [hostile, victim] = [0, 1].map(() => createPyodideEnvironment({ host, environmentOptions: {}, group }));
    try {
      await hostile.loadContext(0, 'hostile');
      await victim.loadContext(0, 'victim');
      const [spun, waited] = await Promise.all([
        hostile.execute('import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass', { timeoutMs: 1500 }),
        victim.execute('kept = 1\nreply = llm_query("x")', { timeoutMs: 30_000 }),
      ]);
      // Both work again in a new interpreter, whose interrupts work again.
      const after = await Promise.all([hostile, victim].map(async (r: any) => (await r.execute('print(context, globals().get("kept"))', { timeoutMs: 10_000 })).stdout.trim()));
      const interruptedAgain = await victim.execute('while True:\n    pass', { timeoutMs: 1000 });
      return { interruptible: hostile.info.interruptible, spun: spun.stderr, waited: waited.stderr, after, again: { interrupted: interruptedAgain.interrupted, stderr: interruptedAgain.stderr } };
    } finally {
      await Promise.all([hostile.close(), victim.close()]);
    }
  });
  expect(out.interruptible).toBe(true);
  expect(out.spun).toContain('did not stop when interrupted');
  expect(out.spun).toContain('REPL was restarted');
  expect(out.waited).toContain('REPL was restarted');
  expect(out.after).toEqual(['hostile None', 'victim None']);
  expect(out.again.interrupted).toBe(true);
  expect(out.again.stderr).toContain('KeyboardInterrupt');
});

test('a cell waiting in a sub-call is stopped through its reply: KeyboardInterrupt, state kept, even without an interrupt buffer', async ({ harness, lm }) => {
  lm.setScript((r) => {
    if (!isRootCall(r)) return { content: 'too late', delayMs: 20_000 };
    if (turnOf(r) === 0) return repl('kept = 42\nr = llm_query("wait")\nprint("not reached")');
    if (turnOf(r) === 1) return repl('print(globals().get("kept"))');
    return repl('answer["content"] = "done"\nanswer["ready"] = True');
  });
  const out = await harness.evaluate(async (baseURL) => {
    const { RLM } = (window as any).rlmWeb;
    const rlm = new RLM({ backendOptions: { model: 'scripted-root', baseURL }, cellTimeoutMs: 1500 });
    try {
      const result = await rlm.completion('x', { rootPrompt: 'q' });
      const [first, second] = result.trajectory.iterations;
      return { interruptible: rlm.replInfo?.interruptible, first: first.codeBlocks[0], after: second.codeBlocks[0].stdout, response: result.response };
    } finally {
      await rlm.close();
    }
  }, lm.openaiURL);
  expect(out.interruptible).toBe(false);
  expect(out.first.interrupted).toBe(true);
  expect(out.first.stderr).toContain('KeyboardInterrupt');
  expect(out.first.stdout).not.toContain('not reached');
  expect(out.after.trim()).toBe('42');
  expect(out.response).toBe('done');
});

test("four children run in one worker beside the root's ('separate': one each); they end with the run, the next run's boot as it ends, and rlm.close() ends them all", async ({ harness, lm }) => {
  // isolation 'none': the workers are the page's own, which Playwright lists.
  let during = 0;
  lm.setScript((r) => {
    if (!isRootCall(r)) return 'sub';
    if (isChildRoot(r)) return repl('answer["content"] = context.upper()\nanswer["ready"] = True');
    if (turnOf(r) === 0) return repl('res = rlm_query_batched(["a", "b", "c", "d"])');
    // The children have answered; their REPLs are still the run's.
    during = harness.workers().length;
    return repl('answer["content"] = "".join(res)\nanswer["ready"] = True');
  });
  const counts: Record<string, { during: number; between: number }> = {};
  for (const childInterpreters of ['shared', 'separate'] as const) {
    const response = await harness.evaluate(
      async ({ baseURL, childInterpreters }) => {
        const { RLM } = (window as any).rlmWeb;
        const rlm = new RLM({ backendOptions: { model: 'scripted-root', baseURL }, maxDepth: 2, isolation: 'none', environmentOptions: { childInterpreters } });
        (window as any).childrenRLM = rlm;
        const { response } = await rlm.completion('root', { rootPrompt: 'Fan out.' });
        // The next run's REPLs (the root's spare, a child interpreter) boot as this one ends.
        await rlm.warmUp();
        return response;
      },
      { baseURL: lm.openaiURL, childInterpreters },
    );
    expect(response).toBe('ABCD');
    // The run's own workers end with it: the root's spare and one child interpreter are left.
    await expect.poll(() => harness.workers().length).toBe(2);
    counts[childInterpreters] = { during, between: harness.workers().length };
    await harness.evaluate(() => (window as any).childrenRLM.close());
    await expect.poll(() => harness.workers().length).toBe(0);
  }
  // During the run: the root's worker, plus one for all children — or one per child, kept warm.
  expect(counts).toEqual({ shared: { during: 2, between: 2 }, separate: { during: 5, between: 2 } });
});
