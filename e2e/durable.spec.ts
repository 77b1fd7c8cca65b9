/**
 * Runs that survive the tab, in real Chromium with real Pyodide and IndexedDB: a page closed
 * mid-cell and mid-batch leaves the reply and the finished sub-calls stored; a run killed after
 * iteration 2 of 4 resumes after a reload with LM calls for turns 3–4 only and the same answer;
 * a version-1 database opens with its runs; costs come from list prices, lazily loaded.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { calcPrice } from '@pydantic/genai-prices';
import type { BrowserContext, Page } from '@playwright/test';
import { expect, openHarness, PLAIN_ORIGIN, test } from './support/fixtures';
import { isRootCall, repl, turnOf, type LMServer, type ScriptedRequest } from './support/lm-server';

/** A new tab of the same browser context (same IndexedDB), on the harness. */
async function openPage(context: BrowserContext): Promise<Page> {
  return openHarness(await context.newPage(), PLAIN_ORIGIN);
}

/** Starts a run with a store-backed logger; the promise is on window.run. */
async function startRun(page: Page, options: { dbName: string; baseURL: string; context: string; maxConcurrentSubcalls?: number }): Promise<void> {
  await page.evaluate((o) => {
    const { RLM, RLMLogger, IndexedDBTrajectoryStore } = (window as any).rlmWeb;
    const rlm = new RLM({
      backend: 'openai',
      backendOptions: { model: 'scripted-root', apiKey: 'k', baseURL: o.baseURL },
      otherBackends: [{ backend: 'openai', backendOptions: { model: 'scripted-sub', apiKey: 'k', baseURL: o.baseURL } }],
      maxConcurrentSubcalls: o.maxConcurrentSubcalls ?? 16,
      logger: new RLMLogger({ store: new IndexedDBTrajectoryStore({ name: o.dbName }) }),
    });
    (window as any).run = rlm.completion(o.context, { rootPrompt: 'Combine the pieces.' }).finally(() => rlm.close());
    (window as any).run.catch(() => undefined);
  }, options);
}

function readRuns(page: Page, dbName: string): Promise<{ summaries: any[]; run: any }> {
  return page.evaluate(async (name) => {
    const { IndexedDBTrajectoryStore } = (window as any).rlmWeb;
    const store = new IndexedDBTrajectoryStore({ name });
    try {
      const summaries = await store.listRuns();
      return { summaries, run: summaries[0] ? ((await store.getRun(summaries[0].id)) ?? null) : null };
    } finally {
      await store.close();
    }
  }, dbName);
}

const subRequests = (lm: LMServer) => lm.requests.filter((r) => !isRootCall(r));
const rootRequests = (lm: LMServer) => lm.requests.filter(isRootCall);

test('a page closed mid-cell keeps the reply whose code was running', async ({ harness, lm, context }) => {
  const dbName = 'rlm-web-e2e-mid-cell';
  lm.setScript((request) => {
    if (!isRootCall(request)) return { content: 'too late', delayMs: 120_000 };
    return repl('print("before the call")\nslow = llm_query("a slow question")', 'I will ask the sub-model.');
  });
  const doomed = await openPage(context);
  await startRun(doomed, { dbName, baseURL: lm.openaiURL, context: 'some context' });
  // The cell is running: its sub-call reached the server, which holds the answer back.
  await expect.poll(() => subRequests(lm).length, { timeout: 60_000 }).toBe(1);
  await doomed.close();
  await expect.poll(async () => (await readRuns(harness, dbName)).summaries[0]?.status).toBe('interrupted');
  const { summaries, run } = await readRuns(harness, dbName);
  expect(summaries[0].iterationCount).toBe(0);
  expect(run.iterations).toHaveLength(1);
  const [partial] = run.iterations;
  expect(partial).toMatchObject({ iteration: 1, partial: true, finalAnswer: null });
  expect(partial.response).toContain('I will ask the sub-model.');
  expect(partial.response).toContain('slow = llm_query("a slow question")');
});

test('a page closed mid-batch keeps the sub-calls that had finished', async ({ harness, lm, context }) => {
  const dbName = 'rlm-web-e2e-mid-batch';
  lm.setScript((request) => {
    if (isRootCall(request)) return repl('rs = llm_query_batched(["fast 0", "slow 1", "fast 2", "slow 3"])\nprint(rs)');
    const prompt = request.messages.at(-1)!.content;
    return prompt.startsWith('fast') ? `answer to ${prompt}` : { content: 'never seen', delayMs: 120_000 };
  });
  const doomed = await openPage(context);
  await startRun(doomed, { dbName, baseURL: lm.openaiURL, context: 'some context' });
  await expect.poll(() => subRequests(lm).length, { timeout: 60_000 }).toBe(4);
  // Another tab of the site sees each fast answer stored while the batch still runs.
  await expect.poll(async () => (await readRuns(harness, dbName)).run?.iterations[0]?.codeBlocks[0]?.subcalls.length ?? 0).toBe(2);
  await doomed.close();
  await expect.poll(async () => (await readRuns(harness, dbName)).summaries[0]?.status).toBe('interrupted');
  const { run } = await readRuns(harness, dbName);
  const cell = run.iterations[0].codeBlocks[0];
  expect(run.iterations[0].partial).toBe(true);
  expect(cell.code).toContain('llm_query_batched');
  expect(cell.interrupted).toBe(true);
  expect(cell.subcalls.map((s: any) => [s.index, s.prompt, s.response])).toEqual([
    [0, 'fast 0', 'answer to fast 0'],
    [2, 'fast 2', 'answer to fast 2'],
  ]);
  expect(cell.subcalls.every((s: any) => typeof s.callId === 'string')).toBe(true);
});

/** Four turns that build the answer from the context, a sub-call, a batch and a variable. */
function fourTurns(request: ScriptedRequest): string {
  if (!isRootCall(request)) {
    const prompt = request.messages.at(-1)!.content;
    return `<${prompt.toUpperCase()}>`;
  }
  switch (turnOf(request)) {
    case 0:
      return repl('words = context.split()\nfirst = llm_query("word " + words[0])\nprint(len(words), first)');
    case 1:
      return repl('more = llm_query_batched(["word " + w for w in words[1:3]])\nprint(more)');
    case 2:
      return repl('last = llm_query("word " + words[-1])\nprint(last)');
    default:
      return repl('answer["content"] = " ".join([first] + more + [last])\nanswer["ready"] = True');
  }
}

test('a run killed after iteration 2 of 4 resumes after a reload with LM calls for turns 3 and 4 only', async ({ lm, context }) => {
  const context_ = 'alpha beta gamma delta';
  const page = await openPage(context);

  // The same run, uninterrupted, for the answer and the number of LM calls it takes.
  lm.setScript(fourTurns);
  await startRun(page, { dbName: 'rlm-web-e2e-resume-reference', baseURL: lm.openaiURL, context: context_ });
  const reference = await page.evaluate(() => (window as any).run.then((r: any) => ({ response: r.response, calls: r.usage.calls })));
  const referenceRequests = lm.requests.length;
  expect(reference.response).toBe('<WORD ALPHA> <WORD BETA> <WORD GAMMA> <WORD DELTA>');
  expect(referenceRequests).toBe(8);

  // The run again, and the tab closes while turn 3 waits for the model.
  const dbName = 'rlm-web-e2e-resume';
  lm.requests.length = 0;
  lm.setScript((request) => (isRootCall(request) && turnOf(request) >= 2 ? { content: 'never seen', delayMs: 120_000 } : fourTurns(request)));
  await startRun(page, { dbName, baseURL: lm.openaiURL, context: context_ });
  const watcher = await openPage(context);
  await expect.poll(async () => (await readRuns(watcher, dbName)).summaries[0]?.iterationCount ?? 0, { timeout: 60_000 }).toBe(2);
  await expect.poll(() => rootRequests(lm).length).toBe(3);
  await page.close();

  const reopened = await openPage(context);
  lm.requests.length = 0;
  lm.setScript(fourTurns);
  const resumed = await reopened.evaluate(
    async ({ dbName, baseURL }) => {
      const { RLM, RLMLogger, IndexedDBTrajectoryStore } = (window as any).rlmWeb;
      const store = new IndexedDBTrajectoryStore({ name: dbName });
      const [summary] = await store.listRuns();
      const events: any[] = [];
      const rlm = new RLM({
        backend: 'openai',
        backendOptions: { model: 'scripted-root', apiKey: 'k', baseURL },
        otherBackends: [{ backend: 'openai', backendOptions: { model: 'scripted-sub', apiKey: 'k', baseURL } }],
        logger: new RLMLogger({ store }),
        onEvent: (e: any) => events.push({ type: e.type, at: performance.now(), ...(e.type === 'resumed' ? { cells: e.cells, replayMs: e.replayMs } : {}) }),
      });
      const started = performance.now();
      const result = await rlm.resume(summary.id);
      await rlm.close();
      const resumedEvent = events.find((e) => e.type === 'resumed');
      const firstLM = events.find((e) => e.type === 'lm_response');
      const stored = await store.getRun(summary.id);
      return {
        status: summary.status,
        response: result.response,
        sameId: result.trajectory.id === summary.id,
        iterations: result.trajectory.iterations.map((it: any) => it.iteration),
        storedStatus: stored.status,
        storedIterations: stored.iterations.length,
        calls: result.usage.calls,
        cells: resumedEvent.cells,
        toReplayed: resumedEvent.at - started,
        replayMs: resumedEvent.replayMs,
        toFirstLM: firstLM.at - started,
        total: performance.now() - started,
      };
    },
    { dbName, baseURL: lm.openaiURL },
  );
  expect(resumed.status).toBe('interrupted');
  expect(resumed.response).toBe(reference.response);
  expect(resumed.sameId).toBe(true);
  expect(resumed.iterations).toEqual([1, 2, 3, 4]);
  expect(resumed.storedStatus).toBe('completed');
  expect(resumed.storedIterations).toBe(4);
  expect(resumed.cells).toBe(2);
  // Turns 3 and 4 from the root model, turn 3's one sub-call: nothing for turns 1 and 2.
  expect(rootRequests(lm).map(turnOf)).toEqual([2, 3]);
  expect(subRequests(lm).map((r) => r.messages.at(-1)!.content)).toEqual(['word delta']);
  // The run's usage counts both sessions: the same calls as the uninterrupted run.
  expect(resumed.calls).toBe(reference.calls);
  console.log(
    `resume: ${referenceRequests - lm.requests.length} of ${referenceRequests} LM calls saved; ` +
      `reload→REPL rebuilt ${Math.round(resumed.toReplayed)} ms (replay of ${resumed.cells} cells ${Math.round(resumed.replayMs)} ms, Pyodide boot included), ` +
      `→ first new model reply ${Math.round(resumed.toFirstLM)} ms, → answer ${Math.round(resumed.total)} ms`,
  );
});

test('a replayed cell that prints something else stops the resume with ReplayMismatchError, no LM call made', async ({ harness, lm }) => {
  const dbName = 'rlm-web-e2e-mismatch';
  lm.setScript((request) => {
    if (turnOf(request) === 0) return repl('import time\nprint(time.time())');
    return { content: 'never seen', status: 500, error: 'stop here' };
  });
  await startRun(harness, { dbName, baseURL: lm.openaiURL, context: 'ctx' });
  await harness.evaluate(() => (window as any).run.catch(() => undefined));
  lm.requests.length = 0;
  const outcome = await harness.evaluate(
    async ({ dbName, baseURL }) => {
      const { RLM, RLMLogger, IndexedDBTrajectoryStore } = (window as any).rlmWeb;
      const store = new IndexedDBTrajectoryStore({ name: dbName });
      const [summary] = await store.listRuns();
      const rlm = new RLM({ backend: 'openai', backendOptions: { model: 'scripted-root', apiKey: 'k', baseURL }, logger: new RLMLogger({ store }) });
      try {
        await rlm.resume(summary.id);
        return null;
      } catch (e: any) {
        const after = await store.getRun(summary.id);
        // The stored run is left as it was.
        const unchanged = after.status === summary.status && after.error === summary.error && after.iterations.length === summary.iterationCount;
        return { name: e.name, reason: e.reason, field: e.field, iteration: e.iteration, unchanged };
      } finally {
        await rlm.close();
      }
    },
    { dbName, baseURL: lm.openaiURL },
  );
  expect(outcome).toEqual({ name: 'ReplayMismatchError', reason: 'replay_mismatch', field: 'stdout', iteration: 1, unchanged: true });
  expect(lm.requests).toHaveLength(0);
});

test('a database written by schema version 1 opens with its runs, and takes steps afterwards', async ({ harness }) => {
  const outcome = await harness.evaluate(async () => {
    const name = 'rlm-web-e2e-v1';
    // The database as rlm-web's first schema wrote it.
    await new Promise<void>((ok, fail) => {
      const request = indexedDB.open(name, 1);
      request.onupgradeneeded = () => {
        const db = request.result;
        const runs = db.createObjectStore('runs', { keyPath: 'id' });
        runs.createIndex('startedAt', 'startedAt');
        runs.createIndex('status', 'status');
        db.createObjectStore('iterations', { keyPath: ['runId', 'iteration'] });
      };
      request.onsuccess = () => {
        const db = request.result;
        const tx = db.transaction(['runs', 'iterations'], 'readwrite');
        const usage = { models: {}, calls: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, costUSD: 0 };
        tx.objectStore('runs').put({ id: 'old', startedAt: '2026-01-01T00:00:00.000Z', config: { rootModel: 'm', depth: 0 }, context: { type: 'str', length: 3 }, status: 'completed', usage, model: 'm', iterationCount: 1, size: 10, updatedAt: '2026-01-01T00:00:00.000Z' });
        tx.objectStore('iterations').put({ runId: 'old', iteration: 1, timestamp: '2026-01-01T00:00:00.000Z', prompt: [], response: 'FINAL(yes)', codeBlocks: [], finalAnswer: 'yes', iterationTimeMs: 1, usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 } });
        tx.oncomplete = () => {
          db.close();
          ok();
        };
        tx.onerror = () => fail(tx.error);
      };
    });
    const { IndexedDBTrajectoryStore } = (window as any).rlmWeb;
    const store = new IndexedDBTrajectoryStore({ name });
    const runs = await store.listRuns();
    const old = await store.getRun('old');
    const summary = { ...runs[0], id: 'new', status: 'running', startedAt: new Date().toISOString() };
    await store.writeSteps(summary, [{ kind: 'reply', iteration: 1, seq: 0, timestamp: summary.startedAt, response: 'thinking', usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 } }]);
    const fresh = await store.getRun('new');
    await store.close();
    const version = await new Promise<number>((ok) => {
      const request = indexedDB.open(name);
      request.onsuccess = () => {
        ok(request.result.version);
        request.result.close();
      };
    });
    return { ids: runs.map((r: any) => r.id), answer: old.iterations[0].finalAnswer, fresh: fresh.iterations, version };
  });
  expect(outcome.ids).toEqual(['old']);
  expect(outcome.answer).toBe('yes');
  expect(outcome.fresh).toEqual([expect.objectContaining({ iteration: 1, partial: true, response: 'thinking' })]);
  expect(outcome.version).toBe(2);
});

test('costs: list prices for OpenAI and Anthropic models (cached input at its rate), maxBudget, unknown models, a lazy price chunk', async ({ harness, lm }) => {
  // The chunk of the built library that holds the price data.
  const priceChunk = readdirSync('dist').find((f) => f.endsWith('.js') && readFileSync(`dist/${f}`, 'utf8').includes('REMOTE_DATA_JSON_URL'));
  expect(priceChunk).toBeDefined();
  const loaded = () => harness.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name.split('/').pop()));
  lm.setScript((request) => {
    if (request.api === 'anthropic') return { content: 'FINAL(hi)', usage: { input: 3000, output: 200, cached: 1000 } };
    if (isRootCall(request)) return turnOf(request) === 0 ? repl('print(llm_query("q"))') : 'FINAL(done)';
    return { content: 'sub', usage: { input: 2000, output: 100, cached: 500 } };
  });
  const before = await loaded();
  const outcome = await harness.evaluate(async ({ openaiURL, anthropicURL }) => {
    const { RLM, BudgetExceededError, unpricedModels } = (window as any).rlmWeb;
    const openai = new RLM({
      backend: 'openai',
      backendOptions: { model: 'gpt-5-nano', apiKey: 'k', baseURL: openaiURL },
      otherBackends: [{ backend: 'openai', backendOptions: { model: 'gpt-5-mini', apiKey: 'k', baseURL: openaiURL } }],
    });
    const a = await openai.completion('ctx ctx ctx');
    const anthropic = new RLM({ backend: 'anthropic', backendOptions: { model: 'claude-haiku-4-5', apiKey: 'k', baseURL: anthropicURL }, maxDepth: 0 });
    const b = await anthropic.completion('ctx');
    const local = new RLM({ backend: 'openai', backendOptions: { model: 'my-own-model', apiKey: 'k', baseURL: openaiURL }, maxDepth: 0 });
    const c = await local.completion('ctx');
    const budget = new RLM({ backend: 'openai', backendOptions: { model: 'gpt-5-nano', apiKey: 'k', baseURL: openaiURL }, otherBackends: [{ backend: 'openai', backendOptions: { model: 'gpt-5-mini', apiKey: 'k', baseURL: openaiURL } }], maxBudget: 0.0001 });
    const stopped = await budget.completion('ctx ctx ctx').then(
      () => null,
      (e: any) => ({ budget: e instanceof BudgetExceededError, spent: e.usage.costUSD }),
    );
    await Promise.all([openai.close(), anthropic.close(), local.close(), budget.close()]);
    return { openai: a.usage, anthropic: b.usage, local: { cost: c.usage.costUSD, unpriced: unpricedModels(c.usage) }, stopped };
  }, { openaiURL: lm.openaiURL, anthropicURL: lm.anthropicURL });

  // The same figures from the price database in this process.
  const sub = calcPrice({ input_tokens: 2000, cache_read_tokens: 500, output_tokens: 100 }, 'gpt-5-mini', { providerId: 'openai' })!.total_price;
  expect(outcome.openai.models['gpt-5-mini'].costUSD).toBeCloseTo(sub, 12);
  expect(outcome.openai.models['gpt-5-nano'].costUSD).toBeGreaterThan(0);
  expect(outcome.openai.unpricedCalls).toBe(0);
  const haiku = calcPrice({ input_tokens: 4000, cache_read_tokens: 1000, output_tokens: 200 }, 'claude-haiku-4-5', { providerId: 'anthropic' })!.total_price;
  expect(outcome.anthropic.costUSD).toBeCloseTo(haiku, 12);
  expect(outcome.local).toEqual({ cost: 0, unpriced: ['my-own-model'] });
  expect(outcome.stopped).toMatchObject({ budget: true });
  expect(outcome.stopped!.spent).toBeGreaterThan(0.0001);
  // The price data is its own chunk, fetched once a call has been made, not with the library.
  expect(before).toContain('index.js');
  expect(before).not.toContain(priceChunk);
  expect(await loaded()).toContain(priceChunk);
});
