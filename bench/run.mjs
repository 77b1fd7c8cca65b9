#!/usr/bin/env node
// npm run bench [-- --quick]: every measurement in headless Chromium, a Markdown table on
// stdout, raw figures in bench/results/latest.json. --quick runs each at a small size
// (used by CI so that this code cannot rot); it asserts nothing about speed.
import { spawnSync } from 'node:child_process';

const quick = process.argv.includes('--quick');
const result = spawnSync('npx', ['playwright', 'test', '-c', 'bench/playwright.config.ts'], {
  stdio: 'inherit',
  env: { ...process.env, BENCH_QUICK: quick ? '1' : '' },
});
process.exit(result.status ?? 1);
