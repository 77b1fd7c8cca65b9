/**
 * What one Pyodide worker can hold, checked before a context's bytes move. Pyodide is 32-bit
 * WebAssembly: a Python object's size is a 32-bit signed integer (under 2 GiB), and the
 * worker addresses 4 GiB in all. A text context arrives as UTF-8 bytes and becomes one `str`,
 * so for a moment the worker holds both: about twice the context's size.
 */
import { ContextTooLargeError } from '../core/errors';
import type { ContextInput } from '../core/types';

/** The largest Python object on wasm32: PY_SSIZE_T_MAX, 2^31 − 1 bytes. */
export const PYTHON_OBJECT_MAX_BYTES = 2 ** 31 - 1;
/**
 * The largest text context: one `str` of that many UTF-8 bytes (ASCII) plus its header fits
 * under {@link PYTHON_OBJECT_MAX_BYTES}, and so does the bytearray it is decoded from.
 */
export const MAX_TEXT_CONTEXT_BYTES = PYTHON_OBJECT_MAX_BYTES - 64;
/** What a 32-bit WebAssembly memory can grow to: 4 GiB. */
export const WASM_MEMORY_BYTES = 2 ** 32;
/** Pyodide, the standard library and the rlm runtime once booted (≈31 MB measured), plus headroom. */
export const PYODIDE_RESERVED_BYTES = 64 * 2 ** 20;

/**
 * A context's size as Python will hold it: exact for bytes, Blobs and Files; a lower bound
 * for a string (its length: one byte per character at least); undefined for arrays and
 * objects, whose size is known only once they are JSON.
 */
export function contextSize(context: ContextInput): number | undefined {
  if (typeof context === 'string') return context.length;
  if (typeof Blob !== 'undefined' && context instanceof Blob) return context.size;
  if (context instanceof ArrayBuffer || ArrayBuffer.isView(context)) return context.byteLength;
  return undefined;
}

function formatBytes(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  return `${bytes} bytes`;
}

const REMOTE_WAY = "environment: 'remote' runs native 64-bit Python, where the proxy's --max-context (default 2 GiB) is the limit";

/**
 * Throws {@link ContextTooLargeError} when a Pyodide worker that holds the contexts `held`
 * cannot load `context` as `context_<index>`: a text over one Python object's limit, or more
 * than the worker's memory can take while its bytes become a `str`. Sizes it cannot know
 * before encoding (arrays, objects) pass; where they do not fit, Python's MemoryError is
 * mapped by the transport instead.
 */
export function checkPyodideContext(index: number, context: ContextInput, held: readonly ContextInput[]): void {
  const bytes = contextSize(context);
  if (bytes === undefined) return;
  const name = index === 0 ? 'context' : `context_${index}`;
  if (bytes > MAX_TEXT_CONTEXT_BYTES) {
    throw new ContextTooLargeError(
      `The ${name} is ${formatBytes(bytes)} (${bytes} bytes): more than one Python str can hold in Pyodide, where WebAssembly is 32-bit and one object holds at most ${MAX_TEXT_CONTEXT_BYTES} bytes (2 GiB). ` +
        `Nothing was read. Ways around it: ${REMOTE_WAY}; or pass only the part the question is about (file.slice(start, end), under 2 GiB and under half of 4 GiB with what else the REPL holds).`,
      'python_object',
      bytes,
      MAX_TEXT_CONTEXT_BYTES,
    );
  }
  let heldBytes = 0;
  for (const other of held) heldBytes += contextSize(other) ?? 0;
  // While loading, the bytes and the str they become are both in the worker's memory.
  const room = Math.max(0, Math.floor((WASM_MEMORY_BYTES - PYODIDE_RESERVED_BYTES - heldBytes) / 2));
  if (bytes > room) {
    const others = held.length === 0 ? '' : `, next to the ${held.length} context${held.length === 1 ? '' : 's'} the REPL already holds (${formatBytes(heldBytes)} at least)`;
    throw new ContextTooLargeError(
      `The ${name} is ${formatBytes(bytes)} (${bytes} bytes); loading it takes about twice that in the Python worker (its bytes and the str they become)${others}: ` +
        `more than the 4 GiB a 32-bit WebAssembly worker can address, so at most ${room} bytes fit. Nothing was read. ` +
        `Ways around it: ${REMOTE_WAY}; ${held.length === 0 ? '' : 'a fresh RLM (or persistent: false), which drops the earlier contexts; '}or pass only the part the question is about.`,
      'memory',
      bytes,
      room,
    );
  }
}

/**
 * Python's MemoryError or OverflowError while it loaded a context of `bytes` UTF-8 bytes (a size the checks could not
 * predict: a JSON value, non-ASCII text) as a {@link ContextTooLargeError}; other errors unchanged.
 */
export function asContextMemoryError(error: unknown, index: number, bytes: number): unknown {
  const message = (error as { message?: unknown } | null)?.message;
  if (typeof message !== 'string' || !/\b(MemoryError|OverflowError)\b/.test(message)) return error;
  const name = index === 0 ? 'context' : `context_${index}`;
  return new ContextTooLargeError(
    `Python ran out of memory loading the ${name}${bytes > 0 ? ` (${formatBytes(bytes)})` : ''}: Pyodide's worker is 32-bit WebAssembly (4 GiB in all, one object under 2 GiB), and a context takes more than its UTF-8 size once in Python (non-ASCII text up to 4 bytes a character, a JSON value its objects). ` +
      `Ways around it: ${REMOTE_WAY}; or pass a smaller part.`,
    'memory',
    bytes,
    Math.floor((WASM_MEMORY_BYTES - PYODIDE_RESERVED_BYTES) / 2),
    { cause: error },
  );
}
