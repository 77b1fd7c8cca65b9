/**
 * The demo page as a static site: `npm run build:demo` writes demo-dist/, which works from
 * any static host and any sub-path (relative base). The page imports the library's source
 * (its public entry, src/index.ts) and dogfoods the `rlm-web/vite` plugin for Pyodide's files.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { isolatedSources } from './scripts/isolated-sources';
import { rlmWeb } from './src/vite/plugin';

export default defineConfig({
  root: fileURLToPath(new URL('./demo', import.meta.url)),
  base: './',
  build: {
    outDir: fileURLToPath(new URL('./demo-dist', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
  },
  server: { port: 5173 },
  preview: { port: 5173 },
  // The demo's CSP forbids inline scripts: its isolation frame is the emitted sandbox.html.
  plugins: [rlmWeb(), isolatedSources({ emitHostPage: true })],
});
