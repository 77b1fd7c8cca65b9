/**
 * The browser extension (extension/): `npm run build:extension` writes the unpacked
 * extension to extension-dist/ (load it with "Load unpacked") and a zip of it for a store.
 * @crxjs/vite-plugin reads extension/manifest.json, bundles what it names (the service
 * worker) plus the side panel page, and builds the content script as a self-contained IIFE
 * (`?iife` import in the panel). The panel imports the library's public entry (src/index.ts),
 * like the demo, and `rlm-web/vite` copies Pyodide next to the bundled REPL worker: the
 * package carries all of its code (no remote code).
 */
import { fileURLToPath } from 'node:url';
import { crx, type CrxPlugin } from '@crxjs/vite-plugin';
import { defineConfig } from 'vite';
import manifest from './extension/manifest.json' with { type: 'json' };
import { isolatedSources, type IsolatedSourcesApi } from './scripts/isolated-sources';
import { rlmWeb } from './src/vite/plugin';
import { LM_CONNECT_SOURCES } from './ui/settings';

const root = fileURLToPath(new URL('./extension', import.meta.url));

/**
 * crxjs lists a script imported with `?iife` under web_accessible_resources (for loaders
 * that import it from a page) and also emits its ES-module form. The panel injects it with
 * chrome.scripting.executeScript, which needs neither; a web-accessible file would only let
 * any site detect the extension. This drops both.
 */
function contentScriptNotWebAccessible(): CrxPlugin {
  return {
    name: 'rlm-web:content-script-not-web-accessible',
    enforce: 'post',
    generateBundle(_options, bundle) {
      for (const [name, item] of Object.entries(bundle)) {
        if (item.type === 'chunk' && item.isEntry && item.facadeModuleId?.endsWith('/extension/content.ts')) delete bundle[name];
      }
    },
    renderCrxManifest(manifest) {
      const kept = manifest.web_accessible_resources?.filter((war) => war.resources.some((r) => r !== 'content.js'));
      if (kept?.length) manifest.web_accessible_resources = kept;
      else delete manifest.web_accessible_resources;
      return manifest;
    },
  };
}

/**
 * Python runs in rlm-web's isolation frame (docs/architecture.md, "Isolation"), here the
 * emitted sandbox.html listed as a sandbox page: the panel's CSP forbids the default srcdoc
 * frame's inline script. Listed at render time, not in extension/manifest.json, because
 * crxjs would otherwise rebuild the page as an HTML entry (and change the inline script its
 * CSP allows by hash). The manifest's sandbox policy applies on top of the page's own: the
 * host script by hash, workers and modules from the blobs the panel hands in, wasm, and no
 * connection of any kind.
 */
function sandboxPage(isolation: { api: IsolatedSourcesApi }): CrxPlugin {
  return {
    name: 'rlm-web:extension-sandbox-page',
    async renderCrxManifest(manifest) {
      const { hash } = await isolation.api.hostPage();
      manifest.sandbox = { pages: ['sandbox.html'] };
      manifest.content_security_policy = {
        ...manifest.content_security_policy,
        sandbox: `sandbox allow-scripts; default-src 'none'; script-src '${hash}' blob: 'wasm-unsafe-eval'; worker-src blob:; connect-src 'none'`,
      };
      return manifest;
    },
  };
}

/**
 * The extension pages' CSP (the side panel) gets a `connect-src`: its own files and the LM
 * endpoints the settings offer (the hosted presets, a server on this computer), the list the
 * demo's CSP has. Script that reached the panel cannot send what it finds anywhere else; a
 * client's own requests are also pinned to its one origin (src/clients/pinned-fetch.ts).
 * Rendered here so that it follows ui/settings.ts.
 */
function panelConnectSources(): CrxPlugin {
  return {
    name: 'rlm-web:extension-connect-src',
    renderCrxManifest(manifest) {
      const pages = manifest.content_security_policy?.extension_pages;
      if (!pages || /connect-src/.test(pages)) throw new Error('extension/manifest.json: extension_pages must be set, without connect-src (the build adds it).');
      manifest.content_security_policy = { ...manifest.content_security_policy, extension_pages: `${pages}; connect-src 'self' ${LM_CONNECT_SOURCES.join(' ')}` };
      return manifest;
    },
  };
}

const isolation = isolatedSources({ emitHostPage: true });

export default defineConfig({
  root,
  build: {
    outDir: fileURLToPath(new URL('./extension-dist', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    rollupOptions: { input: { panel: fileURLToPath(new URL('./extension/panel.html', import.meta.url)) } },
  },
  plugins: [crx({ manifest }), rlmWeb(), isolation, sandboxPage(isolation), panelConnectSources(), contentScriptNotWebAccessible()],
});
