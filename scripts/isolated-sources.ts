/**
 * Build-time plugin (not shipped): bundles the two scripts that run inside the isolation
 * frame — the frame host (a classic script) and the isolated REPL worker (an ES module
 * with Comlink and the Python runtime inlined) — and exposes their text to the page as
 * `virtual:rlm-web/isolated-sources`. The page hands that text into an opaque-origin frame
 * as blobs: code inside the frame can never fetch anything, its own code included.
 *
 * With `emitHostPage`, the build also writes `sandbox.html`, the same frame document as a
 * real page for `environmentOptions.sandboxURL` (pages whose CSP forbids inline scripts,
 * and extensions, which list it under `sandbox.pages`).
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { build, type Plugin, type Rollup } from 'vite';

const VIRTUAL_ID = 'virtual:rlm-web/isolated-sources';
const RESOLVED_ID = `\0${VIRTUAL_ID}`;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const HOST_ENTRY = fileURLToPath(new URL('../src/frame/host.ts', import.meta.url));
const WORKER_ENTRY = fileURLToPath(new URL('../src/worker/isolated.ts', import.meta.url));

/**
 * The frame's policy: its one inline script (by hash), modules and workers from blobs the
 * page handed in, wasm, and no connection of any kind. A page's own CSP applies on top in
 * an srcdoc frame; an extension's `content_security_policy.sandbox` applies on top of
 * sandbox.html.
 */
function framePolicy(hostHash: string): string {
  return `default-src 'none'; script-src '${hostHash}' blob: 'wasm-unsafe-eval'; worker-src blob:; connect-src 'none'`;
}

/**
 * The frame's whole document: used as the srcdoc of the default frame and shipped as
 * sandbox.html. Self-contained (no subresource), so it also starts on cross-origin isolated
 * pages whose files are served with `Cross-Origin-Resource-Policy: same-origin`, which an
 * opaque-origin frame could not load.
 */
function hostPage(host: string): { html: string; hash: string } {
  if (/<\/script/i.test(host)) throw new Error('rlm-web: the frame host script must not contain "</script"');
  const hash = `sha256-${createHash('sha256').update(host).digest('base64')}`;
  const html = [
    '<!doctype html>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${framePolicy(hash)}">`,
    '<title>rlm-web sandbox</title>',
    '<!-- rlm-web runs Python here, in an opaque origin with no network: see docs/architecture.md, "Isolation". -->',
    `<script>${host}</script>`,
    '',
  ].join('\n');
  return { html, hash };
}

async function bundle(entry: string, format: 'es' | 'iife'): Promise<{ code: string; files: string[] }> {
  const output = await build({
    configFile: false,
    root: ROOT,
    logLevel: 'warn',
    build: {
      write: false,
      target: 'es2022',
      minify: false,
      sourcemap: false,
      emptyOutDir: false,
      lib: { entry, formats: [format], name: 'rlmWebFrame', fileName: () => 'out.js' },
      rollupOptions: { output: { codeSplitting: false } },
    },
  });
  const results = (Array.isArray(output) ? output : [output]) as Rollup.RollupOutput[];
  const chunks = results.flatMap((r) => r.output).filter((o): o is Rollup.OutputChunk => o.type === 'chunk');
  if (chunks.length !== 1 || !chunks[0]) throw new Error(`rlm-web: bundling ${entry} gave ${chunks.length} chunks, expected one`);
  return { code: chunks[0].code, files: chunks[0].moduleIds.filter((id) => id.startsWith(ROOT) && !id.includes('node_modules')) };
}

/** What other build plugins can ask of isolatedSources (e.g. an extension's manifest needs the host's hash). */
export interface IsolatedSourcesApi {
  /** The frame document and the CSP hash of its inline host script, as emitted. */
  hostPage(): Promise<{ html: string; hash: string }>;
}

export function isolatedSources(options: { emitHostPage?: boolean } = {}): Plugin<IsolatedSourcesApi> & { api: IsolatedSourcesApi } {
  let sources: Promise<{ host: string; worker: string; files: string[] }> | undefined;
  const load = () =>
    (sources ??= Promise.all([bundle(HOST_ENTRY, 'iife'), bundle(WORKER_ENTRY, 'es')]).then(([host, worker]) => ({
      host: host.code,
      worker: worker.code,
      files: [...host.files, ...worker.files],
    })));
  return {
    name: 'rlm-web:isolated-sources',
    api: { hostPage: async () => hostPage((await load()).host) },
    resolveId(id) {
      return id === VIRTUAL_ID ? RESOLVED_ID : undefined;
    },
    async load(id) {
      if (id !== RESOLVED_ID) return undefined;
      const { host, worker, files } = await load();
      for (const file of files) this.addWatchFile(file);
      const page = hostPage(host);
      return [
        `export const HOST_PAGE = ${JSON.stringify(page.html)};`,
        `export const HOST_SCRIPT_HASH = ${JSON.stringify(page.hash)};`,
        `export const WORKER_SOURCE = ${JSON.stringify(worker)};`,
      ].join('\n');
    },
    watchChange(id) {
      if (sources) void sources.then(({ files }) => files.includes(id) && (sources = undefined));
    },
    configureServer(server) {
      if (!options.emitHostPage) return;
      server.middlewares.use(async (req, res, next) => {
        const path = (req.url ?? '').split('?')[0] ?? '';
        if (path.endsWith('/sandbox.html')) res.setHeader('content-type', 'text/html; charset=utf-8').end(hostPage((await load()).host).html);
        else next();
      });
    },
    async generateBundle() {
      if (!options.emitHostPage) return;
      this.emitFile({ type: 'asset', fileName: 'sandbox.html', source: hostPage((await load()).host).html });
    },
  };
}
