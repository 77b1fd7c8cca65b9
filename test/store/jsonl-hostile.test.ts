/**
 * importJSONL against hostile and damaged logs: nothing in a log aborts an import, a run is
 * never written half-validated, never left 'running', and earlier runs stay.
 */
import { describe, expect, it } from 'vitest';
import { importJSONL, readJSONL, toJSONL } from '../../src/store/jsonl';
import { RecordingStore, REFERENCE_LOG, sampleTrajectory } from './fixtures';

type Line = Record<string, any>;

/** Our sample run's lines, parsed (metadata, then three iterations). */
function sampleLines(): Line[] {
  return toJSONL(sampleTrajectory()).trimEnd().split('\n').map((l) => JSON.parse(l) as Line);
}

function join(lines: Line[]): string {
  return lines.map((l) => JSON.stringify(l)).join('\n');
}

/** Two runs of ours: 'run-1' (lines 1–4) and `second` (lines 5–8), with `damage` applied to the second's metadata. */
function twoRuns(damage: (meta: Line) => void, second = 'second-run'): string {
  const lines = sampleLines();
  const other = sampleLines();
  other[0]!.rlm_web.id = second;
  damage(other[0]!);
  return join([...lines, ...other]);
}

/** Every status any write gave any run, in order: an import may never write 'running'. */
function statusesWritten(store: RecordingStore): string[] {
  return store.log.filter((w) => w.startsWith('run ')).map((w) => w.split(' ')[2]!);
}

describe('importJSONL: a run-level field of the wrong type', () => {
  const DAMAGE: [string, (meta: Line) => void][] = [
    ['rlm_web.usage.costUSD: "free"', (m) => (m.rlm_web.usage.costUSD = 'free')],
    ['rlm_web.usage.calls: true', (m) => (m.rlm_web.usage.calls = true)],
    ['rlm_web.usage.models: a string', (m) => (m.rlm_web.usage.models = 'gpt')],
    ['rlm_web.usage.models.<model>: a number', (m) => (m.rlm_web.usage.models['gpt-5-nano'] = 3)],
    ['rlm_web.usage.models.<model>.inputTokens: "9"', (m) => (m.rlm_web.usage.models['gpt-5-nano'].inputTokens = '9')],
    ['timestamp: true', (m) => (m.timestamp = true)],
    ['rlm_web.context: a list', (m) => (m.rlm_web.context = [1])],
    ['rlm_web.depth: "0"', (m) => (m.rlm_web.depth = '0')],
    ['max_iterations: {}', (m) => (m.max_iterations = {})],
    ['backend_kwargs: a string', (m) => (m.backend_kwargs = 'x')],
    ['rlm_web: a list', (m) => (m.rlm_web = [])],
  ];

  for (const [what, damage] of DAMAGE) {
    it(`${what} in the last run: that run is skipped before anything of it is written; the first stays`, async () => {
      const store = new RecordingStore();
      const result = await importJSONL(store, twoRuns(damage));
      expect(result.runIds).toEqual(['run-1']);
      expect([...store.runs.keys()]).toEqual(['run-1']);
      expect(store.runs.get('run-1')).toMatchObject({ status: 'imported', iterationCount: 3 });
      expect(store.runs.get('run-1')!.incomplete).toBeUndefined();
      expect(store.log.some((w) => w.includes('second-run'))).toBe(false);
      // The metadata line says what was wrong; each of its run's iterations says why it was skipped.
      expect(result.errors.map((e) => e.line)).toEqual([5, 6, 7, 8]);
      expect(result.errors[0]!.message).not.toMatch(/^skipped/);
      for (const e of result.errors.slice(1)) expect(e.message).toBe('skipped: the metadata line of its run (line 5) could not be read');
      expect(statusesWritten(store)).not.toContain('running');
    });
  }

  it('in the first run: the run after it still imports whole', async () => {
    const lines = sampleLines();
    lines[0]!.rlm_web.usage.costUSD = 'free';
    lines[0]!.rlm_web.id = 'bad-run';
    const store = new RecordingStore();
    const result = await importJSONL(store, join([...lines, ...sampleLines()]));
    expect(result.runIds).toEqual(['run-1']);
    expect(result.errors.map((e) => e.line)).toEqual([1, 2, 3, 4]);
    expect((await store.getRun('run-1'))!.iterations).toHaveLength(3);
  });

  it('readJSONL skips the same run and reads the rest', async () => {
    const read = await readJSONL(twoRuns((m) => (m.rlm_web.usage.costUSD = 'free')));
    expect(read.trajectories.map((t) => t.id)).toEqual(['run-1']);
    expect(read.errors.map((e) => e.line)).toEqual([5, 6, 7, 8]);
  });

  it('a damaged metadata line with no iterations after it (a run that failed early) leaves nothing behind', async () => {
    const lines = sampleLines();
    const early = { ...lines[0]!, timestamp: 7, rlm_web: { ...lines[0]!.rlm_web, id: 'early' } };
    const store = new RecordingStore();
    const result = await importJSONL(store, join([early, ...lines]));
    expect(result.runIds).toEqual(['run-1']);
    expect(result.errors).toEqual([{ line: 1, message: 'timestamp must be a string' }]);
  });
});

describe('importJSONL: late failures are line errors; no run is left running', () => {
  it('a bad iteration line is reported and its run is kept, marked incomplete', async () => {
    const lines = sampleLines();
    lines[2]!.code_blocks = 'not a list';
    const store = new RecordingStore();
    const result = await importJSONL(store, join(lines));
    expect(result.errors).toEqual([{ line: 3, message: 'iteration line.code_blocks must be an array' }]);
    expect(store.runs.get('run-1')).toMatchObject({ status: 'imported', incomplete: true, iterationCount: 2 });
    expect((await store.getRun('run-1'))!.iterations.map((i) => i.iteration)).toEqual([1, 3]);
  });

  it("a bad first iteration line (before the run's first write) marks the run incomplete too", async () => {
    const lines = sampleLines();
    lines[1]!.iteration = 'one';
    const store = new RecordingStore();
    const result = await importJSONL(store, join(lines));
    expect(result.errors).toEqual([{ line: 2, message: 'iteration line.iteration must be a number' }]);
    expect(store.runs.get('run-1')).toMatchObject({ status: 'imported', incomplete: true, iterationCount: 2 });
    // The next run of the same log starts whole.
    const again = await importJSONL(store, join([...lines, ...sampleLines()]));
    expect(again.runIds.map((id) => store.runs.get(id)!.incomplete)).toEqual([true, undefined]);
  });

  it('a run whose header cannot be written is reported on its first line; its iterations still go in, and the next run too', async () => {
    const store = new RecordingStore();
    let refused = false;
    store.failWith = (what) => {
      if (refused || !what.startsWith('run ')) return undefined;
      refused = true;
      return new DOMException('disk', 'UnknownError');
    };
    const result = await importJSONL(store, REFERENCE_LOG);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]!.line).toBe(2);
    expect(result.errors[0]!.message).toMatch(/^not stored: Could not import a run: IndexedDB is not available here/);
    // The first iteration was lost with its run's first header; the second carried the header in.
    const [a, b] = result.runIds as [string, string];
    expect(store.runs.get(a)).toMatchObject({ status: 'imported', incomplete: true, iterationCount: 1 });
    expect(store.runs.get(b)).toMatchObject({ status: 'imported', iterationCount: 1 });
    expect(store.runs.get(b)!.incomplete).toBeUndefined();
  });

  it('a run whose final header cannot be written stays marked incomplete, never running', async () => {
    const store = new RecordingStore();
    let headers = 0;
    store.failWith = (what) => (what.startsWith('run ') && ++headers === 2 ? new Error('gone') : undefined);
    const result = await importJSONL(store, toJSONL(sampleTrajectory()));
    expect(result.errors).toEqual([{ line: 1, message: 'not stored: Could not import a run: Error: gone' }]);
    expect(store.runs.get('run-1')).toMatchObject({ status: 'imported', incomplete: true, iterationCount: 3 });
  });

  it('a store that cannot say whether an id is taken gets a new id, never an overwrite', async () => {
    const store = new RecordingStore();
    await importJSONL(store, toJSONL(sampleTrajectory()));
    const before = structuredClone(store.runs.get('run-1'));
    store.hasRun = async () => {
      throw new DOMException('closing', 'InvalidStateError');
    };
    const result = await importJSONL(store, toJSONL(sampleTrajectory()));
    expect(result.errors).toEqual([]);
    expect(result.runIds[0]).not.toBe('run-1');
    expect(store.runs.get('run-1')).toEqual(before);
  });

  it('a source that cannot be read rejects with a StorageError; what was written is marked incomplete', async () => {
    const text = toJSONL(sampleTrajectory());
    const cut = text.indexOf('\n', text.indexOf('\n') + 1) + 1;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(text.slice(0, cut)));
      },
      pull(controller) {
        controller.error(new DOMException('the file changed', 'NotReadableError'));
      },
    });
    const store = new RecordingStore();
    await expect(importJSONL(store, stream)).rejects.toMatchObject({ name: 'StorageError', message: expect.stringContaining('read the JSONL log') });
    expect(store.runs.get('run-1')).toMatchObject({ status: 'imported', incomplete: true, iterationCount: 1 });
    expect(statusesWritten(store)).not.toContain('running');
  });
});

describe('importJSONL: type confusion on every field of every line', () => {
  const WEIRD: unknown[] = [null, true, 0, -1, 1e308, 'x', '', [], {}, [[[]]], JSON.parse('{"__proto__":{"polluted":1}}'), JSON.parse('{"constructor":{"prototype":{"polluted":2}}}'), '9'.repeat(400)];

  /** Every [path, value] that replaces one field (at any depth) of `value` with a weird one. */
  function* mutations(value: unknown, path: (string | number)[] = []): Generator<[(string | number)[], unknown]> {
    if (typeof value !== 'object' || value === null) return;
    for (const [k, v] of Object.entries(value)) {
      const key = Array.isArray(value) ? Number(k) : k;
      for (const w of WEIRD) yield [[...path, key], w];
      yield* mutations(v, [...path, key]);
    }
  }

  function setAt(root: Line, path: (string | number)[], v: unknown): Line {
    const copy = structuredClone(root);
    let o: any = copy;
    for (const k of path.slice(0, -1)) o = o[k];
    Object.defineProperty(o, path[path.length - 1]!, { value: v, enumerable: true, writable: true, configurable: true });
    return copy;
  }

  it('never rejects, never writes a running run, keeps every run it names, pollutes nothing', async () => {
    const lines = sampleLines();
    // A good run after the damaged one: it must always come through whole.
    const after = sampleLines();
    after[0]!.rlm_web.id = 'after';
    const failures: string[] = [];
    let tried = 0;
    for (let li = 0; li < lines.length; li++) {
      for (const [path, v] of mutations(lines[li])) {
        tried++;
        const log = join([...lines.map((l, i) => (i === li ? setAt(l, path, v) : l)), ...after]);
        const where = `${li}:${path.join('.')}=${JSON.stringify(v)?.slice(0, 20)}`;
        const store = new RecordingStore();
        try {
          const result = await importJSONL(store, log);
          if (statusesWritten(store).includes('running')) failures.push(`${where}: wrote a running run`);
          if (store.runs.get('after')?.iterationCount !== 3) failures.push(`${where}: the next run was not imported whole`);
          for (const id of result.runIds) if (store.runs.get(id)?.status !== 'imported') failures.push(`${where}: ${id} is not stored as imported`);
          await readJSONL(log);
        } catch (error) {
          failures.push(`${where}: ${(error as Error).name}: ${(error as Error).message.slice(0, 100)}`);
        }
      }
    }
    expect(tried).toBeGreaterThan(1000);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(failures.slice(0, 10)).toEqual([]);
  }, 120_000);
});
