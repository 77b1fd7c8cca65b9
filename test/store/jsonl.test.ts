import { describe, expect, it } from 'vitest';
import type { Trajectory } from '../../src/core/types';
import { generateJSONL, importJSONL, readJSONL, readLines, toJSONL, toJSONLBlob, toJSONLStream } from '../../src/store/jsonl';
import { RecordingStore, REFERENCE_LOG, sampleTrajectory } from './fixtures';
import { visualize } from './reference-visualizer';

function lines(text: string): Record<string, any>[] {
  return text.trimEnd().split('\n').map((l) => JSON.parse(l));
}

/** Equal up to the µs rounding of times exported in seconds. */
function expectSameTrajectory(actual: Trajectory, expected: Trajectory): void {
  const micros = (t: Trajectory): unknown =>
    JSON.parse(JSON.stringify(t, (key, value) => ((key === 'iterationTimeMs' || key === 'executionTimeMs') && typeof value === 'number' ? Math.round(value * 1000) : value)));
  expect(micros(actual)).toEqual(micros(expected));
}

describe('toJSONL: the reference log format', () => {
  const t = sampleTrajectory();
  const [meta, ...iterations] = lines(toJSONL(t));

  it('writes a metadata line with the reference fields, names and types', () => {
    expect(meta).toMatchObject({
      type: 'metadata',
      timestamp: t.startedAt,
      root_model: 'gpt-5-nano',
      max_depth: 2,
      max_iterations: 30,
      backend: 'openai',
      // The reference's key for the model.
      backend_kwargs: { model_name: 'gpt-5-nano', baseURL: 'http://127.0.0.1:1/v1' },
      environment_type: 'pyodide',
      environment_kwargs: { cellTimeoutMs: 30000 },
      other_backends: ['openai'],
    });
    // Extras of ours ride along under their own key.
    expect(meta!.rlm_web).toMatchObject({ id: 'run-1', status: 'completed', rootPrompt: 'What is the magic number?', response: '4817305' });
  });

  it('writes one iteration line per iteration, 1-based, times in seconds', () => {
    expect(iterations).toHaveLength(3);
    const [first, second, third] = iterations as Record<string, any>[];
    expect(Object.keys(first!)).toEqual(expect.arrayContaining(['type', 'iteration', 'timestamp', 'prompt', 'response', 'code_blocks', 'final_answer', 'iteration_time']));
    expect(first).toMatchObject({ type: 'iteration', iteration: 1, timestamp: '2026-11-24T09:01:00.000Z', final_answer: null, iteration_time: 1.234568 });
    expect(first!.prompt).toEqual([
      { role: 'system', content: 'You are an RLM.' },
      { role: 'user', content: 'turn 1: "quoted" and unicode ✓ 日本' },
    ]);
    const result = first!.code_blocks[0].result;
    expect(first!.code_blocks[0].code).toBe('print(1)');
    expect(result).toMatchObject({ stdout: '1\n', stderr: '', execution_time: 0.012346, rlm_calls: [], final_answer: null });
    // The reference records locals as a dict keyed by variable name.
    expect(result.locals).toEqual({ x: null, chunks: null });
    expect(third!.final_answer).toBe('4817305');
    expect(third!.code_blocks[0].result.final_answer).toBe('4817305');
    expect(second!.rlm_web.reasoning).toBe('thinking about chunks');
  });

  it('writes the REPL\'s variable previews as the values of `locals`, null where there is none', () => {
    expect((iterations[1] as any).code_blocks[0].result.locals).toEqual({ x: 'the magic number is 4817305, found in chunk 2 of 3', chunks: null });
  });

  it('writes the model as `model_name` in backend_kwargs and other_backend_kwargs, as the reference does', () => {
    expect(meta!.backend_kwargs).toEqual({ model_name: 'gpt-5-nano', baseURL: 'http://127.0.0.1:1/v1' });
    expect(meta!.backend_kwargs).not.toHaveProperty('model');
    expect(meta!.other_backend_kwargs).toEqual([{ model_name: 'gpt-5-mini' }]);
  });

  it('reads in the reference visualizer as it reads its own logs: header, totals, variables panel', () => {
    const view = visualize(toJSONL(t));
    expect(view.header).toBe('gpt-5-nano • openai • pyodide');
    expect(view).toMatchObject({ iterations: 3, codeBlocks: 4, subCalls: 3, hasErrors: true, finalAnswer: '4817305' });
    expect(view.variables[1]).toEqual([['x = the magic number is 4817305, f...', 'chunks = null']]);
    expect(view.variables[2]![1]).toEqual([]);
  });

  it('writes sub-calls as call records, child trajectories nested in metadata', () => {
    const calls = (iterations[1] as any).code_blocks[0].result.rlm_calls;
    expect(calls).toHaveLength(3);
    expect(calls[0]).toEqual({
      root_model: 'gpt-5-mini',
      prompt: 'Find the number in: ...',
      response: '4817305',
      usage_summary: {
        model_usage_summaries: { 'gpt-5-mini': { total_calls: 1, total_input_tokens: 1000, total_output_tokens: 5, total_cost: 0.0021, total_cached_input_tokens: 200 } },
        total_cost: 0.0021,
      },
      execution_time: 0.321988,
      rlm_web: { kind: 'llm', callId: 'b7.0', index: 0 },
    });
    expect(calls[0]).not.toHaveProperty('metadata');
    expect(calls[1].metadata.run_metadata).toMatchObject({ root_model: 'gpt-5-mini', max_depth: 2, environment_type: 'pyodide', other_backends: null });
    expect(calls[1].metadata.run_metadata).not.toHaveProperty('type');
    expect(calls[1].metadata.iterations).toHaveLength(1);
    expect(calls[1].metadata.iterations[0]).toMatchObject({ iteration: 1, final_answer: 'child answer' });
    expect(calls[2].error).toBe('LMTimeoutError: took too long');
    // A call recorded without an id (older runs) writes none.
    expect(calls[2].rlm_web).toEqual({ kind: 'llm' });
    // An iteration rebuilt from durable steps says so; a whole one does not.
    expect((iterations[2] as any).rlm_web.partial).toBe(true);
    expect((iterations[1] as any).rlm_web).not.toHaveProperty('partial');
  });

  it('streams the same text as lines, a Blob and a ReadableStream', async () => {
    const text = toJSONL(t);
    expect([...generateJSONL(t)].map((l) => `${l}\n`).join('')).toBe(text);
    expect(await toJSONLBlob(t).text()).toBe(text);
    expect(await new Response(toJSONLStream(t)).text()).toBe(text);
  });
});

describe('readJSONL: our logs', () => {
  it('round trip: export → import → export is stable', async () => {
    const original = sampleTrajectory();
    const first = toJSONL(original);
    const read = await readJSONL(first);
    expect(read.errors).toEqual([]);
    expect(read.trajectories).toHaveLength(1);
    const imported = read.trajectories[0]!;
    expect(imported.status).toBe('imported');
    expectSameTrajectory(imported, { ...original, status: 'imported' });
    // The nested child keeps its own status.
    expect(imported.iterations[1]!.codeBlocks[0]!.subcalls[1]!.trajectory!.status).toBe('completed');

    const second = toJSONL(imported);
    expect(second).toBe(first.replace('"status":"completed"', '"status":"imported"'));
    const third = toJSONL((await readJSONL(second)).trajectories[0]!);
    expect(third).toBe(second);
  });

  it('reads several runs from one file', async () => {
    const a = sampleTrajectory();
    const b = { ...sampleTrajectory(), id: 'run-2', iterations: sampleTrajectory().iterations.slice(0, 1) };
    const empty = { ...sampleTrajectory(), id: 'run-0', iterations: [], status: 'failed' as const };
    const read = await readJSONL(toJSONL(empty) + toJSONL(a) + toJSONL(empty) + toJSONL(b) + toJSONL(empty));
    expect(read.trajectories.map((t) => [t.id, t.iterations.length])).toEqual([
      ['run-0', 0],
      ['run-1', 3],
      ['run-0', 0],
      ['run-2', 1],
      ['run-0', 0],
    ]);
  });
});

describe('readJSONL: the reference implementation\'s logs', () => {
  it('maps a hand-written reference log to trajectories', async () => {
    const read = await readJSONL(REFERENCE_LOG);
    expect(read.errors).toEqual([]);
    expect(read.lines).toBe(4);
    expect(read.iterations).toBe(3);
    // The logger served two completions: iteration numbering restarted.
    expect(read.trajectories).toHaveLength(2);
    const [first, second] = read.trajectories as [Trajectory, Trajectory];
    expect(first.status).toBe('imported');
    expect(first.startedAt).toBe('2026-06-25T14:03:11.123456');
    expect(first.config).toMatchObject({
      rootModel: 'gpt-5',
      backend: 'openai',
      backendOptions: { model: 'gpt-5' },
      environment: 'local',
      maxDepth: 2,
      maxIterations: 10,
      otherBackends: [{ backend: 'openai', backendOptions: {} }],
    });
    // Found in the prompt the way the reference visualizer finds it.
    expect(first.rootPrompt).toBe('What is the secret number?');
    expect(first.iterations).toHaveLength(2);
    const [it1, it2] = first.iterations as [any, any];
    expect(it1.iterationTimeMs).toBe(2500);
    expect(it1.codeBlocks[0]).toMatchObject({ code: 'print(context[:100])', stdout: 'line 0 ...\n', locals: ['context', 'n', 'chunks'], executionTimeMs: 12.3, finalAnswer: null });
    // Logged values become short previews.
    expect(it1.codeBlocks[0].previews).toEqual({ context: 'line 0 ...', n: '3', chunks: '["a","b"]' });
    expect(it2.finalAnswer).toBe('7421');
    const [call, child] = it2.codeBlocks[0].subcalls;
    expect(call).toMatchObject({ kind: 'llm', model: 'gpt-5-mini', prompt: 'find it', response: '7421', executionTimeMs: 900 });
    expect(call.usage.models['gpt-5-mini']).toEqual({ calls: 1, inputTokens: 1200, outputTokens: 4, cachedInputTokens: 0, costUSD: 0.0003 });
    expect(child.kind).toBe('rlm');
    expect(child.trajectory.config.rootModel).toBe('gpt-5-mini');
    expect(child.trajectory.iterations[0].finalAnswer).toBe('deep');
    expect(child.trajectory.response).toBe('deep');
    // Run-level figures derived from what the log has.
    expect(first.response).toBe('7421');
    expect(first.endReason).toBe('answer');
    expect(first.executionTimeMs).toBe(5750);
    expect(first.usage.models['gpt-5-mini']).toMatchObject({ calls: 3, inputTokens: 2000, outputTokens: 34 });
    // The legacy [kind, answer] final answer.
    expect(second.iterations[0]!.finalAnswer).toBe('done');
    expect(second.response).toBe('done');
    expect(second.config.rootModel).toBe('gpt-5');
  });

  it('exports an imported reference log with the reference fields intact', async () => {
    const read = await readJSONL(REFERENCE_LOG);
    const out = lines(toJSONL(read.trajectories[0]!));
    const original = REFERENCE_LOG.split('\n').map((l) => JSON.parse(l));
    expect(out[0]).toMatchObject({ ...original[0], backend_kwargs: { model_name: 'gpt-5' } });
    const it = out[2]!;
    expect(it.iteration).toBe(2);
    expect(it.iteration_time).toBe(3.25);
    expect(it.code_blocks[0].result.rlm_calls[0]).toMatchObject(original[2].code_blocks[0].result.rlm_calls[0]);
  });
});

describe('malformed lines', () => {
  it('are reported with their line numbers and skipped; the rest is kept', async () => {
    const good = REFERENCE_LOG.split('\n');
    const text = [
      good[0],
      '{"type":"iteration", "iteration": 1, "prompt": [',
      good[1],
      '',
      '[1, 2, 3]',
      '{"type":"iteration","iteration":2,"code_blocks":"not a list"}',
      '{"type":"mystery"}',
      '{"type":"iteration","iteration":0}',
      good[2],
    ].join('\r\n');
    const read = await readJSONL(text);
    expect(read.errors.map((e) => e.line)).toEqual([2, 5, 6, 7, 8]);
    expect(read.errors[0]!.message).toMatch(/not JSON/);
    expect(read.errors[2]!.message).toMatch(/code_blocks must be an array/);
    expect(read.errors[3]!.message).toMatch(/unknown line type "mystery"/);
    expect(read.trajectories).toHaveLength(1);
    expect(read.trajectories[0]!.iterations.map((i) => i.iteration)).toEqual([1, 2]);
    expect(read.trajectories[0]!.response).toBe('7421');
  });
});

describe('readLines: streaming', () => {
  it('splits lines across chunk boundaries, multi-byte characters and CRLF', async () => {
    const text = 'αβγ line one\r\n日本語 two\n\n' + 'x'.repeat(100_000) + '\nlast ✓';
    const bytes = new TextEncoder().encode(text);
    // Chunks of 7 bytes: boundaries fall inside multi-byte characters.
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 7) controller.enqueue(bytes.slice(i, i + 7));
        controller.close();
      },
    });
    const out: string[] = [];
    for await (const line of readLines(stream)) out.push(line);
    expect(out).toEqual(['αβγ line one', '日本語 two', '', 'x'.repeat(100_000), 'last ✓']);
    const fromBlob: string[] = [];
    for await (const line of readLines(new Blob([bytes]))) fromBlob.push(line);
    expect(fromBlob).toEqual(out);
  });
});

describe('importJSONL', () => {
  it('writes each run to the store iteration by iteration, with status imported', async () => {
    const store = new RecordingStore();
    const result = await importJSONL(store, new Blob([REFERENCE_LOG]));
    expect(result.errors).toEqual([]);
    expect(result.runIds).toHaveLength(2);
    const [a, b] = result.runIds as [string, string];
    expect(store.log).toEqual([`run ${a} imported`, `iteration ${a} 1`, `iteration ${a} 2`, `run ${a} imported`, `run ${b} imported`, `iteration ${b} 1`, `run ${b} imported`]);
    const run = await store.getRun(a);
    expect(run!.status).toBe('imported');
    expect(run!.iterations).toHaveLength(2);
    expect(run!.response).toBe('7421');
    expect(store.runs.get(a)).toMatchObject({ iterationCount: 2, model: 'gpt-5', question: 'What is the secret number?' });
    expect(store.runs.get(a)!.size).toBeGreaterThan(1000);
  });

  it('keeps an exported run\'s id, unless the store has it already', async () => {
    const store = new RecordingStore();
    const text = toJSONL(sampleTrajectory());
    const first = await importJSONL(store, text);
    const second = await importJSONL(store, text);
    expect(first.runIds).toEqual(['run-1']);
    expect(second.runIds[0]).not.toBe('run-1');
    expectSameTrajectory((await store.getRun(second.runIds[0]!))!, { ...sampleTrajectory(), id: second.runIds[0]!, status: 'imported' });
  });

  it('reports a store failure on the lines it lost, with the StorageError\'s advice, and keeps the runs incomplete', async () => {
    const store = new RecordingStore();
    store.failWith = (what) => (what.startsWith('iteration') ? new DOMException('full', 'QuotaExceededError') : undefined);
    const result = await importJSONL(store, REFERENCE_LOG);
    expect(result.errors.map((e) => e.line)).toEqual([2, 3, 4]);
    for (const error of result.errors) expect(error.message).toMatch(/^not stored: Could not import an iteration: the browser's storage quota .* Delete or export old runs/);
    expect(result.iterations).toBe(0);
    expect([...store.runs.values()].map((r) => [r.status, r.incomplete, r.iterationCount])).toEqual([
      ['imported', true, 0],
      ['imported', true, 0],
    ]);
  });
});

describe('importJSONL: hostile logs (a line fails, the import completes)', () => {
  const [metadata, first, second] = REFERENCE_LOG.split('\n') as [string, string, string];

  /** An iteration line whose sub-call nests a child run, `levels` times over (≈8 JSON levels each). */
  function nestedChildren(levels: number): string {
    let line = '{"type":"iteration","iteration":1}';
    for (let i = 0; i < levels; i++) {
      line = `{"type":"iteration","iteration":1,"code_blocks":[{"code":"x","result":{"rlm_calls":[{"metadata":{"run_metadata":{},"iterations":[${line}]}}]}}]}`;
    }
    return line;
  }

  it('skips lines nested thousands of levels deep, by line number, and imports the rest', async () => {
    const store = new RecordingStore();
    const deep = '['.repeat(2000) + ']'.repeat(2000);
    const text = [metadata, `{"type":"iteration","iteration":1,"response":${deep}}`, first, nestedChildren(300), second].join('\n');
    const result = await importJSONL(store, text);
    expect(result.errors.map((e) => e.line)).toEqual([2, 4]);
    for (const error of result.errors) expect(error.message).toBe('the line nests arrays and objects more than 256 levels deep');
    expect(result.runIds).toHaveLength(1);
    const run = await store.getRun(result.runIds[0]!);
    expect(run!.status).toBe('imported');
    expect(run!.iterations.map((i) => i.iteration)).toEqual([1, 2]);
    // Children nested a few levels deep, as real logs have them, still import.
    const shallow = await readJSONL([metadata, nestedChildren(20)].join('\n'));
    expect(shallow.errors).toEqual([]);
  });

  it('skips a line over maxLineChars without ever joining it, from a stream and from a string', async () => {
    const encoder = new TextEncoder();
    const huge = 50 * 1024 * 1024;
    const piece = encoder.encode('x'.repeat(1024 * 1024));
    const opening = '{"type":"iteration","response":"';
    let sent = 0;
    // The log as a stream: metadata, one 50 MB line made on the fly, then the iterations.
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(encoder.encode(`${metadata}\n${opening}`));
      },
      pull(controller) {
        if (sent < huge) {
          controller.enqueue(piece);
          sent += piece.length;
          return;
        }
        controller.enqueue(encoder.encode(`"}\n${first}\n${second}\n`));
        controller.close();
      },
    });
    const store = new RecordingStore();
    const result = await importJSONL(store, stream, { maxLineChars: 1_000_000 });
    expect(result.lines).toBe(4);
    expect(result.errors).toEqual([{ line: 2, message: `the line is ${opening.length + huge + '"}'.length} characters long, over the limit of 1000000 (maxLineChars); skipped` }]);
    expect((await store.getRun(result.runIds[0]!))!.status).toBe('imported');
    expect((await store.getRun(result.runIds[0]!))!.iterations).toHaveLength(2);

    const fromString = await readJSONL([metadata, `{"type":"iteration","response":"${'y'.repeat(2000)}"}`, first].join('\n'), { maxLineChars: 1000 });
    expect(fromString.errors.map((e) => e.line)).toEqual([2]);
    expect(fromString.trajectories[0]!.iterations).toHaveLength(1);
  });

  it("keeps keys like '__proto__' as plain data: no prototype replaced, nothing polluted", async () => {
    const ours = JSON.parse(toJSONL(sampleTrajectory()).split('\n')[0]!) as { rlm_web: { usage: Record<string, any> } };
    ours.rlm_web.usage.models = JSON.parse('{"__proto__": {"calls": 2, "inputTokens": 3, "outputTokens": 4, "cachedInputTokens": 0, "costUSD": 0}}');
    // In the reference format, per-call usage is summed into the run's usage by model name.
    const call = JSON.parse(first) as Record<string, any>;
    call.code_blocks[0].result.rlm_calls = [JSON.parse('{"root_model":"__proto__","prompt":"p","response":"r","usage_summary":{"model_usage_summaries":{"__proto__":{"total_calls":1,"total_input_tokens":5,"total_output_tokens":6}}}}')];
    const store = new RecordingStore();
    const result = await importJSONL(store, [JSON.stringify(ours), JSON.stringify(JSON.parse(toJSONL(sampleTrajectory()).split('\n')[1]!)), metadata, JSON.stringify(call)].join('\n'));
    expect(result.errors).toEqual([]);
    const [mine, reference] = await Promise.all(result.runIds.map((id) => store.getRun(id)));
    for (const run of [mine!, reference!]) {
      expect(Object.getPrototypeOf(run.usage.models)).toBe(Object.prototype);
      expect(Object.hasOwn(run.usage.models, '__proto__')).toBe(true);
    }
    expect(Object.getOwnPropertyDescriptor(mine!.usage.models, '__proto__')!.value).toEqual({ calls: 2, inputTokens: 3, outputTokens: 4, cachedInputTokens: 0, costUSD: 0 });
    expect(Object.getOwnPropertyDescriptor(reference!.usage.models, '__proto__')!.value).toMatchObject({ calls: 1, inputTokens: 5, outputTokens: 6 });
    expect(({} as Record<string, unknown>).calls).toBeUndefined();
    expect(({} as Record<string, unknown>).inputTokens).toBeUndefined();
  });
});

describe('JSONL: secrets stay out of exports and imports', () => {
  it('an export redacts a stored config that still holds secrets (an older version wrote it)', () => {
    const t = sampleTrajectory();
    t.config.backendOptions = { model: 'gpt-5-nano', apiKey: 'sk-old', baseURL: 'https://u:p@host/v1?key=abc' };
    t.config.environmentOptions = { proxyURL: 'https://h/p?token=t', auth: { token: 'x' } };
    t.error = 'LMConnectionError: could not reach https://u:p@host/v1?key=abc';
    const meta = JSON.parse(toJSONL(t).split('\n')[0]!) as Record<string, any>;
    expect(meta.backend_kwargs).toEqual({ model_name: 'gpt-5-nano', baseURL: 'https://host/v1' });
    expect(meta.environment_kwargs).toEqual({ proxyURL: 'https://h/p' });
    expect(meta.rlm_web.error).toBe('LMConnectionError: could not reach https://host/v1');
  });

  it("an import redacts a reference log's kwargs (the reference logs them as given)", async () => {
    const lines = REFERENCE_LOG.split('\n');
    const meta = JSON.parse(lines[0]!) as Record<string, any>;
    meta.backend_kwargs = { model_name: 'gpt-5', api_key: 'sk-ref', base_url: 'https://u:p@api.example/v1?key=k' };
    meta.environment_kwargs = { setup: { token: 't' }, url: 'wss://a:b@sandbox.dev/ws?sig=s' };
    const store = new RecordingStore();
    const { runIds } = await importJSONL(store, [JSON.stringify(meta), ...lines.slice(1)].join('\n'));
    const run = await store.getRun(runIds[0]!);
    expect(run!.config.backendOptions).toEqual({ model: 'gpt-5', base_url: 'https://api.example/v1' });
    expect(run!.config.environmentOptions).toEqual({ setup: {}, url: 'wss://sandbox.dev/ws' });
  });
});
