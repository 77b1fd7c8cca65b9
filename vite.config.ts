import { copyFile, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { defineConfig, type Plugin } from 'vite';
import { isolatedSources } from './scripts/isolated-sources';
import { PYODIDE_FILES } from './src/vite/plugin';

const require = createRequire(import.meta.url);

/** Ships Pyodide's files in dist/pyodide/, next to the bundled worker (dist/worker.js). */
function copyPyodide(): Plugin {
  return {
    name: 'rlm-web:copy-pyodide',
    apply: 'build',
    async writeBundle(options) {
      const source = dirname(require.resolve('pyodide/package.json'));
      const target = join(options.dir ?? 'dist', 'pyodide');
      await mkdir(target, { recursive: true });
      await Promise.all(PYODIDE_FILES.map((f) => copyFile(join(source, f), join(target, f))));
    },
  };
}

export default defineConfig({
  // Relative URLs: the worker and Pyodide are found next to index.js wherever it is served.
  base: './',
  build: {
    target: 'es2022',
    minify: false,
    sourcemap: true,
    lib: {
      entry: { index: 'src/index.ts' },
      formats: ['es'],
    },
  },
  worker: {
    format: 'es',
    rollupOptions: { output: { entryFileNames: 'worker.js', chunkFileNames: 'worker-[name]-[hash].js' } },
  },
  optimizeDeps: { exclude: ['pyodide'] },
  // dist/sandbox.html + sandbox.js: the isolation frame's host page, for environmentOptions.sandboxURL.
  plugins: [copyPyodide(), isolatedSources({ emitHostPage: true })],
});
