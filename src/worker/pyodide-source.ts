/// <reference lib="webworker" />
/**
 * Where the worker gets Pyodide from, and how it boots it (with or without a memory
 * snapshot). Two sources: a URL (`isolation: 'none'`: the worker fetches Pyodide's files
 * from indexURL itself) or files handed in by the page through the isolation frame
 * (`isolation: 'sandbox'`: the worker cannot fetch anything, so every request Pyodide's
 * loader makes at boot is answered from memory, and the wasm arrives compiled).
 */
import type { PyodideAPI } from 'pyodide';
import type { HandedFiles } from '../protocol/frame';

type LoadPyodide = typeof import('pyodide').loadPyodide;
type PyodideConfig = NonNullable<Parameters<LoadPyodide>[0]>;

export interface PyodideSource {
  version: string;
  load(config: PyodideConfig): Promise<PyodideAPI>;
}

export async function sourceFromURL(indexURL: string): Promise<PyodideSource> {
  const { loadPyodide, version } = (await import(/* @vite-ignore */ new URL('pyodide.mjs', indexURL).href)) as typeof import('pyodide');
  return { version, load: (config) => loadPyodide({ ...config, indexURL }) };
}

/**
 * A base URL that is never fetched: Pyodide's loader derives file URLs from indexURL, and
 * the requests it makes under this one are answered from the handed-in files.
 */
const HANDED_INDEX = 'https://rlm-web.invalid/pyodide/';

async function importBlob<T>(blob: Blob): Promise<T> {
  const url = URL.createObjectURL(blob);
  try {
    return (await import(/* @vite-ignore */ url)) as T;
  } finally {
    URL.revokeObjectURL(url);
  }
}

export async function sourceFromFiles(files: HandedFiles): Promise<PyodideSource> {
  const { loadPyodide, version } = await importBlob<typeof import('pyodide')>(files.loader);
  const asm = await importBlob<{ default: NonNullable<PyodideConfig['createPyodideModule']> }>(files.asm);
  return {
    version,
    load: (config) =>
      whileServing(files, () =>
        loadPyodide({ ...config, indexURL: HANDED_INDEX, packageBaseUrl: HANDED_INDEX, lockFileContents: files.lock, createPyodideModule: asm.default }),
      ),
  };
}

/**
 * Runs `boot` with `fetch` answering the loader's two requests (the stdlib zip and the
 * wasm) from memory and `WebAssembly.instantiateStreaming` instantiating the frame's
 * compiled module; both are put back afterwards, so Python code sees the real, CSP-bound
 * `fetch`.
 */
async function whileServing<T>(files: HandedFiles, boot: () => Promise<T>): Promise<T> {
  const scope = self as unknown as { fetch: typeof fetch };
  const realFetch = scope.fetch;
  const realInstantiate = WebAssembly.instantiateStreaming;
  scope.fetch = async (input: RequestInfo | URL) => {
    const url = input instanceof Request ? input.url : String(input);
    if (url === `${HANDED_INDEX}python_stdlib.zip`) return new Response(files.stdlib);
    if (url === `${HANDED_INDEX}pyodide.asm.wasm`) return new Response(null, { headers: { 'content-type': 'application/wasm' } });
    throw new TypeError(`rlm-web: ${url} is not among the files the page handed in`);
  };
  WebAssembly.instantiateStreaming = async (_source, imports) => ({ module: files.wasm, instance: await WebAssembly.instantiate(files.wasm, imports) });
  try {
    return await boot();
  } finally {
    scope.fetch = realFetch;
    WebAssembly.instantiateStreaming = realInstantiate;
  }
}

export interface Booted {
  pyodide: PyodideAPI;
  /** 'loaded': from the given snapshot; 'made': booted plainly and made `made`; 'none'. */
  snapshot: 'loaded' | 'made' | 'none';
  /** A fresh snapshot for the page to store (taken before any user code ran). */
  made?: Uint8Array | undefined;
}

/**
 * Boots from `snapshot` bytes when given (falling back to a plain boot if they do not
 * load), or, with `snapshot === true`, boots plainly, makes a snapshot and reboots from it:
 * an instance booted to make a snapshot runs Python→JS calls ~3× slower (measured).
 */
export async function bootPyodide(source: PyodideSource, config: PyodideConfig, snapshot: Uint8Array | boolean): Promise<Booted> {
  if (snapshot instanceof Uint8Array) {
    try {
      return { pyodide: await source.load({ ...config, _loadSnapshot: snapshot }), snapshot: 'loaded' };
    } catch {
      // Another build's snapshot, or damaged: make a new one.
    }
  }
  if (snapshot === false) return { pyodide: await source.load(config), snapshot: 'none' };
  const maker = await source.load({ ...config, _makeSnapshot: true });
  const made = maker.makeMemorySnapshot();
  try {
    return { pyodide: await source.load({ ...config, _loadSnapshot: made }), snapshot: 'made', made };
  } catch {
    return { pyodide: maker, snapshot: 'none' };
  }
}
