/**
 * Playwright fixtures: a scripted LM server per test, and the harness page served plainly
 * (JSPI bridge, worker-restart timeouts) or cross-origin isolated (SAB bridge available,
 * KeyboardInterrupt timeouts).
 */
import { test as base, expect, type Page } from '@playwright/test';
import { startLMServer, type LMServer } from './lm-server';

import { ISOLATED_ORIGIN, PLAIN_ORIGIN } from './ports';

export { ISOLATED_ORIGIN, PLAIN_ORIGIN };

/** Opens the harness page (the built library as `window.rlmWeb`) at `origin` and waits until it is ready. */
export async function openHarness(page: Page, origin: string): Promise<Page> {
  if (process.env.E2E_CONSOLE) page.on('console', (m) => console.log(`[page ${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  await page.goto(`${origin}/e2e/harness/`);
  await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
  return page;
}

export const test = base.extend<{ lm: LMServer; harness: Page; isolated: Page }>({
  lm: async ({}, use) => {
    const server = await startLMServer();
    await use(server);
    await server.close();
  },
  harness: async ({ page }, use) => {
    await use(await openHarness(page, PLAIN_ORIGIN));
  },
  isolated: async ({ page }, use) => {
    await use(await openHarness(page, ISOLATED_ORIGIN));
  },
});

export { expect };

/** A haystack of `lines` numbered filler lines with one needle line at `at` (0..1). */
export function haystack(lines: number, needle: string, at = 0.6): string {
  const out: string[] = [];
  const pos = Math.floor(lines * at);
  for (let i = 0; i < lines; i++) {
    out.push(i === pos ? needle : `line ${i}: the quick brown fox jumps over the lazy dog, nothing to see here.`);
  }
  return out.join('\n');
}
