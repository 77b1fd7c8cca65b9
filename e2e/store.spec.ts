/**
 * Trajectories in real IndexedDB, in Chromium: runs written as they happen and listed after
 * a reload, a tab closed mid-run, delete, import of a reference-format log, quota and
 * blocked-upgrade failures turned into StorageErrors while the run goes on.
 */
import type { BrowserContext, Page } from '@playwright/test';
import { expect, openHarness, PLAIN_ORIGIN, test } from './support/fixtures';
import { isRootCall, repl, turnOf, type ScriptedRequest } from './support/lm-server';

/** A new tab of the same browser context (same IndexedDB), on the harness. */
async function openPage(context: BrowserContext): Promise<Page> {
  return openHarness(await context.newPage(), PLAIN_ORIGIN);
}

async function reload(page: Page): Promise<void> {
  await page.reload();
  await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
}

/** Root model: a cell, a cell with a sub-call, then the answer. Sub-model: echoes a word. */
function threeTurns(request: ScriptedRequest): string {
  if (!isRootCall(request)) return 'sub-answer';
  switch (turnOf(request)) {
    case 0:
      return repl('x = len(context)\nprint("length", x)', 'Look first.');
    case 1:
      return repl('r = llm_query("say something")\nprint(r)');
    default:
      return repl('answer["content"] = f"done {x}"\nanswer["ready"] = True');
  }
}

interface RunOptions {
  dbName: string;
  context: string;
  baseURL: string;
}

/** Starts a run with an RLMLogger on an IndexedDBTrajectoryStore; the promise is on window.run. */
async function startRun(page: Page, options: RunOptions): Promise<void> {
  await page.evaluate(({ dbName, context, baseURL }) => {
    const { RLM, RLMLogger, IndexedDBTrajectoryStore } = (window as any).rlmWeb;
    const errors: unknown[] = [];
    const logger = new RLMLogger({ store: new IndexedDBTrajectoryStore({ name: dbName }), onError: (e: unknown) => errors.push(e) });
    const rlm = new RLM({
      backend: 'openai',
      backendOptions: { model: 'scripted-root', apiKey: 'test-key', baseURL },
      otherBackends: [{ backend: 'openai', backendOptions: { model: 'scripted-sub', apiKey: 'test-key', baseURL } }],
      logger,
    });
    (window as any).logger = logger;
    (window as any).storageErrors = errors;
    (window as any).run = rlm.completion(context, { rootPrompt: 'How long is the context?' }).finally(() => rlm.close());
  }, options);
}

function listRuns(page: Page, dbName: string): Promise<any[]> {
  return page.evaluate(async (name) => {
    const { IndexedDBTrajectoryStore } = (window as any).rlmWeb;
    const store = new IndexedDBTrajectoryStore({ name });
    try {
      return await store.listRuns();
    } finally {
      await store.close();
    }
  }, dbName);
}

function getRun(page: Page, dbName: string, id: string): Promise<any> {
  return page.evaluate(
    async ({ name, id }) => {
      const { IndexedDBTrajectoryStore } = (window as any).rlmWeb;
      const store = new IndexedDBTrajectoryStore({ name });
      try {
        return (await store.getRun(id)) ?? null;
      } finally {
        await store.close();
      }
    },
    { name: dbName, id },
  );
}

/** A log as the reference Python implementation writes it (REFERENCE.md §5), one completion. */
const REFERENCE_LOG = [
  {
    type: 'metadata',
    timestamp: '2026-06-25T14:03:11.123456',
    root_model: 'gpt-5',
    max_depth: 1,
    max_iterations: 10,
    backend: 'openai',
    backend_kwargs: { model_name: 'gpt-5' },
    environment_type: 'local',
    environment_kwargs: {},
    other_backends: null,
  },
  {
    type: 'iteration',
    iteration: 1,
    timestamp: '2026-06-25T14:03:15.000001',
    prompt: [
      { role: 'system', content: 'You are tasked with answering a query with associated context.' },
      { role: 'user', content: 'The original query: "What is the secret number?"' },
    ],
    response: '```repl\nr = llm_query("find it")\n```',
    code_blocks: [
      {
        code: 'r = llm_query("find it")',
        result: {
          stdout: '',
          stderr: '',
          locals: { r: '7421' },
          execution_time: 0.9,
          rlm_calls: [
            {
              root_model: 'gpt-5-mini',
              prompt: 'find it',
              response: '7421',
              usage_summary: { model_usage_summaries: { 'gpt-5-mini': { total_calls: 1, total_input_tokens: 1200, total_output_tokens: 4 } } },
              execution_time: 0.8,
            },
          ],
          final_answer: null,
        },
      },
    ],
    final_answer: null,
    iteration_time: 1.5,
  },
  {
    type: 'iteration',
    iteration: 2,
    timestamp: '2026-06-25T14:03:17',
    prompt: [{ role: 'user', content: 'Continue.' }],
    response: '```repl\nanswer["content"] = r\nanswer["ready"] = True\n```',
    code_blocks: [{ code: 'answer["content"] = r\nanswer["ready"] = True', result: { stdout: '', stderr: '', locals: { r: '7421' }, execution_time: 0.01, rlm_calls: [], final_answer: '7421' } }],
    final_answer: '7421',
    iteration_time: 0.5,
  },
]
  .map((line) => JSON.stringify(line))
  .join('\n');

async function importLog(page: Page, dbName: string, text: string): Promise<any> {
  return page.evaluate(
    async ({ name, text }) => {
      const { IndexedDBTrajectoryStore, importJSONL } = (window as any).rlmWeb;
      const store = new IndexedDBTrajectoryStore({ name });
      try {
        return await importJSONL(store, new File([text], 'rlm_2026-06-25_14-03-11_ab12cd34.jsonl'));
      } finally {
        await store.close();
      }
    },
    { name: dbName, text },
  );
}

test('a run with a store is listed with its iterations after a reload', async ({ harness, lm }) => {
  lm.setScript(threeTurns);
  const dbName = 'rlm-web-e2e-reload';
  await startRun(harness, { dbName, context: 'abcdefghij'.repeat(1000), baseURL: lm.openaiURL });
  const result = await harness.evaluate(async () => {
    const r = await (window as any).run;
    await (window as any).logger.flush();
    return { id: r.trajectory.id, response: r.response, iterations: r.trajectory.iterations.length, errors: (window as any).storageErrors.length };
  });
  expect(result).toEqual({ id: expect.any(String), response: 'done 10000', iterations: 3, errors: 0 });

  await reload(harness);
  const runs = await listRuns(harness, dbName);
  expect(runs).toHaveLength(1);
  expect(runs[0]).toMatchObject({
    id: result.id,
    status: 'completed',
    endReason: 'answer',
    model: 'scripted-root',
    question: 'How long is the context?',
    response: 'done 10000',
    iterationCount: 3,
    context: { type: 'str', length: 10000 },
  });
  expect(runs[0].size).toBeGreaterThan(1000);
  expect(runs[0].usage.calls).toBe(4);
  expect(Object.keys(runs[0].usage.models).sort()).toEqual(['scripted-root', 'scripted-sub']);
  // The API key never reaches the store.
  expect(JSON.stringify(runs[0].config)).not.toContain('test-key');
  expect(runs[0]).not.toHaveProperty('_owner');

  const run = await getRun(harness, dbName, result.id);
  expect(run.iterations.map((it: any) => it.iteration)).toEqual([1, 2, 3]);
  expect(run.iterations[0].codeBlocks[0].stdout).toBe('length 10000\n');
  expect(run.iterations[0].prompt[0].role).toBe('system');
  expect(run.iterations[1].codeBlocks[0].subcalls).toEqual([expect.objectContaining({ kind: 'llm', model: 'scripted-sub', response: 'sub-answer' })]);
  expect(run.iterations[2].finalAnswer).toBe('done 10000');

  const exported = await harness.evaluate(
    async ({ name, id }) => {
      const { IndexedDBTrajectoryStore, toJSONL } = (window as any).rlmWeb;
      const store = new IndexedDBTrajectoryStore({ name });
      const text: string = toJSONL(await store.getRun(id));
      return { lines: text.trimEnd().split('\n').map((l) => JSON.parse(l)), estimate: await store.estimate() };
    },
    { name: dbName, id: result.id },
  );
  expect(exported.lines.map((l: any) => l.type)).toEqual(['metadata', 'iteration', 'iteration', 'iteration']);
  expect(exported.lines[0]).toMatchObject({ root_model: 'scripted-root', backend: 'openai', environment_type: 'pyodide', max_iterations: 30 });
  expect(exported.lines[2].code_blocks[0].result.rlm_calls[0]).toMatchObject({ root_model: 'scripted-sub', response: 'sub-answer' });
  expect(exported.estimate.usage).toBeGreaterThan(0);
  expect(exported.estimate.quota).toBeGreaterThan(exported.estimate.usage);
});

test('a tab closed mid-run keeps its finished iterations and is marked interrupted on the next load', async ({ harness, lm, context }) => {
  const dbName = 'rlm-web-e2e-closed';
  lm.setScript((request) => {
    if (!isRootCall(request)) return 'sub';
    const turn = turnOf(request);
    // The third root call hangs until the tab is gone.
    if (turn >= 2) return { content: repl('answer["content"] = "late"\nanswer["ready"] = True'), delayMs: 120_000 };
    return repl(`print("turn ${turn}")`);
  });
  const doomed = await openPage(context);
  await startRun(doomed, { dbName, context: 'some context', baseURL: lm.openaiURL });

  // Another tab of the same site watches: two iterations stored, the run live, not interrupted.
  await expect.poll(async () => (await listRuns(harness, dbName))[0]?.iterationCount ?? 0).toBe(2);
  await expect.poll(() => lm.requests.filter(isRootCall).length).toBe(3);
  expect((await listRuns(harness, dbName))[0].status).toBe('running');

  await doomed.close();
  await reload(harness);
  // The first store opened after the tab is gone marks the run.
  await expect.poll(async () => (await listRuns(harness, dbName))[0]?.status).toBe('interrupted');
  const [summary] = await listRuns(harness, dbName);
  expect(summary).toMatchObject({ status: 'interrupted', iterationCount: 2, question: 'How long is the context?' });
  expect(summary.error).toMatch(/closed or crashed/);
  const run = await getRun(harness, dbName, summary.id);
  expect(run.iterations.map((it: any) => it.codeBlocks[0].stdout)).toEqual(['turn 0\n', 'turn 1\n']);
});

test('a run that is live in this page is never marked interrupted by another store instance', async ({ harness, lm }) => {
  const dbName = 'rlm-web-e2e-live';
  let release: () => void = () => undefined;
  const gate = new Promise<void>((ok) => {
    release = ok;
  });
  lm.setScript(async (request) => {
    if (turnOf(request) === 0) return repl('print("first")');
    await gate;
    return repl('answer["content"] = "ok"\nanswer["ready"] = True');
  });
  await startRun(harness, { dbName, context: 'ctx', baseURL: lm.openaiURL });
  await expect.poll(async () => (await listRuns(harness, dbName))[0]?.iterationCount ?? 0).toBe(1);
  const marked = await harness.evaluate(async (name) => {
    const store = new (window as any).rlmWeb.IndexedDBTrajectoryStore({ name });
    return store.recoverInterrupted();
  }, dbName);
  expect(marked).toEqual([]);
  expect((await listRuns(harness, dbName))[0].status).toBe('running');
  release();
  const response = await harness.evaluate(async () => (await (window as any).run).response);
  expect(response).toBe('ok');
  await harness.evaluate(() => (window as any).logger.flush());
  expect((await listRuns(harness, dbName))[0]).toMatchObject({ status: 'completed', iterationCount: 2 });
});

test('delete one run, then all', async ({ harness }) => {
  const dbName = 'rlm-web-e2e-delete';
  const first = await importLog(harness, dbName, REFERENCE_LOG);
  const second = await importLog(harness, dbName, REFERENCE_LOG);
  expect(first.runIds).toHaveLength(1);
  expect(second.runIds[0]).not.toBe(first.runIds[0]);
  expect((await listRuns(harness, dbName)).map((r) => r.id).sort()).toEqual([first.runIds[0], second.runIds[0]].sort());

  const after = await harness.evaluate(
    async ({ name, id }) => {
      const { IndexedDBTrajectoryStore } = (window as any).rlmWeb;
      const store = new IndexedDBTrajectoryStore({ name });
      await store.deleteRun(id);
      // Count what is left of its iterations, straight from IndexedDB.
      const db: IDBDatabase = await new Promise((ok, fail) => {
        const request = indexedDB.open(name);
        request.onsuccess = () => ok(request.result);
        request.onerror = () => fail(request.error);
      });
      const count = (range: IDBKeyRange) =>
        new Promise<number>((ok) => {
          const request = db.transaction('iterations').objectStore('iterations').count(range);
          request.onsuccess = () => ok(request.result);
        });
      const left = await count(IDBKeyRange.bound([id, 0], [id, Infinity]));
      const total = await count(IDBKeyRange.lowerBound(['']));
      db.close();
      return { left, total, run: (await store.getRun(id)) ?? null, runs: (await store.listRuns()).map((r: any) => r.id) };
    },
    { name: dbName, id: first.runIds[0] },
  );
  expect(after).toEqual({ left: 0, total: 2, run: null, runs: [second.runIds[0]] });

  await harness.evaluate(async (name) => {
    const store = new (window as any).rlmWeb.IndexedDBTrajectoryStore({ name });
    await store.clear();
  }, dbName);
  expect(await listRuns(harness, dbName)).toEqual([]);
});

test('import of a reference-format log from a File, malformed line reported', async ({ harness }) => {
  const dbName = 'rlm-web-e2e-import';
  const lines = REFERENCE_LOG.split('\n');
  const text = [lines[0], '{"type": "iteration", "iteration": ', lines[1], lines[2]].join('\n');
  const result = await importLog(harness, dbName, text);
  expect(result.errors).toEqual([{ line: 2, message: expect.stringContaining('not JSON') }]);
  expect(result.iterations).toBe(2);
  expect(result.runIds).toHaveLength(1);

  await reload(harness);
  const runs = await listRuns(harness, dbName);
  expect(runs).toHaveLength(1);
  expect(runs[0]).toMatchObject({
    status: 'imported',
    model: 'gpt-5',
    question: 'What is the secret number?',
    response: '7421',
    iterationCount: 2,
    startedAt: '2026-06-25T14:03:11.123456',
  });
  expect(runs[0].usage.models['gpt-5-mini']).toMatchObject({ calls: 1, inputTokens: 1200, outputTokens: 4 });
  const run = await getRun(harness, dbName, result.runIds[0]);
  expect(run.iterations[0].codeBlocks[0]).toMatchObject({ locals: ['r'], executionTimeMs: 900 });
  expect(run.iterations[0].codeBlocks[0].subcalls[0]).toMatchObject({ kind: 'llm', model: 'gpt-5-mini', response: '7421', executionTimeMs: 800 });
  expect(run.iterations[1].finalAnswer).toBe('7421');
});

test('an import with a damaged run and a bad iteration line leaves only imported runs, never a running one, across a reload', async ({ harness }) => {
  const dbName = 'rlm-web-e2e-import-damaged';
  const lines = REFERENCE_LOG.split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const badIteration = { ...lines[1], code_blocks: 'not a list' };
  // A second run whose metadata has a wrongly typed field: nothing of it may be written.
  const badRun = { ...lines[0], timestamp: true };
  const text = [lines[0], badIteration, lines[2], badRun, lines[1], lines[2]].map((l) => JSON.stringify(l)).join('\n');
  const result = await importLog(harness, dbName, text);
  expect(result.runIds).toHaveLength(1);
  expect(result.errors).toEqual([
    { line: 2, message: 'iteration line.code_blocks must be an array' },
    { line: 4, message: 'timestamp must be a string' },
    { line: 5, message: 'skipped: the metadata line of its run (line 4) could not be read' },
    { line: 6, message: 'skipped: the metadata line of its run (line 4) could not be read' },
  ]);

  // A page that opens the database marks stale 'running' runs interrupted: there must be none.
  await reload(harness);
  const runs = await listRuns(harness, dbName);
  expect(runs.map((r: any) => [r.id, r.status, r.incomplete, r.iterationCount])).toEqual([[result.runIds[0], 'imported', true, 1]]);
  const run = await getRun(harness, dbName, result.runIds[0]);
  expect(run.iterations.map((it: any) => it.finalAnswer)).toEqual(['7421']);
});

test('a quota failure becomes a StorageError; the run completes with its trajectory intact', async ({ harness, lm }) => {
  lm.setScript(threeTurns);
  const dbName = 'rlm-web-e2e-quota';
  // From the second iteration on, IndexedDB refuses iterations as a full disk does.
  await harness.evaluate(() => {
    const put = IDBObjectStore.prototype.put;
    let iterations = 0;
    IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: [unknown, IDBValidKey?]) {
      if (this.name === 'iterations' && ++iterations >= 2) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      return put.apply(this, args);
    };
  });
  await startRun(harness, { dbName, context: 'abcdefghij'.repeat(1000), baseURL: lm.openaiURL });
  const outcome = await harness.evaluate(async () => {
    const { StorageError } = (window as any).rlmWeb;
    const events: string[] = [];
    (window as any).logger.addEventListener('error', (e: any) => events.push(e.error.reason));
    const r = await (window as any).run;
    await (window as any).logger.flush();
    const errors = (window as any).storageErrors as any[];
    return {
      response: r.response,
      status: r.trajectory.status,
      iterations: r.trajectory.iterations.map((it: any) => it.codeBlocks.length),
      inMemory: (window as any).logger.lastRun === r.trajectory,
      errors: errors.map((e) => ({ name: e.name, reason: e.reason, typed: e instanceof StorageError, cause: e.cause?.name })),
      events,
      id: r.trajectory.id,
    };
  });
  expect(outcome.response).toBe('done 10000');
  expect(outcome.status).toBe('completed');
  expect(outcome.iterations).toEqual([1, 1, 1]);
  expect(outcome.inMemory).toBe(true);
  expect(outcome.errors.length).toBeGreaterThanOrEqual(1);
  expect(outcome.errors[0]).toEqual({ name: 'StorageError', reason: 'quota', typed: true, cause: 'QuotaExceededError' });
  expect(outcome.events[0]).toBe('quota');

  const [summary] = await listRuns(harness, dbName);
  expect(summary).toMatchObject({ id: outcome.id, status: 'completed', incomplete: true, iterationCount: 1 });
  const run = await getRun(harness, dbName, outcome.id);
  // Iteration 2 was refused, but its durable steps (a smaller store) made it: it reads back partial.
  expect(run.iterations.map((it: any) => [it.iteration, it.partial ?? false])).toEqual([
    [1, false],
    [2, true],
  ]);
});

test('a blocked upgrade becomes a StorageError with reason "blocked"', async ({ harness }) => {
  const outcome = await harness.evaluate(async () => {
    const { IndexedDBTrajectoryStore, RLMLogger } = (window as any).rlmWeb;
    const name = 'rlm-web-e2e-blocked';
    await new IndexedDBTrajectoryStore({ name }).listRuns();
    // Another "tab" holds the database open at today's version (2) and ignores requests to close.
    const held: IDBDatabase = await new Promise((ok) => {
      const request = indexedDB.open(name, 2);
      request.onsuccess = () => ok(request.result);
    });
    const newer = new IndexedDBTrajectoryStore({ name, _version: 3 });
    const thrown = await newer.listRuns().then(
      () => null,
      (e: any) => ({ name: e.name, reason: e.reason, message: e.message }),
    );
    const errors: string[] = [];
    const logger = new RLMLogger({ store: newer, onError: (e: any) => errors.push(e.reason) });
    logger.runStarted({ id: 'r', startedAt: new Date().toISOString(), config: { rootModel: 'm' }, context: { type: 'str', length: 1 }, iterations: [], status: 'running', usage: {} });
    await logger.flush();
    // Once the other tab lets go, the upgrade completes and the store works.
    held.close();
    const afterwards = await new Promise<number>((ok, fail) => {
      const attempt = () =>
        newer.listRuns().then(
          (runs: unknown[]) => ok(runs.length),
          (e: any) => (e.reason === 'blocked' ? setTimeout(attempt, 50) : fail(e)),
        );
      attempt();
    });
    const version = await new Promise<number>((ok) => {
      const request = indexedDB.open(name);
      request.onsuccess = () => {
        ok(request.result.version);
        request.result.close();
      };
    });
    return { thrown, errors, afterwards, version };
  });
  expect(outcome.thrown).toMatchObject({ name: 'StorageError', reason: 'blocked' });
  expect(outcome.thrown!.message).toMatch(/another tab/);
  expect(outcome.errors).toEqual(['blocked']);
  expect(outcome.afterwards).toBe(0);
  expect(outcome.version).toBe(3);
});

