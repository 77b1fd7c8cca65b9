/**
 * `rlm-web/vite` in a Vite app that imports the *built* package by name, the way an npm
 * user's app does: `vite build` re-emits the worker under assets/, so Pyodide's files must
 * be copied beside it. Without the plugin the REPL cannot boot; with it, it does.
 */
import { existsSync } from 'node:fs';
import { test as base, expect } from '@playwright/test';
import { build, createServer } from 'vite';
import { repl, startLMServer, type LMServer } from './support/lm-server';

type ServeFn = (options: { root: string; port?: number }) => Promise<{ url: string; close(): Promise<void> }>;

const test = base.extend<{ lm: LMServer }>({
  lm: async ({}, use) => {
    const server = await startLMServer(() => repl('answer["content"] = context.upper()\nanswer["ready"] = True'));
    await use(server);
    await server.close();
  },
});

async function plugin(): Promise<import('vite').Plugin> {
  const { rlmWeb } = (await import('../dist/vite/plugin.js' as string)) as { rlmWeb: () => import('vite').Plugin };
  return rlmWeb();
}

type AppResult = { response?: string; bridge?: string; error?: string };

async function runApp(page: import('@playwright/test').Page, url: string, lm: LMServer): Promise<AppResult> {
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as { appReady?: boolean }).appReady === true);
  return page.evaluate((base) => (window as unknown as { runRLM(u: string): Promise<AppResult> }).runRLM(base), lm.openaiURL);
}

async function buildApp(outDir: string, withPlugin: boolean): Promise<void> {
  await build({
    root: 'e2e/fixtures/vite-app',
    configFile: false,
    base: './',
    logLevel: 'error',
    build: { outDir, emptyOutDir: true },
    plugins: withPlugin ? [await plugin()] : [],
  });
}

for (const withPlugin of [true, false]) {
  test(`a Vite app bundling the built package ${withPlugin ? 'boots Pyodide with rlmWeb()' : 'cannot find Pyodide without the plugin'}`, async ({ page, lm }, testInfo) => {
    test.setTimeout(120_000);
    const outDir = testInfo.outputPath('app-dist');
    await buildApp(outDir, withPlugin);
    expect(existsSync(`${outDir}/assets`)).toBe(true);
    const { serve } = (await import('../scripts/serve.mjs' as string)) as { serve: ServeFn };
    const server = await serve({ root: outDir, port: 0 });
    try {
      const result = await runApp(page, server.url, lm);
      if (withPlugin) {
        expect(result).toEqual({ response: 'HELLO FROM A VITE APP', bridge: 'jspi' });
      } else {
        expect(result.error).toMatch(/^ReplCrashedError: Pyodide failed to start/);
      }
    } finally {
      await server.close();
    }
  });
}

test('the Vite dev server with rlmWeb() serves Pyodide to the worker', async ({ page, lm }) => {
  test.setTimeout(120_000);
  const server = await createServer({
    root: 'e2e/fixtures/vite-app',
    configFile: false,
    logLevel: 'error',
    server: { port: 0, host: '127.0.0.1' },
    plugins: [await plugin()],
  });
  await server.listen();
  try {
    const url = server.resolvedUrls?.local[0];
    expect(url).toBeTruthy();
    expect(await runApp(page, url!, lm)).toEqual({ response: 'HELLO FROM A VITE APP', bridge: 'jspi' });
  } finally {
    await server.close();
  }
});
