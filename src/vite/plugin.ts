/**
 * `rlm-web/vite`: the Vite plugin for apps that use rlm-web.
 *
 * rlm-web's REPL worker loads Pyodide from `./pyodide/` next to its own URL. When Vite
 * bundles an app, the worker is re-emitted under the app's assets folder, so Pyodide's
 * runtime files have to be put beside it; in dev they have to be served from wherever the
 * worker happens to be. This plugin does both, and keeps Vite's dependency pre-bundling away
 * from rlm-web and pyodide (pre-bundling moves the worker and reloads the page mid-boot).
 *
 * @example
 * // vite.config.ts
 * import { defineConfig } from 'vite';
 * import { rlmWeb } from 'rlm-web/vite';
 * export default defineConfig({ plugins: [rlmWeb()] });
 */
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, posix } from 'node:path';
import type { Plugin, ResolvedConfig } from 'vite';

/** Pyodide's runtime: its ES module loader plus the four files it fetches at boot. */
export const PYODIDE_FILES = ['pyodide.mjs', 'pyodide.asm.mjs', 'pyodide.asm.wasm', 'python_stdlib.zip', 'pyodide-lock.json'] as const;

const CONTENT_TYPES: Record<string, string> = {
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.zip': 'application/zip',
  '.json': 'application/json; charset=utf-8',
};

/** Text only rlm-web's worker contains: how the plugin finds the worker among the output files. */
const WORKER_MARKER = 'pyodide.mjs';

export interface RlmWebPluginOptions {
  /**
   * Directory holding Pyodide's files. Default: the `pyodide` package rlm-web depends on,
   * resolved from this plugin's location.
   */
  pyodideDir?: string | undefined;
  /**
   * Copy Pyodide's files next to the bundled worker at build time. Turn off when
   * `environmentOptions.indexURL` points Pyodide at a CDN. Default: true.
   */
  copyPyodide?: boolean | undefined;
}

function resolvePyodideDir(): string {
  const require = createRequire(import.meta.url);
  try {
    return dirname(require.resolve('pyodide/package.json'));
  } catch {
    // An app that installed rlm-web gets pyodide as rlm-web's dependency.
    const fromRlm = createRequire(require.resolve('rlm-web/package.json'));
    return dirname(fromRlm.resolve('pyodide/package.json'));
  }
}

/** The folder of every emitted file that is rlm-web's worker. */
function workerFolders(bundle: Record<string, { type: string; fileName: string; code?: string; source?: string | Uint8Array }>): Set<string> {
  const folders = new Set<string>();
  for (const item of Object.values(bundle)) {
    if (!item.fileName.endsWith('.js') && !item.fileName.endsWith('.mjs')) continue;
    const text = item.type === 'chunk' ? item.code : typeof item.source === 'string' ? item.source : item.source ? new TextDecoder().decode(item.source) : '';
    // The worker names its Pyodide loader and registers the Python runtime; the page does neither.
    if (text?.includes(WORKER_MARKER) && text.includes('rlm_runtime')) folders.add(posix.dirname(item.fileName));
  }
  return folders;
}

/**
 * The rlm-web Vite plugin: excludes rlm-web and pyodide from dependency pre-bundling, builds
 * workers as ES modules (Pyodide needs a module worker), copies Pyodide's runtime next to
 * the bundled worker at build time, and serves it under any `.../pyodide/` path in dev.
 */
export function rlmWeb(options: RlmWebPluginOptions = {}): Plugin {
  let config: ResolvedConfig | undefined;
  let source: string | undefined;
  const pyodideDir = () => (source ??= options.pyodideDir ?? resolvePyodideDir());
  const pattern = new RegExp(`/pyodide/(${PYODIDE_FILES.map((f) => f.replace(/\./g, '\\.')).join('|')})$`);

  return {
    name: 'rlm-web',
    config() {
      return {
        optimizeDeps: { exclude: ['rlm-web', 'pyodide'] },
        worker: { format: 'es' },
      };
    },
    configResolved(resolved) {
      config = resolved;
    },
    configureServer(server) {
      // Registered directly (not returned) so it runs before Vite's transform middleware:
      // pyodide.mjs must reach the worker as it is.
      server.middlewares.use((req, res, next) => {
        const path = new URL(req.url ?? '/', 'http://x').pathname;
        const match = pattern.exec(path);
        if (!match) return next();
        const file = join(pyodideDir(), match[1]!);
        stat(file).then(
          (info) => {
            res.setHeader('content-type', CONTENT_TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream');
            res.setHeader('content-length', String(info.size));
            // A long max-age lets Chromium cache the compiled wasm (a much faster second boot).
            res.setHeader('cache-control', 'public, max-age=31536000, immutable');
            createReadStream(file).pipe(res);
          },
          () => next(),
        );
      });
    },
    async writeBundle(output, bundle) {
      if (options.copyPyodide === false) return;
      // Server (SSR) builds never run the worker.
      if ((this as { environment?: { config?: { consumer?: string } } }).environment?.config?.consumer === 'server') return;
      const outDir = output.dir ?? (output.file ? dirname(output.file) : config?.build.outDir ?? 'dist');
      const folders = workerFolders(bundle as Parameters<typeof workerFolders>[0]);
      if (folders.size === 0) {
        this.warn("rlm-web's worker is not in this bundle, so Pyodide's files were not copied. If the app uses rlm-web, set environmentOptions.indexURL to where Pyodide's files are served.");
        return;
      }
      for (const folder of folders) {
        const target = join(outDir, folder, 'pyodide');
        await mkdir(target, { recursive: true });
        await Promise.all(PYODIDE_FILES.map((f) => copyFile(join(pyodideDir(), f), join(target, f))));
      }
    },
  };
}

export default rlmWeb;
