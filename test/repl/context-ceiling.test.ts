/**
 * The Pyodide context ceiling: which sizes are refused before any byte moves, with which
 * error, and the browser's read failure as a typed error. Sizes are Blobs that report a size
 * without holding the bytes (nothing here allocates gigabytes); the real worker is in
 * e2e/ceiling.spec.ts.
 */
import { describe, expect, it } from 'vitest';
import { asContextReadError, contextAsText } from '../../src/core/context-input';
import { ConfigurationError, ContextReadError, ContextTooLargeError, RLMError } from '../../src/core/errors';
import type { ContextInput, ReplEnvironment, ReplInfo } from '../../src/core/types';
import type { ContextDescription } from '../../src/protocol/worker';
import type { EncodedContext } from '../../src/repl/context-bytes';
import {
  asContextMemoryError,
  checkPyodideContext,
  contextSize,
  MAX_TEXT_CONTEXT_BYTES,
  PYODIDE_RESERVED_BYTES,
  PYTHON_OBJECT_MAX_BYTES,
  WASM_MEMORY_BYTES,
} from '../../src/repl/context-ceiling';
import { RestorableRepl, type CellEnd, type ReplTransport } from '../../src/repl/restorable-repl';
import { FakeClient, makeRLM, repl, scripted } from '../core/fakes/fakes';

/** A Blob that says it has `bytes` bytes and holds none; reading it fails like a vanished file. */
class SizedBlob extends Blob {
  constructor(private readonly claimed: number) {
    super([]);
  }
  override get size(): number {
    return this.claimed;
  }
  override text(): Promise<string> {
    return Promise.reject(new DOMException('The requested file could not be read.', 'NotReadableError'));
  }
}

const GiB = 2 ** 30;
/** The largest context a fresh worker takes: its bytes and its str side by side in what Pyodide leaves. */
const ROOM = Math.floor((WASM_MEMORY_BYTES - PYODIDE_RESERVED_BYTES) / 2);

function refusal(run: () => void): ContextTooLargeError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ContextTooLargeError);
    return error as ContextTooLargeError;
  }
  throw new Error('expected a ContextTooLargeError, nothing was thrown');
}

describe('the limits', () => {
  it('are those of 32-bit WebAssembly: one object under 2^31 bytes, 4 GiB in all', () => {
    expect(PYTHON_OBJECT_MAX_BYTES).toBe(2147483647);
    expect(MAX_TEXT_CONTEXT_BYTES).toBeLessThan(PYTHON_OBJECT_MAX_BYTES);
    expect(WASM_MEMORY_BYTES).toBe(4 * GiB);
    // The memory bound is the tighter one for a single text: both copies must fit.
    expect(ROOM).toBeLessThan(MAX_TEXT_CONTEXT_BYTES);
    expect(ROOM).toBeGreaterThan(2e9);
  });

  it('measures bytes exactly and strings by a lower bound; arrays and objects are unknown', () => {
    expect(contextSize(new SizedBlob(123))).toBe(123);
    expect(contextSize(new Uint8Array(7))).toBe(7);
    expect(contextSize(new ArrayBuffer(9))).toBe(9);
    expect(contextSize(new DataView(new ArrayBuffer(16), 4, 8))).toBe(8);
    expect(contextSize('héllo')).toBe(5);
    expect(contextSize(['a', 'b'])).toBeUndefined();
    expect(contextSize({ a: 1 })).toBeUndefined();
  });
});

describe('checkPyodideContext', () => {
  it('lets through what fits, up to the last byte', () => {
    expect(() => checkPyodideContext(0, 'small text', [])).not.toThrow();
    expect(() => checkPyodideContext(0, new SizedBlob(1e9), [])).not.toThrow();
    expect(() => checkPyodideContext(0, new SizedBlob(ROOM), [])).not.toThrow();
  });

  it('refuses a context over one Python object as python_object, naming the limit and the ways around it', () => {
    const error = refusal(() => checkPyodideContext(0, new SizedBlob(3e9), []));
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error).toBeInstanceOf(RLMError);
    expect(error.name).toBe('ContextTooLargeError');
    expect(error.ceiling).toBe('python_object');
    expect(error.bytes).toBe(3e9);
    expect(error.maxBytes).toBe(MAX_TEXT_CONTEXT_BYTES);
    expect(error.message).toContain('3000000000 bytes');
    expect(error.message).toContain(String(MAX_TEXT_CONTEXT_BYTES));
    expect(error.message).toContain('32-bit');
    expect(error.message).toContain("environment: 'remote'");
    expect(error.message).toContain('file.slice(');
    expect(error.message).toContain('Nothing was read');
    expect(refusal(() => checkPyodideContext(0, new SizedBlob(MAX_TEXT_CONTEXT_BYTES + 1), [])).ceiling).toBe('python_object');
  });

  it('refuses one byte more than both copies can take as memory', () => {
    const error = refusal(() => checkPyodideContext(0, new SizedBlob(ROOM + 1), []));
    expect(error.ceiling).toBe('memory');
    expect(error.maxBytes).toBe(ROOM);
    expect(error.message).toContain('4 GiB');
    expect(error.message).toContain("environment: 'remote'");
    expect(error.message).not.toContain('earlier contexts');
  });

  it('counts the contexts the REPL already holds (persistent mode)', () => {
    const held = [new SizedBlob(1.5e9), 'x'.repeat(1000)];
    expect(() => checkPyodideContext(2, new SizedBlob(1e9), held)).not.toThrow();
    const error = refusal(() => checkPyodideContext(2, new SizedBlob(1.5e9), held));
    expect(error.ceiling).toBe('memory');
    expect(error.maxBytes).toBe(Math.floor((WASM_MEMORY_BYTES - PYODIDE_RESERVED_BYTES - 1.5e9 - 1000) / 2));
    expect(error.message).toContain('context_2');
    expect(error.message).toContain('2 contexts the REPL already holds');
    expect(error.message).toContain('persistent: false');
  });

  it('has no room at all when what is held leaves none, and says so instead of a negative size', () => {
    const error = refusal(() => checkPyodideContext(3, 'x', [new SizedBlob(2e9), new SizedBlob(2e9), new SizedBlob(1e9)]));
    expect(error.maxBytes).toBe(0);
    expect(error.message).toContain('at most 0 bytes');
  });

  it('passes arrays and objects, whose size is known only as JSON', () => {
    expect(() => checkPyodideContext(0, ['a', 'b'], [new SizedBlob(2e9)])).not.toThrow();
    expect(() => checkPyodideContext(0, { a: 1 }, [])).not.toThrow();
  });
});

describe('asContextMemoryError', () => {
  it("maps Python's MemoryError and OverflowError while loading to ContextTooLargeError", () => {
    const python = new Error('Traceback (most recent call last):\n  ...\nMemoryError');
    const mapped = asContextMemoryError(python, 1, 1_500_000_000) as ContextTooLargeError;
    expect(mapped).toBeInstanceOf(ContextTooLargeError);
    expect(mapped.ceiling).toBe('memory');
    expect(mapped.bytes).toBe(1_500_000_000);
    expect(mapped.cause).toBe(python);
    expect(mapped.message).toContain('context_1');
    const overflow = new Error("OverflowError: cannot fit 'int' into an index-sized integer");
    expect(asContextMemoryError(overflow, 0, 3e9)).toBeInstanceOf(ContextTooLargeError);
  });

  it('leaves every other error alone', () => {
    const other = new Error('UnicodeDecodeError: invalid start byte');
    expect(asContextMemoryError(other, 0, 10)).toBe(other);
    expect(asContextMemoryError('MemoryError as a string is not an error object', 0, 10)).toBe('MemoryError as a string is not an error object');
    expect(asContextMemoryError(undefined, 0, 10)).toBeUndefined();
  });
});

describe('asContextReadError', () => {
  it("turns the browser's NotReadableError into a ContextReadError that names the File", () => {
    const cause = new DOMException('The requested file could not be read.', 'NotReadableError');
    const file = new File(['abc'], 'notes.txt');
    const mapped = asContextReadError(cause, file) as ContextReadError;
    expect(mapped).toBeInstanceOf(ContextReadError);
    expect(mapped).toBeInstanceOf(RLMError);
    expect(mapped.name).toBe('ContextReadError');
    expect(mapped.fileName).toBe('notes.txt');
    expect(mapped.bytes).toBe(3);
    expect(mapped.cause).toBe(cause);
    expect(mapped.message).toContain("File 'notes.txt'");
    expect(mapped.message).toContain('pick it again');
  });

  it('does the same for the plain error a worker hands back with that name, and for a Blob', () => {
    const relayed = Object.assign(new Error('could not be read'), { name: 'NotReadableError' });
    const mapped = asContextReadError(relayed, new SizedBlob(5)) as ContextReadError;
    expect(mapped).toBeInstanceOf(ContextReadError);
    expect(mapped.fileName).toBeUndefined();
    expect(mapped.message).toContain('The context Blob (5 bytes)');
    expect(mapped.message).toContain('built in memory');
  });

  it('says a File that is gone (NotFoundError) was moved or deleted', () => {
    const mapped = asContextReadError(new DOMException('not found', 'NotFoundError'), new File(['abc'], 'gone.txt')) as ContextReadError;
    expect(mapped).toBeInstanceOf(ContextReadError);
    expect(mapped.message).toContain('(NotFoundError)');
    expect(mapped.message).toContain('moved or deleted');
    expect(mapped.message).toContain('Pick it again');
  });

  it('leaves other errors alone', () => {
    const other = new DOMException('aborted', 'AbortError');
    expect(asContextReadError(other, new SizedBlob(1))).toBe(other);
  });

  it('is what a plain call at the depth limit throws when it reads the context', async () => {
    await expect(contextAsText(new SizedBlob(10))).rejects.toBeInstanceOf(ContextReadError);
  });
});

/** A transport that only records what it is asked to check and load. */
class CheckingTransport implements ReplTransport {
  readonly replaced = 'test process';
  readonly checks: { index: number; held: readonly ContextInput[] }[] = [];
  readonly loads: number[] = [];
  checkContext(index: number, context: ContextInput, held: readonly ContextInput[]): void {
    this.checks.push({ index, held });
    checkPyodideContext(index, context, held);
  }
  async boot(): Promise<ReplInfo> {
    return { bridge: 'jspi', interruptible: false, bootMs: 0, runtime: 'test' };
  }
  async loadContext(index: number, encoded: EncodedContext): Promise<ContextDescription> {
    this.loads.push(index);
    return { type: 'str', length: 'blob' in encoded ? encoded.blob.size : encoded.bytes.byteLength };
  }
  async setVariable(): Promise<void> {}
  async registerTools(): Promise<void> {}
  async resolveVariable(): Promise<string | null> {
    return null;
  }
  async reset(): Promise<void> {}
  async run(): Promise<CellEnd> {
    return { kind: 'lost', errorType: 'TestError', message: 'no cells here.' };
  }
  async interrupt(): Promise<boolean> {
    return false;
  }
  async discard(): Promise<void> {}
  isLost(): boolean {
    return false;
  }
  closedError(): Error {
    return new Error('closed');
  }
}

describe('RestorableRepl', () => {
  const host = { handle: async () => ({ results: [] }) };

  it('checks a context against the contexts below its index before loading it', async () => {
    const transport = new CheckingTransport();
    const env = new RestorableRepl(host, transport, 1000);
    const first = new SizedBlob(1.5e9);
    await env.loadContext(0, first);
    await env.loadContext(1, 'second');
    expect(transport.checks.map((c) => c.index)).toEqual([0, 1]);
    expect(transport.checks[1]!.held).toEqual([first]);
    // Loading context_0 again replaces it: it is not counted next to itself.
    await env.loadContext(0, new SizedBlob(1.5e9));
    expect(transport.checks[2]!.held).toEqual([]);
    // Too much next to what context_0 holds: refused, nothing loaded.
    await expect(env.loadContext(1, new SizedBlob(1.5e9))).rejects.toMatchObject({ name: 'ContextTooLargeError', ceiling: 'memory' });
    expect(transport.loads).toEqual([0, 1, 0]);
  });
});

describe('a run with a context over the ceiling', () => {
  it('fails with ContextTooLargeError before its first LM call and before anything is loaded', async () => {
    const root = new FakeClient('root-model', scripted(repl('print(1)')));
    let made: ReplEnvironment | undefined;
    const { rlm } = makeRLM({
      root,
      onRepl: (env) => {
        made = env;
        (env as ReplEnvironment).checkContext = (index, context) => checkPyodideContext(index, context, []);
      },
    });
    const failure = await rlm.completion(new SizedBlob(3e9), { rootPrompt: 'How long is it?' }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ContextTooLargeError);
    expect(root.calls).toHaveLength(0);
    expect((made as unknown as { loaded: unknown[] }).loaded).toEqual([]);
  });
});
