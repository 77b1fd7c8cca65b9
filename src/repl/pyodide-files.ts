/**
 * The page side of "the page hands everything in": fetches Pyodide's runtime files from
 * indexURL once per page (the HTTP cache makes later visits cheap) for the isolation frame,
 * whose code cannot fetch anything.
 */
import { ReplCrashedError } from '../core/errors';
import type { PyodideFiles } from '../protocol/frame';

/**
 * Pyodide ships beside rlm-web's built files (dist/pyodide/, or assets/pyodide/ where the
 * rlm-web/vite plugin copies it). Kept in a variable so that bundlers do not try to resolve
 * a directory as an asset.
 */
const PYODIDE_DIR = './pyodide/';

/** indexURL as an absolute directory URL (default: Pyodide beside rlm-web's files). */
export function resolveIndexURL(indexURL: string | undefined): string {
  const url = new URL(indexURL ?? PYODIDE_DIR, indexURL ? globalThis.location?.href : import.meta.url).href;
  return url.endsWith('/') ? url : `${url}/`;
}

const fetched = new Map<string, Promise<PyodideFiles>>();

async function fetchFile(indexURL: string, name: string): Promise<Response> {
  const url = new URL(name, indexURL).href;
  let response: Response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new ReplCrashedError(`Pyodide failed to start: ${url} could not be fetched (${(error as Error).message}). Check environmentOptions.indexURL and the page's connect-src.`, { cause: error });
  }
  if (!response.ok) throw new ReplCrashedError(`Pyodide failed to start: ${url} answered ${response.status}. Check environmentOptions.indexURL (it must serve pyodide.mjs, pyodide.asm.mjs, pyodide.asm.wasm, python_stdlib.zip and pyodide-lock.json).`);
  return response;
}

async function fetchAll(indexURL: string): Promise<PyodideFiles> {
  const [loader, asm, wasm, stdlib, lock] = await Promise.all(
    ['pyodide.mjs', 'pyodide.asm.mjs', 'pyodide.asm.wasm', 'python_stdlib.zip', 'pyodide-lock.json'].map((name) => fetchFile(indexURL, name)),
  );
  const script = async (response: Response) => new Blob([await response.arrayBuffer()], { type: 'text/javascript' });
  return { loader: await script(loader!), asm: await script(asm!), wasm: await wasm!.blob(), stdlib: await stdlib!.blob(), lock: await lock!.text() };
}

/** Pyodide's files from `indexURL` (absolute), fetched once per page. */
export function pyodideFiles(indexURL: string): Promise<PyodideFiles> {
  let entry = fetched.get(indexURL);
  if (!entry) {
    entry = fetchAll(indexURL);
    fetched.set(indexURL, entry);
    entry.catch(() => fetched.delete(indexURL)); // a later REPL tries again
  }
  return entry;
}
