import { defineConfig } from '@playwright/test';

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
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    },
  },
  webServer: [
    { command: 'node scripts/serve.mjs . --port 4173', cwd: '..', url: 'http://127.0.0.1:4173/package.json', reuseExistingServer: true },
    { command: 'node scripts/serve.mjs . --port 4174 --isolated', cwd: '..', url: 'http://127.0.0.1:4174/package.json', reuseExistingServer: true },
  ],
});
