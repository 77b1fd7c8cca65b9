import { defineConfig } from '@playwright/test';
import { ISOLATED_ORIGIN, ISOLATED_PORT, PLAIN_ORIGIN, PLAIN_PORT } from '../e2e/support/ports';

// Marks this run's Chromium (its processes are told apart from other browsers on the machine
// by it): set once by the runner, inherited by its workers.
const mark = (process.env.RLM_BENCH_MARK ??= `${process.pid}-${Date.now()}`);

export default defineConfig({
  testDir: '.',
  testMatch: 'bench.spec.ts',
  workers: 1,
  timeout: 0,
  reporter: [['list']],
  outputDir: '../test-results/bench',
  use: {
    browserName: 'chromium',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', `--rlm-bench-mark=${mark}`],
    },
  },
  webServer: [
    { command: `node scripts/serve.mjs . --port ${PLAIN_PORT}`, cwd: '..', url: `${PLAIN_ORIGIN}/package.json`, reuseExistingServer: true },
    { command: `node scripts/serve.mjs . --port ${ISOLATED_PORT} --isolated`, cwd: '..', url: `${ISOLATED_ORIGIN}/package.json`, reuseExistingServer: true },
  ],
});
