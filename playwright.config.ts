import { defineConfig } from '@playwright/test';
import { ISOLATED_ORIGIN, ISOLATED_PORT, PLAIN_ORIGIN, PLAIN_PORT } from './e2e/support/ports';

/** Debian's Chromium; Playwright's own browser downloads are not used. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export default defineConfig({
  testDir: 'e2e',
  testMatch: '**/*.spec.ts',
  // Pyodide workers are heavy and the machines have two cores: one test at a time.
  workers: 1,
  fullyParallel: false,
  timeout: 180_000,
  expect: { timeout: 30_000 },
  retries: 0,
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    browserName: 'chromium',
    launchOptions: {
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    },
  },
  webServer: [
    { command: `node scripts/serve.mjs . --port ${PLAIN_PORT}`, url: `${PLAIN_ORIGIN}/package.json`, reuseExistingServer: !process.env.CI },
    { command: `node scripts/serve.mjs . --port ${ISOLATED_PORT} --isolated`, url: `${ISOLATED_ORIGIN}/package.json`, reuseExistingServer: !process.env.CI },
  ],
});
