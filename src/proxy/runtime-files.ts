/**
 * The Python runtime shipped into every sandbox: rlm_runtime.py (the same module Pyodide
 * runs) and rlm_stdio.py (its JSON-lines entry point). The process starts as
 * `python3 -u -c BOOTSTRAP`; the bootstrap reads the two files from stdin (a length line,
 * then that many bytes of JSON), writes them to a temporary folder and runs the loop. So no
 * provider needs a file API, and a sandbox image needs nothing but python3.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const FILES = ['rlm_runtime.py', 'rlm_stdio.py'] as const;

/** Reads stdin with os.read so that nothing is left in a Python buffer for the loop. */
const BOOTSTRAP_SOURCE = [
  'import json, os, sys, tempfile',
  'def _read(n):',
  '    out = bytearray()',
  '    while len(out) < n:',
  '        b = os.read(0, n - len(out))',
  '        if not b: sys.exit(3)',
  '        out.extend(b)',
  '    return bytes(out)',
  'head = bytearray()',
  'while not head.endswith(b"\\n"):',
  '    b = os.read(0, 1)',
  '    if not b: sys.exit(3)',
  '    head.extend(b)',
  'files = json.loads(_read(int(head)).decode("utf-8"))',
  'folder = tempfile.mkdtemp(prefix="rlm-web-")',
  'for name, text in files.items():',
  '    with open(os.path.join(folder, os.path.basename(name)), "w", encoding="utf-8") as f:',
  '        f.write(text)',
  'sys.path.insert(0, folder)',
  'import rlm_stdio',
  'rlm_stdio.main()',
].join('\n');

/** The argv that starts the runtime: no quoting problems in any shell (e2b runs a string). */
export const RUNTIME_ARGV: readonly string[] = [
  'python3',
  '-u',
  '-c',
  `import base64;exec(base64.b64decode('${Buffer.from(BOOTSTRAP_SOURCE).toString('base64')}').decode())`,
];

/** Finds src/python (running from source) or dist/proxy/python (built). */
function pythonFolder(): string {
  for (const candidate of ['./python/', '../python/']) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url));
    if (existsSync(`${dir}rlm_runtime.py`) && existsSync(`${dir}rlm_stdio.py`)) return dir;
  }
  throw new Error('rlm-web-proxy: rlm_runtime.py / rlm_stdio.py not found next to the proxy (reinstall rlm-web).');
}

let cached: string | undefined;

/** What the proxy writes first to every new process's stdin. */
export function runtimePayload(): string {
  if (cached === undefined) {
    const dir = pythonFolder();
    const files = Object.fromEntries(FILES.map((name) => [name, readFileSync(`${dir}${name}`, 'utf8')]));
    const json = JSON.stringify(files);
    cached = `${Buffer.byteLength(json)}\n${json}`;
  }
  return cached;
}
