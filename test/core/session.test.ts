/**
 * The REPL an RLM keeps between completions (src/core/session.ts): without `persistent`,
 * each completion runs in a REPL of its own — the last run's ends, a spare boots as the run
 * ends — and the children's pool ends with the root run; with `persistent`, one REPL.
 */
import { describe, expect, it, vi } from 'vitest';
import type { ReplInfo } from '../../src/core/types';
import { FakeClient, makeRLM, query, repl, results, scripted, type FakeRepl } from './fakes/fakes';

/** A promise and its resolve function, to hold a REPL's boot or close until the test lets it go. */
function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

/** An RLM at maxDepth 2 whose root, in each of two runs, asks one child RLM. */
function delegating(persistent: boolean) {
  const isChild = (content: string) => content.includes('recursion is off');
  const parent = scripted(repl('delegate'), 'FINAL(a)', repl('delegate'), 'FINAL(b)');
  const root = new FakeClient('root-model', (messages, request, call) => (isChild(messages[0]!.content) ? repl('child') : parent(messages, request, call)));
  return makeRLM({
    root,
    rlm: { maxDepth: 2, persistent },
    cells: {
      delegate: async (ctx) => ({ stdout: results(await query(ctx, 'rlm_query', ['task']))[0] ?? '' }),
      child: { finalAnswer: 'child done' },
    },
  });
}

describe('a REPL of its own for each non-persistent completion', () => {
  it('ends the run’s REPL as the run ends and boots a spare, which the next completion takes without a reset', async () => {
    const root = new FakeClient('root-model', scripted(repl('mark'), 'FINAL(1)', repl('look'), 'FINAL(2)'));
    const { rlm, envs } = makeRLM({
      root,
      rlm: { customTools: { lookup: () => 1 } },
      cells: {
        mark: ({ repl: r }) => {
          r.vars.set('planted', true);
          return {};
        },
        look: ({ repl: r }) => ({ stdout: String(r.vars.has('planted')) }),
      },
    });
    await rlm.completion('first context');
    // Made as the run ended; booted once the old one was closed, before any completion asks.
    expect(envs).toHaveLength(2);
    const [used, spare] = envs as [FakeRepl, FakeRepl];
    expect(used.closed).toBe(true);
    await vi.waitFor(() => expect(spare.starts).toBe(1));
    expect(spare.loaded).toEqual([]);

    const second = await rlm.completion('second context');
    expect(second.trajectory.iterations[0]?.codeBlocks[0]?.stdout).toBe('false');
    expect(spare.executed).toEqual(['look']);
    expect(spare.loaded).toEqual([[0, 'second context']]);
    expect(spare.tools.map((t) => t.name)).toEqual(['lookup']);
    expect(used.executed).toEqual(['mark']);
    expect(envs.map((e) => e.resets)).toEqual([0, 0, 0]);
    await rlm.close();
    expect(envs.every((e) => e.closed)).toBe(true);
  });

  it('boots the spare only once the old REPL is closed', async () => {
    const order: string[] = [];
    const closing = gate();
    const root = new FakeClient('root-model', scripted('FINAL(1)'));
    const { rlm, envs } = makeRLM({
      root,
      onRepl: (r) => {
        const n = envs.length;
        const start = r.start.bind(r);
        r.start = () => (order.push(`start ${n}`), start());
        if (n === 0) {
          r.close = async () => {
            order.push('close 0 asked');
            await closing.promise;
            order.push('close 0 done');
          };
        }
      },
    });
    await rlm.completion('ctx');
    await Promise.resolve();
    expect(order).toEqual(['start 0', 'close 0 asked']);
    closing.open();
    await vi.waitFor(() => expect(order).toEqual(['start 0', 'close 0 asked', 'close 0 done', 'start 1']));
    await rlm.close();
  });

  it('back to back: the next completion asks its first LM call while the spare still boots, and waits for it before the first cell', async () => {
    const booted = gate<ReplInfo>();
    let bootedWhenAsked: boolean | undefined;
    let spareBooted = false;
    const script = scripted('FINAL(1)', repl('cell'), 'FINAL(2)');
    const root = new FakeClient('root-model', (messages, request, call) => {
      if (call === 1) bootedWhenAsked = spareBooted;
      return script(messages, request, call);
    });
    const { rlm, envs } = makeRLM({
      root,
      cells: { cell: { stdout: 'ran' } },
      onRepl: (r) => {
        if (envs.length !== 1) return;
        r.start = async () => {
          r.starts++;
          r.info = await booted.promise;
          spareBooted = true;
          return r.info;
        };
      },
    });
    await rlm.completion('one');
    const second = rlm.completion('two');
    await vi.waitFor(() => expect(root.calls).toHaveLength(2));
    expect(bootedWhenAsked).toBe(false);
    expect(envs[1]?.executed).toEqual([]);
    booted.open({ bridge: 'jspi', interruptible: true, bootMs: 300, runtime: 'fake' });
    expect((await second).response).toBe('2');
    expect(envs[1]?.executed).toEqual(['cell']);
    await rlm.close();
  });

  it('renews after a failed or stopped run too', async () => {
    const root = new FakeClient('root-model', scripted(repl('boom'), repl('boom'), 'FINAL(after)'));
    const { rlm, envs } = makeRLM({ root, rlm: { maxErrors: 2 }, cells: { boom: { stderr: 'Traceback: boom', errorType: 'RuntimeError' } } });
    await expect(rlm.completion('hostile')).rejects.toThrow();
    expect(envs[0]?.closed).toBe(true);
    expect((await rlm.completion('clean')).response).toBe('after');
    expect(envs[1]?.loaded).toEqual([[0, 'clean']]);
    await rlm.close();
  });

  it('a spare that failed to boot is booted again by the completion that takes it', async () => {
    const root = new FakeClient('root-model', scripted('FINAL(1)', 'FINAL(2)'));
    let failures = 0;
    const { rlm, envs } = makeRLM({
      root,
      onRepl: (r) => {
        if (envs.length !== 1) return;
        const start = r.start.bind(r);
        r.start = () => (r.starts === 0 && failures++ === 0 ? (r.starts++, Promise.reject(new Error('boot failed'))) : start());
      },
    });
    await rlm.completion('one');
    await vi.waitFor(() => expect(failures).toBe(1));
    expect((await rlm.completion('two')).response).toBe('2');
    expect(envs[1]?.loaded).toEqual([[0, 'two']]);
    await rlm.close();
  });

  it('warmUp() between completions boots the spare; replInfo shows the last run’s REPL until the spare has booted', async () => {
    const held = gate<ReplInfo>();
    const root = new FakeClient('root-model', scripted('FINAL(1)'));
    const { rlm, envs } = makeRLM({
      root,
      onRepl: (r) => {
        if (envs.length !== 1) return;
        r.start = async () => (r.starts++, (r.info = await held.promise));
      },
    });
    await rlm.completion('one');
    expect(rlm.replInfo?.bootMs).toBe(1);
    const warming = rlm.warmUp();
    held.open({ bridge: 'sab', interruptible: true, bootMs: 2, runtime: 'fake' });
    expect((await warming).bootMs).toBe(2);
    expect(rlm.replInfo?.bootMs).toBe(2);
    expect(envs).toHaveLength(2);
    await rlm.close();
  });

  it('one-shot use (close() as soon as the completion returns) boots no spare', async () => {
    const root = new FakeClient('root-model', scripted('FINAL(1)'));
    const { rlm, envs } = makeRLM({ root });
    await rlm.completion('one');
    await rlm.close();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(envs.map((e) => [e.starts, e.closed])).toEqual([
      [1, true],
      [0, true],
    ]);
  });

  it('close() while the old REPL is still being ended ends it and the spares, and boots nothing afterwards', async () => {
    const closing = gate();
    const root = new FakeClient('root-model', scripted('FINAL(1)'));
    const { rlm, envs } = makeRLM({
      root,
      rlm: { maxDepth: 2 },
      onRepl: (r) => {
        const close = r.close.bind(r);
        // Every REPL made before the run ended closes slowly (a sandbox's DELETE).
        if (envs.length < 2) r.close = async () => (await closing.promise, close());
      },
    });
    await rlm.completion('one');
    // The root's spare is made, waiting for the old REPL to be gone.
    expect(envs).toHaveLength(3);
    expect(envs[2]?.starts).toBe(0);
    const closed = rlm.close();
    closing.open();
    await closed;
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(envs.every((e) => e.closed)).toBe(true);
    // Neither the root's spare nor a child interpreter for a next run ever booted.
    expect(envs).toHaveLength(3);
    expect(envs[2]?.starts).toBe(0);
  });

  it('the children of a run take their REPLs from a pool that ends with the run; the next run’s children get another', async () => {
    const { rlm, envs } = delegating(false);
    await rlm.completion('one');
    const firstGroup = envs.find((e) => e.group)?.group;
    await vi.waitFor(() => expect(envs.filter((e) => e.group && e.group !== firstGroup)).toHaveLength(1));
    expect(envs.filter((e) => e.group === firstGroup).every((e) => e.closed)).toBe(true);
    await rlm.completion('two');
    const groups = new Set(envs.filter((e) => e.group && e.executed.length > 0).map((e) => e.group));
    // One child REPL per run, each in its own run's group; the first run's is closed.
    expect(envs.filter((e) => e.group && e.executed.length > 0)).toHaveLength(2);
    expect(groups.size).toBe(2);
    await rlm.close();
    expect(envs.every((e) => e.closed)).toBe(true);
  });

  it('with persistent: true keeps one REPL and one pool across completions, never ended between them', async () => {
    const { rlm, envs } = delegating(true);
    await rlm.completion('one');
    await rlm.completion('two');
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(envs).toHaveLength(2);
    expect(envs.map((e) => e.closed)).toEqual([false, false]);
    expect([...envs[0]!.contexts.values()]).toEqual(['one', 'two']);
    await rlm.close();
  });
});
