/**
 * The context ceiling in real Chromium with real Files picked through an <input type=file>:
 * a File over what Pyodide can hold is refused with ContextTooLargeError before any LM call
 * and before a byte is read (the files are sparse: gigabytes on paper, nothing on disk), and
 * a File changed or deleted on disk after it was picked ends the run with ContextReadError.
 */
import { closeSync, mkdtempSync, openSync, ftruncateSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { expect, test } from './support/fixtures';
import { repl, type LMServer } from './support/lm-server';

let dir = '';
test.beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rlm-web-ceiling-'));
});
test.afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A file of `bytes` bytes that takes no disk space (a hole). */
function sparseFile(name: string, bytes: number): string {
  const path = join(dir, name);
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
  return path;
}

/**
 * Picks `path` with an <input type=file> added to the page, as a user would; the page keeps it
 * as `window.picked` and reads its size, as an app showing the choice does (Chromium takes a
 * File's size and modification time from disk when first asked, and checks them on every read).
 */
async function pick(page: Page, path: string, readSize = true): Promise<void> {
  await page.evaluate((readSize) => {
    document.querySelector('#context-file')?.remove();
    delete (window as any).picked;
    const input = document.createElement('input');
    input.type = 'file';
    input.id = 'context-file';
    input.addEventListener('change', () => {
      const file = input.files?.[0];
      if (readSize) (window as any).pickedSize = file?.size;
      (window as any).picked = file;
    });
    document.body.append(input);
  }, readSize);
  await page.setInputFiles('#context-file', path);
  await page.waitForFunction(() => (window as any).picked instanceof File);
}

interface Outcome {
  ok: boolean;
  response?: string;
  name?: string;
  message?: string;
  ceiling?: string;
  bytes?: number;
  maxBytes?: number;
  fileName?: string;
  isRLMError?: boolean;
  /** A run with a small string context on the same RLM afterwards: its answer. */
  after?: string;
}

/** A completion over the picked File (then one over a small string on the same RLM); never throws. */
function runOnPicked(page: Page, lm: LMServer, options: Record<string, unknown> = {}): Promise<Outcome> {
  return page.evaluate(
    async ({ baseURL, options }) => {
      const { RLM, RLMError } = (window as any).rlmWeb;
      const rlm = new RLM({ backend: 'openai', backendOptions: { model: 'scripted-root', apiKey: 'test-key', baseURL }, ...options });
      let outcome: Outcome;
      try {
        const result = await rlm.completion((window as any).picked, { rootPrompt: 'How long is it?' });
        outcome = { ok: true, response: result.response };
      } catch (e: any) {
        outcome = { ok: false, name: e.name, message: e.message, ceiling: e.ceiling, bytes: e.bytes, maxBytes: e.maxBytes, fileName: e.fileName, isRLMError: e instanceof RLMError };
      }
      try {
        outcome.after = (await rlm.completion('a small context', { rootPrompt: 'How long is it?' })).response;
      } finally {
        await rlm.close();
      }
      return outcome;
    },
    { baseURL: lm.openaiURL, options },
  );
}

const answerLength = () => repl('answer["content"] = str(len(context))\nanswer["ready"] = True');

test('a 3 GB File is refused with ContextTooLargeError (python_object) before any LM call; the RLM works afterwards', async ({ harness, lm }) => {
  lm.setScript(answerLength);
  const bytes = 3_000_000_000;
  await pick(harness, sparseFile('three-gigabytes.txt', bytes));
  const outcome = await runOnPicked(harness, lm);
  expect(outcome).toMatchObject({ ok: false, name: 'ContextTooLargeError', ceiling: 'python_object', bytes, isRLMError: true });
  expect(outcome.maxBytes).toBeLessThan(2 ** 31);
  expect(outcome.message).toContain("environment: 'remote'");
  expect(outcome.message).toContain('Nothing was read');
  // The only LM call is the later run's.
  expect(lm.requests).toHaveLength(1);
  expect(outcome.after).toBe(String('a small context'.length));
});

test('a 2.14 GB File, under one object but not twice in 4 GiB, is refused as memory', async ({ harness, lm }) => {
  lm.setScript(answerLength);
  const bytes = 2_140_000_000;
  await pick(harness, sparseFile('just-under-two-gibibytes.txt', bytes));
  const outcome = await runOnPicked(harness, lm);
  expect(outcome).toMatchObject({ ok: false, name: 'ContextTooLargeError', ceiling: 'memory', bytes });
  expect(outcome.maxBytes).toBeLessThan(bytes);
  expect(outcome.message).toContain('4 GiB');
  expect(lm.requests).toHaveLength(1);
  expect(outcome.after).toBe(String('a small context'.length));
});

for (const isolation of ['sandbox', 'none'] as const) {
  test(`a File deleted on disk after it was picked ends the run with ContextReadError (isolation '${isolation}')`, async ({ harness, lm }) => {
    lm.setScript(answerLength);
    const path = join(dir, `deleted-${isolation}.txt`);
    writeFileSync(path, 'line of text\n'.repeat(100_000));
    await pick(harness, path);
    rmSync(path);
    const outcome = await runOnPicked(harness, lm, { isolation });
    expect(outcome).toMatchObject({ ok: false, name: 'ContextReadError', fileName: `deleted-${isolation}.txt`, bytes: 1_300_000, isRLMError: true });
    expect(outcome.message).toContain(`File 'deleted-${isolation}.txt'`);
    expect(outcome.message).toContain('moved or deleted');
    expect(outcome.after).toBe(String('a small context'.length));
  });
}

test('a File deleted before anything read its size (it then reports 0 bytes) ends the run with ContextReadError, not "empty"', async ({ harness, lm }) => {
  lm.setScript(answerLength);
  const path = join(dir, 'deleted-unsized.txt');
  writeFileSync(path, 'line of text\n'.repeat(1000));
  await pick(harness, path, false);
  rmSync(path);
  const outcome = await runOnPicked(harness, lm);
  expect(outcome).toMatchObject({ ok: false, name: 'ContextReadError', fileName: 'deleted-unsized.txt', isRLMError: true });
  expect(outcome.message).toContain('moved or deleted');
  expect(outcome.after).toBe(String('a small context'.length));
});

test('a File modified on disk after it was picked ends the run with ContextReadError', async ({ harness, lm }) => {
  lm.setScript(answerLength);
  const path = join(dir, 'modified.txt');
  writeFileSync(path, 'first version\n'.repeat(10_000));
  await pick(harness, path);
  writeFileSync(path, 'second version, longer\n'.repeat(10_000));
  const later = new Date(Date.now() + 60_000);
  utimesSync(path, later, later);
  const outcome = await runOnPicked(harness, lm);
  expect(outcome).toMatchObject({ ok: false, name: 'ContextReadError', fileName: 'modified.txt' });
  expect(outcome.message).toContain('was changed');
  expect(outcome.after).toBe(String('a small context'.length));
});

test('the same File, unchanged, loads and is answered about', async ({ harness, lm }) => {
  lm.setScript(answerLength);
  const path = join(dir, 'unchanged.txt');
  writeFileSync(path, 'line of text\n'.repeat(100_000));
  await pick(harness, path);
  const outcome = await runOnPicked(harness, lm);
  expect(outcome).toMatchObject({ ok: true, response: '1300000' });
});
