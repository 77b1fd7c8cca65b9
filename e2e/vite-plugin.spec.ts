/**
 * `rlm-web/vite` in a Vite app that has rlm-web installed in node_modules (the built
 * package: package.json + dist/, its dependencies beside it), the way an npm user's app
 * does. `vite build` re-emits the worker under assets/, so Pyodide's files must be copied
 * beside it, which only the plugin does; in dev the plugin serves Pyodide's files as they are
 * and keeps rlm-web out of dependency pre-bundling.
 */
import { cp, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { test as base, expect, type Page } from '@playwright/test';
import { build, createServer, type Plugin } from 'vite';
import { repl, startLMServer, type LMServer } from './support/lm-server';

type ServeFn = (options: { root: string; port?: number }) => Promise<{ url: string; close(): Promise<void> }>;
type AppResult = { response?: string; bridge?: string; error?: string };

const test = base.extend<{ lm: LMServer; app: string }>({
  lm: async ({}, use) => {
    const server = await startLMServer(() => repl('answer["content"] = context.upper()\nanswer["ready"] = True'));
    await use(server);
    await server.close();
  },
  // An app folder: index.html + main.js, and node_modules/rlm-web as npm would install it.
  app: async ({}, use, testInfo) => {
    const root = testInfo.outputPath('app');
    const modules = join(root, 'node_modules');
    await mkdir(join(modules, 'rlm-web'), { recursive: true });
    await mkdir(join(modules, '@anthropic-ai'), { recursive: true });
    await cp('package.json', join(modules, 'rlm-web', 'package.json'));
    await cp('dist', join(modules, 'rlm-web', 'dist'), { recursive: true });
    for (const dep of ['comlink', 'openai', 'idb', 'pyodide', '@anthropic-ai/sdk']) await symlink(resolve('node_modules', dep), join(modules, dep));
    await cp('e2e/fixtures/vite-app/index.html', join(root, 'index.html'));
    await cp('e2e/fixtures/vite-app/main.js', join(root, 'main.js'));
    await writeFile(join(root, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    await use(root);
  },
});

/** The plugin as the app imports it: `rlm-web/vite` from its node_modules. */
async function plugin(app: string): Promise<Plugin> {
  const { rlmWeb } = (await import(join(app, 'node_modules/rlm-web/dist/vite/plugin.js'))) as { rlmWeb: () => Plugin };
  return rlmWeb();
}

async function runApp(page: Page, url: string, lm: LMServer): Promise<AppResult> {
  page.on('console', (m) => m.type() === 'error' && console.log(`[app console] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[app error] ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as { appReady?: boolean }).appReady === true);
  return page.evaluate((base) => (window as unknown as { runRLM(u: string): Promise<AppResult> }).runRLM(base), lm.openaiURL);
}

for (const withPlugin of [true, false]) {
  test(`vite build of an app using the installed package ${withPlugin ? 'boots Pyodide with rlmWeb()' : 'cannot find Pyodide without the plugin'}`, async ({ page, lm, app }) => {
    test.setTimeout(120_000);
    const outDir = join(app, 'dist');
    await test.step('vite build', async () => {
      await build({ root: app, configFile: false, base: './', logLevel: 'error', build: { outDir, emptyOutDir: true }, plugins: withPlugin ? [await plugin(app)] : [] });
    });
    const { serve } = (await import('../scripts/serve.mjs' as string)) as { serve: ServeFn };
    const server = await serve({ root: outDir, port: 0 });
    try {
      const result = await test.step('run the app', () => runApp(page, server.url, lm));
      if (withPlugin) expect(result).toEqual({ response: 'HELLO FROM A VITE APP', bridge: 'jspi' });
      else expect(result.error).toMatch(/^ReplCrashedError: Pyodide failed to start/);
    } finally {
      await page.close();
      await server.close();
    }
  });
}

// Without the plugin, what the dev server does to pyodide.mjs and rlm-web depends on Vite's
// dependency optimizer and its timing (sometimes it works, sometimes the first visit breaks
// or reloads mid-boot), so only the supported set-up is asserted here.
test('vite dev server on an app using the installed package serves Pyodide with rlmWeb()', async ({ page, lm, app }) => {
  test.setTimeout(120_000);
  const server = await createServer({
    root: app,
    configFile: false,
    logLevel: 'silent',
    server: { port: 0, host: '127.0.0.1' },
    plugins: [await plugin(app)],
  });
  await server.listen();
  try {
    const result = await runApp(page, server.resolvedUrls!.local[0]!, lm);
    expect(result).toEqual({ response: 'HELLO FROM A VITE APP', bridge: 'jspi' });
  } finally {
    await page.close();
    await server.close();
  }
});
