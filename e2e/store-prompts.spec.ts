/**
 * Prompts in real IndexedDB: each iteration stores only what its prompt adds to the one before
 * it, and getRun gives every prompt back whole — across a rewritten conversation (compaction),
 * from a fresh store (a later visit), and with an honest marker when the record a prompt
 * builds on is gone.
 */
import { expect, test } from './support/fixtures';

test('a long run stores each prompt as what it adds, and reads every prompt back whole', async ({ harness }) => {
  const out = await harness.evaluate(async () => {
    const { RLMLogger, IndexedDBTrajectoryStore, toJSONL } = (window as any).rlmWeb;
    const name = 'prompts-delta';
    const store = new IndexedDBTrajectoryStore({ name });
    await store.clear();
    const logger = new RLMLogger({ store });
    const usage = { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 };
    const trajectory: any = {
      id: 'run-prompts',
      startedAt: new Date().toISOString(),
      config: { rootModel: 'm', backend: 'test', backendOptions: {}, otherBackends: [], environment: 'pyodide', environmentOptions: {}, maxDepth: 1, maxIterations: 40, depth: 0 },
      rootPrompt: 'q',
      context: { type: 'str', length: 10 },
      iterations: [],
      status: 'running',
      usage: { calls: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, costUSD: 0, models: {} },
    };
    logger.runStarted(trajectory);
    // The loop's conversation: it grows by a reply and its feedback each turn; at turn 20
    // compaction replaces it with the system prompt and a summary.
    let messages: { role: string; content: string }[] = [
      { role: 'system', content: 'system prompt '.repeat(500) },
      { role: 'user', content: 'metadata about the context' },
    ];
    for (let i = 1; i <= 40; i++) {
      if (i === 20) messages = [messages[0]!, { role: 'user', content: 'summary of the first 19 turns' }];
      const record = {
        iteration: i,
        timestamp: new Date().toISOString(),
        prompt: messages.map((m) => ({ ...m })),
        response: `reply ${i}\n\`\`\`repl\nprint(${i})\n\`\`\``,
        codeBlocks: [],
        finalAnswer: null,
        iterationTimeMs: 1,
        usage,
      };
      trajectory.iterations.push(record);
      logger.iterationFinished(trajectory, record);
      messages.push({ role: 'assistant', content: record.response }, { role: 'user', content: `output ${i} `.repeat(20) });
    }
    trajectory.status = 'completed';
    trajectory.response = 'done';
    logger.runEnded(trajectory);
    await logger.flush();
    await store.close();

    // What the database holds, read without the store.
    const raw: any[] = await new Promise((resolve, reject) => {
      const open = indexedDB.open(name);
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const request = open.result.transaction('iterations').objectStore('iterations').getAll();
        request.onsuccess = () => {
          resolve(request.result);
          open.result.close();
        };
        request.onerror = () => reject(request.error);
      };
    });
    const fresh = new IndexedDBTrajectoryStore({ name });
    const [summary] = await fresh.listRuns();
    const back = await fresh.getRun('run-prompts');
    await fresh.clear();
    await fresh.close();
    const wholeSize = JSON.stringify(trajectory.iterations).length;
    return {
      stored: raw.map((r) => ({ iteration: r.iteration, from: r._promptFrom ?? null, messages: r.prompt.length })),
      promptsEqual: JSON.stringify(back.iterations.map((it: any) => it.prompt)) === JSON.stringify(trajectory.iterations.map((it: any) => it.prompt)),
      recordsEqual: JSON.stringify(back.iterations) === JSON.stringify(trajectory.iterations),
      jsonlEqual: toJSONL(back) === toJSONL(trajectory),
      headerSize: summary.size,
      wholeSize,
    };
  });
  expect(out.promptsEqual).toBe(true);
  expect(out.recordsEqual).toBe(true);
  expect(out.jsonlEqual).toBe(true);
  const at = (i: number) => out.stored.find((s) => s.iteration === i)!;
  // The first prompt whole; then two new messages a turn on top of the one before.
  expect(at(1)).toEqual({ iteration: 1, from: null, messages: 2 });
  expect(at(2)).toEqual({ iteration: 2, from: 2, messages: 2 });
  expect(at(19)).toEqual({ iteration: 19, from: 36, messages: 2 });
  // Compaction kept only the system prompt: the summary is new.
  expect(at(20)).toEqual({ iteration: 20, from: 1, messages: 1 });
  expect(at(40)).toEqual({ iteration: 40, from: 40, messages: 2 });
  // The header's size counts what is stored, far less than the whole prompts.
  expect(out.headerSize).toBeLessThan(out.wholeSize / 5);
});

test('a prompt whose earlier record is gone reads back with a marker, not a wrong prefix', async ({ harness }) => {
  const out = await harness.evaluate(async () => {
    const { IndexedDBTrajectoryStore } = (window as any).rlmWeb;
    const name = 'prompts-missing';
    const store = new IndexedDBTrajectoryStore({ name });
    await store.clear();
    const header: any = {
      id: 'run-gap',
      startedAt: new Date().toISOString(),
      config: { rootModel: 'm', backend: 'test', backendOptions: {}, environment: 'pyodide', maxDepth: 1, maxIterations: 5 },
      context: { type: 'str', length: 1 },
      status: 'running',
      usage: { calls: 0, inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, costUSD: 0, models: {} },
      model: 'm',
      iterationCount: 0,
      size: 0,
      updatedAt: new Date().toISOString(),
    };
    const usage = { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 };
    const it = (i: number, prompt: { role: string; content: string }[]) => ({ iteration: i, timestamp: '', prompt, response: `r${i}`, codeBlocks: [], finalAnswer: null, iterationTimeMs: 0, usage });
    const first = [
      { role: 'system', content: 's' },
      { role: 'user', content: 'u' },
    ];
    const second = [...first, { role: 'assistant', content: 'r1' }, { role: 'user', content: 'o1' }];
    await store.writeRun(header);
    await store.writeIteration({ ...header, iterationCount: 1 }, it(1, first));
    await store.writeIteration({ ...header, iterationCount: 2 }, it(2, second));
    await store.close();
    // The first iteration's record disappears (as if its write had failed).
    await new Promise<void>((resolve, reject) => {
      const open = indexedDB.open(name);
      open.onsuccess = () => {
        const tx = open.result.transaction('iterations', 'readwrite');
        tx.objectStore('iterations').delete(['run-gap', 1]);
        tx.oncomplete = () => (open.result.close(), resolve());
        tx.onerror = () => reject(tx.error);
      };
      open.onerror = () => reject(open.error);
    });
    const fresh = new IndexedDBTrajectoryStore({ name });
    const back = await fresh.getRun('run-gap');
    await fresh.clear();
    await fresh.close();
    return back.iterations.map((i: any) => ({ iteration: i.iteration, prompt: i.prompt }));
  });
  expect(out).toEqual([
    {
      iteration: 2,
      prompt: [
        { role: 'user', content: '[2 earlier messages of this prompt were not stored]' },
        { role: 'assistant', content: 'r1' },
        { role: 'user', content: 'o1' },
      ],
    },
  ]);
});
