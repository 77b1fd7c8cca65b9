/**
 * The restorable REPL driven through a fake transport: what it replays into a new process,
 * how it stops a cell, and what it tells the model — the part the Pyodide and remote REPLs
 * share. The transports themselves run in e2e (real worker, real proxy).
 */
import { describe, expect, it } from 'vitest';
import type { CellResult, ExecuteOptions, HostReply, HostRequest, ReplInfo, SubcallHost } from '../../src/core/types';
import type { CellOutput, ContextDescription, ToolSpec } from '../../src/protocol/worker';
import type { EncodedContext } from '../../src/repl/context-bytes';
import { RestorableRepl, type AnswerRequest, type CellEnd, type ReplTransport } from '../../src/repl/restorable-repl';

function output(stdout: string, extra: Partial<CellOutput> = {}): CellOutput {
  return { stdout, stderr: '', locals: [], execution_time: 0.001, final_answer: null, error_type: null, interrupted: false, ...extra };
}

class GoneError extends Error {}

/**
 * Cells by their code: 'spin' runs until interrupted (or forever, when `ignoresInterrupt`),
 * 'die' loses the process, 'ask:<prompt>' makes a sub-call and prints its reply; anything
 * else prints itself.
 */
class FakeTransport implements ReplTransport {
  readonly log: string[] = [];
  boots = 0;
  interruptible = true;
  ignoresInterrupt = false;
  /** The next operation by this name fails as if the process had gone away. */
  goneOnce: string | undefined;
  private answer: AnswerRequest | undefined;
  private spinning: ((end: CellEnd) => void) | undefined;

  constructor(readonly replaced: string) {}

  async boot(answer: AnswerRequest): Promise<ReplInfo> {
    this.answer = answer;
    this.boots++;
    this.log.push(`boot ${this.boots}`);
    return { bridge: 'jspi', interruptible: this.interruptible, bootMs: 1, runtime: `fake ${this.boots}` };
  }

  private op(name: string, entry: string): void {
    if (this.goneOnce === name) {
      this.goneOnce = undefined;
      this.log.push(`${entry} failed: gone`);
      throw new GoneError('the process is gone');
    }
    this.log.push(entry);
  }

  async loadContext(index: number, encoded: EncodedContext): Promise<ContextDescription> {
    const text = 'bytes' in encoded ? new TextDecoder().decode(encoded.bytes) : `blob of ${encoded.blob.size}`;
    this.op('loadContext', `context ${index} ${encoded.kind} ${text}`);
    return { type: encoded.kind === 'json' ? 'list' : 'str', length: text.length };
  }

  async setVariable(name: string, valueJSON: string, reserved: boolean): Promise<void> {
    this.op('setVariable', `variable ${name}=${valueJSON}${reserved ? ' reserved' : ''}`);
  }

  async registerTools(tools: ToolSpec[]): Promise<void> {
    this.op('registerTools', `tools ${tools.map((t) => `${t.name}:${t.kind}${t.valueJSON ? `=${t.valueJSON}` : ''}`).join(' ')}`);
  }

  async resolveVariable(name: string): Promise<string | null> {
    this.op('resolveVariable', `resolve ${name}`);
    return name === 'known' ? 'value' : null;
  }

  async reset(): Promise<void> {
    this.op('reset', 'reset');
  }

  async run(code: string, cancel: AbortSignal, onOutput: ExecuteOptions['onOutput']): Promise<CellEnd> {
    this.log.push(`run ${code}`);
    if (code.startsWith('live:')) onOutput?.('stdout', code.slice(5));
    cancel.addEventListener('abort', () => this.log.push(`cancel ${code}`));
    if (code === 'die') return { kind: 'lost', errorType: 'FakeCrashError', message: 'the process died under the cell.' };
    if (code.startsWith('ask:')) {
      const reply = await this.answer!({ op: 'llm_query', prompts: [code.slice(4)], model: null });
      return { kind: 'output', output: output(`${JSON.stringify(reply)}\n`) };
    }
    if (code === 'spin') return new Promise<CellEnd>((resolve) => (this.spinning = resolve));
    return { kind: 'output', output: output(`${code}\n`) };
  }

  async interrupt(): Promise<boolean> {
    if (!this.interruptible) return false;
    this.log.push('interrupt');
    if (!this.ignoresInterrupt) this.spinning?.({ kind: 'output', output: output('spun\n', { stderr: 'Traceback: ...\n', error_type: 'KeyboardInterrupt', interrupted: true }) });
    return true;
  }

  async discard(gone: boolean): Promise<void> {
    this.log.push(gone ? 'forget' : 'discard');
    this.spinning = undefined;
  }

  isLost(error: unknown): boolean {
    return error instanceof GoneError;
  }

  closedError(): Error {
    return new Error('closed');
  }
}

/** A host that echoes prompts and records the signal of each request. */
function echoHost(): SubcallHost & { signals: AbortSignal[] } {
  const signals: AbortSignal[] = [];
  return {
    signals,
    async handle(request: HostRequest, signal: AbortSignal): Promise<HostReply> {
      signals.push(signal);
      if (request.op === 'tool') return { value: null };
      if (request.prompts[0] === 'throw') throw new Error('the LM is down');
      return { results: request.prompts.map((p) => `echo:${p}`) };
    },
  };
}

function setUp(replaced = 'Python worker', graceMs = 5) {
  const transport = new FakeTransport(replaced);
  const host = echoHost();
  const repl = new RestorableRepl(host, transport, graceMs);
  return { transport, host, repl };
}

/** Loads two contexts, a reserved and a plain variable, and two tools. */
async function fill(repl: RestorableRepl): Promise<void> {
  await repl.loadContext(0, 'first');
  await repl.loadContext(1, ['a', 1]);
  await repl.setVariable('history', [{ role: 'user', content: 'q' }], true);
  await repl.setVariable('scratch', 5, false);
  await repl.registerTools([
    { name: 'lookup', kind: 'function' },
    { name: 'table', kind: 'data', value: { unit: 'kg' } },
  ]);
}

const RELOAD = ['context 0 text first', 'context 1 json ["a",1]', 'variable history=[{"role":"user","content":"q"}] reserved', 'tools lookup:function table:data={"unit":"kg"}'];

describe('RestorableRepl', () => {
  it('boots once, lazily, and reports the transport\'s info', async () => {
    const { repl, transport } = setUp();
    expect(repl.info).toBeUndefined();
    const [a, b] = await Promise.all([repl.start(), repl.start()]);
    expect(a).toBe(b);
    expect(transport.boots).toBe(1);
    expect(repl.info?.runtime).toBe('fake 1');
  });

  it('hands the cell\'s onOutput to the transport', async () => {
    const { repl } = setUp();
    const chunks: string[] = [];
    const cell = await repl.execute('live:partial', { timeoutMs: 1000, onOutput: (stream, text) => chunks.push(`${stream}:${text}`) });
    expect(chunks).toEqual(['stdout:partial']);
    expect(cell.stdout).toBe('live:partial\n');
  });

  it('a restart reloads contexts, reserved variables and tools, in that order, and the model is told which', async () => {
    const { repl, transport } = setUp();
    transport.interruptible = false;
    await fill(repl);
    transport.log.length = 0;
    const cell = await repl.execute('spin', { timeoutMs: 5 });
    // After a timeout the new process boots at once (overlapping the next LM call).
    await repl.start();
    expect(transport.log).toEqual(['run spin', 'cancel spin', 'discard', 'boot 2', ...RELOAD]);
    expect(cell).toMatchObject({ errorType: 'TimeoutError', interrupted: true, restarted: true, stdout: '', locals: [], finalAnswer: null });
    expect(cell.stderr).toBe(
      'TimeoutError: the cell ran longer than cellTimeoutMs (5 ms).\n' +
        'The REPL was restarted (its Python worker was replaced) with context, context_1, history, lookup, table reloaded; every other variable was lost and must be recomputed.\n',
    );
  });

  it('loading a context index again replaces it in the journal', async () => {
    const { repl, transport } = setUp();
    transport.interruptible = false;
    await repl.loadContext(0, 'old');
    await repl.loadContext(0, 'new');
    transport.log.length = 0;
    await repl.execute('spin', { timeoutMs: 5 });
    await repl.start();
    expect(transport.log.filter((l) => l.startsWith('context'))).toEqual(['context 0 text new']);
  });

  it('a deadline interrupts the cell first: the cell ends with KeyboardInterrupt and the process is kept', async () => {
    const { repl, transport } = setUp();
    await fill(repl);
    transport.log.length = 0;
    const cell = await repl.execute('spin', { timeoutMs: 5 });
    expect(transport.log).toEqual(['run spin', 'interrupt']);
    expect(cell).toMatchObject({ stdout: 'spun\n', errorType: 'KeyboardInterrupt', interrupted: true, restarted: false });
    expect(cell.stderr).toBe('Traceback: ...\nKeyboardInterrupt: the cell ran longer than cellTimeoutMs (5 ms), so it was interrupted. Variables set before that point are kept.\n');
    expect(transport.boots).toBe(1);
  });

  it('an interrupt that is ignored past the grace period replaces the process', async () => {
    const { repl, transport } = setUp();
    await fill(repl);
    transport.ignoresInterrupt = true;
    transport.log.length = 0;
    const cell = await repl.execute('spin', { timeoutMs: 5 });
    await repl.start();
    expect(transport.log).toEqual(['run spin', 'interrupt', 'cancel spin', 'discard', 'boot 2', ...RELOAD]);
    expect(cell).toMatchObject({ errorType: 'TimeoutError', restarted: true, interrupted: true });
    expect(cell.stderr).toContain('the cell ran longer than cellTimeoutMs (5 ms), and the cell did not stop when interrupted.\n');
    const next = await repl.execute('print(1)', { timeoutMs: 1000 });
    expect(next).toMatchObject({ stdout: 'print(1)\n', restarted: false, interrupted: false, errorType: null });
  });

  it('a stopped run interrupts the cell, and a process replaced then boots only when next needed', async () => {
    const { repl, transport } = setUp();
    transport.interruptible = false;
    await repl.start();
    const controller = new AbortController();
    const running = repl.execute('spin', { timeoutMs: 60_000, signal: controller.signal });
    controller.abort();
    const cell = await running;
    expect(cell.stderr).toContain('TimeoutError: the run was stopped.\nThe REPL was restarted');
    expect(transport.log).toEqual(['boot 1', 'run spin', 'cancel spin', 'discard']);
    await repl.execute('again', { timeoutMs: 1000 });
    expect(transport.log.slice(-2)).toEqual(['boot 2', 'run again']);
  });

  it('a process lost under a cell gives the transport\'s error type, and a new process with the journal', async () => {
    const { repl, transport } = setUp('sandbox');
    await fill(repl);
    transport.log.length = 0;
    const cell = await repl.execute('die', { timeoutMs: 1000 });
    await repl.start();
    expect(transport.log).toEqual(['run die', 'forget', 'boot 2', ...RELOAD]);
    expect(cell).toMatchObject({ errorType: 'FakeCrashError', interrupted: true, restarted: true });
    expect(cell.stderr).toBe(
      'FakeCrashError: the process died under the cell.\n' +
        'The REPL was restarted (its sandbox was replaced) with context, context_1, history, lookup, table reloaded; every other variable was lost and must be recomputed.\n',
    );
  });

  it('an operation that finds the process gone is retried once on a new one', async () => {
    const { repl, transport } = setUp();
    await repl.loadContext(0, 'kept');
    transport.goneOnce = 'setVariable';
    await repl.setVariable('history_0', ['m'], true);
    expect(transport.log).toEqual(['boot 1', 'context 0 text kept', 'variable history_0=["m"] reserved failed: gone', 'forget', 'boot 2', 'context 0 text kept', 'variable history_0=["m"] reserved']);
    expect(await repl.resolveVariable('known')).toBe('value');
    expect(await repl.resolveVariable('missing')).toBeNull();
  });

  it('the same situations give the same messages whichever transport runs the cell', async () => {
    async function messages(replaced: string): Promise<string[]> {
      const out: CellResult[] = [];
      const { repl, transport } = setUp(replaced);
      await fill(repl);
      out.push(await repl.execute('spin', { timeoutMs: 5 }));
      transport.ignoresInterrupt = true;
      out.push(await repl.execute('spin', { timeoutMs: 5 }));
      out.push(await repl.execute('die', { timeoutMs: 1000 }));
      transport.ignoresInterrupt = false;
      transport.interruptible = false;
      const stopped = new AbortController();
      stopped.abort();
      out.push(await repl.execute('spin', { timeoutMs: 1000, signal: stopped.signal }));
      return out.map((r) => `${r.errorType} ${r.interrupted} ${r.restarted} ${r.stderr.replaceAll(replaced, '<process>')}`);
    }
    const worker = await messages('Python worker');
    expect(worker).toEqual(await messages('sandbox'));
    expect(new Set(worker).size).toBe(4);
  });

  it('reset forgets everything: a restart after it reloads nothing', async () => {
    const { repl, transport } = setUp();
    transport.interruptible = false;
    await fill(repl);
    await repl.reset();
    transport.log.length = 0;
    const cell = await repl.execute('spin', { timeoutMs: 5 });
    await repl.start();
    expect(transport.log).toEqual(['run spin', 'cancel spin', 'discard', 'boot 2']);
    expect(cell.stderr).toContain('with nothing reloaded;');
  });

  it('sub-calls carry the running cell\'s signal; a failing host becomes an error reply; the signal aborts when the cell is stopped', async () => {
    const { repl, host } = setUp();
    const cell = await repl.execute('ask:hello', { timeoutMs: 1000 });
    expect(cell.stdout).toBe('{"results":["echo:hello"]}\n');
    const failed = await repl.execute('ask:throw', { timeoutMs: 1000 });
    expect(failed.stdout).toBe('{"error":"the LM is down"}\n');
    expect(host.signals).toHaveLength(2);
    // A cell that finished leaves its signal alone; a stopped one aborts it (below).
    expect(host.signals[0]!.aborted).toBe(false);
    const slow: SubcallHost & { signal?: AbortSignal } = {
      handle: (_request, signal) => {
        slow.signal = signal;
        return new Promise<HostReply>(() => undefined);
      },
    };
    const transport = new FakeTransport('Python worker');
    transport.interruptible = false;
    const stuck = new RestorableRepl(slow, transport, 5);
    await stuck.execute('ask:forever', { timeoutMs: 5 });
    expect(slow.signal?.aborted).toBe(true);
    expect((slow.signal?.reason as DOMException).name).toBe('TimeoutError');
  });

  it('after close(), start() and every call reject with the transport\'s closed error', async () => {
    const { repl, transport } = setUp();
    await repl.start();
    await repl.close();
    expect(transport.log).toEqual(['boot 1', 'discard']);
    await expect(repl.start()).rejects.toThrow('closed');
    await expect(repl.execute('print(1)', { timeoutMs: 1000 })).rejects.toThrow('closed');
    await expect(repl.loadContext(0, 'x')).rejects.toThrow('closed');
  });

  it('a close() while the process boots ends that process and rejects the boot as closed', async () => {
    const transport = new FakeTransport('sandbox');
    let finishBoot: (() => void) | undefined;
    const boot = transport.boot.bind(transport);
    transport.boot = (answer) => new Promise<ReplInfo>((resolve) => (finishBoot = () => resolve(boot(answer))));
    const repl = new RestorableRepl(echoHost(), transport, 5);
    const starting = repl.start();
    await repl.close();
    finishBoot!();
    await expect(starting).rejects.toThrow('closed');
    expect(transport.log).toEqual(['discard', 'boot 1', 'discard']);
  });
});
