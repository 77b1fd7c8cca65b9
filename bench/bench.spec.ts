/**
 * rlm-web's own costs, each measured side by side with a reference taken in the same run.
 * Prints a Markdown table; writes raw figures to bench/results/latest.json. Not a test:
 * nothing here asserts a speed.
 */
import { test, type Page } from '@playwright/test';
import { ISOLATED_ORIGIN, PLAIN_ORIGIN } from '../e2e/support/ports';
import { execSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const QUICK = process.env.BENCH_QUICK === '1';
const PLAIN = PLAIN_ORIGIN;
const ISOLATED = ISOLATED_ORIGIN;
const MB = 1024 * 1024;

interface Row {
  group: string;
  name: string;
  unit: string;
  samples: number[];
  reference?: { name: string; samples: number[] } | undefined;
  note?: string | undefined;
}

const rows: Row[] = [];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function p95(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)]!;
}

function fmt(x: number): string {
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(3);
}

const listening = new WeakSet<Page>();

async function open(page: Page, origin: string): Promise<void> {
  if (!listening.has(page)) page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  listening.add(page);
  await page.goto(`${origin}/bench/page/`);
  await page.waitForFunction(() => (window as any).benchReady === true);
}

/** Processes under the Chromium this run launched (marked by bench/playwright.config.ts), as pid → parent pid. */
function benchBrowserProcesses(): Map<number, string> {
  const parents = new Map<number, number>();
  const cmdlines = new Map<number, string>();
  for (const entry of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const pid = Number(entry);
      // The parent pid is the 2nd field after the parenthesized command name.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      parents.set(pid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      cmdlines.set(pid, readFileSync(`/proc/${pid}/cmdline`, 'utf8'));
    } catch {
      // the process ended while we looked
    }
  }
  const mark = `--rlm-bench-mark=${process.env.RLM_BENCH_MARK}`;
  const ours = new Set([...cmdlines].filter(([, cmd]) => cmd.includes(mark)).map(([pid]) => pid));
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, parent] of parents) {
      if (!ours.has(pid) && ours.has(parent)) {
        ours.add(pid);
        grew = true;
      }
    }
  }
  return new Map([...ours].map((pid) => [pid, cmdlines.get(pid) ?? '']));
}

/** Total RSS (MB) of this run's Chromium renderer processes, read from /proc (other browsers on the machine are not counted). */
function rendererRSS(): number {
  let kb = 0;
  for (const [pid, cmd] of benchBrowserProcesses()) {
    if (!cmd.includes('--type=renderer')) continue;
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      // the process ended while we looked
    }
  }
  return kb / 1024;
}

/** Runs `fn` while sampling renderer memory; returns fn's value and the peak RSS (MB). */
async function withPeakMemory<T>(fn: () => Promise<T>): Promise<{ value: T; peakMB: number }> {
  let peak = rendererRSS();
  const timer = setInterval(() => (peak = Math.max(peak, rendererRSS())), 50);
  try {
    const value = await fn();
    peak = Math.max(peak, rendererRSS());
    return { value, peakMB: peak };
  } finally {
    clearInterval(timer);
  }
}

test.describe.configure({ mode: 'serial' });

test('boot: REPL ready vs bare loadPyodide, and boot overlapping the first LM call', async ({ page }) => {
  await open(page, PLAIN);
  const n = QUICK ? 1 : 5;
  const out = await page.evaluate(async (n) => {
    const { PyodideRepl, RLM } = (window as any).rlmWeb;
    const Comlink = (window as any).Comlink;
    const ours: number[] = [];
    const bare: number[] = [];
    const host = { handle: async () => ({ results: [] }) };
    // One untimed boot of each first, so that both are measured with a warm HTTP and wasm cache.
    for (let i = 0; i <= n; i++) {
      let t = performance.now();
      const repl = new PyodideRepl(host, {});
      await repl.start();
      if (i > 0) ours.push(performance.now() - t);
      await repl.close();
      t = performance.now();
      const worker = new Worker('/bench/page/bare-worker.js', { type: 'module' });
      await Comlink.wrap(worker).boot(new URL('/dist/pyodide/', location.href).href);
      if (i > 0) bare.push(performance.now() - t);
      worker.terminate();
    }
    // First iteration's result with a 1 s root LM: the REPL boots during that call.
    const firsts: number[] = [];
    for (let i = 0; i < n; i++) {
      const client = {
        provider: 'bench',
        model: 'slow-root',
        async complete() {
          await new Promise((r) => setTimeout(r, 1000));
          return { text: '```repl\nanswer["content"] = "1"\nanswer["ready"] = True\n```', usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 }, model: 'slow-root' };
        },
      };
      let first = 0;
      const started = performance.now();
      const rlm = new RLM({ backend: client, onEvent: (e: any) => e.type === 'code_end' && !first && (first = performance.now() - started) });
      await rlm.completion('ctx');
      firsts.push(first);
      await rlm.close();
    }
    return { ours, bare, firsts };
  }, n);
  rows.push({ group: 'Boot', name: 'REPL ready (worker + Pyodide + runtime)', unit: 'ms', samples: out.ours, reference: { name: 'bare loadPyodide() in a worker', samples: out.bare } });
  const sequential = out.ours.map((b) => b + 1000);
  rows.push({
    group: 'Boot',
    name: 'first iteration result, root LM latency 1 s',
    unit: 'ms',
    samples: out.firsts,
    reference: { name: 'boot + 1 s, if done one after the other', samples: sequential },
    note: 'ratio < 1: the REPL boots while the first LM call is in flight',
  });
});

for (const bridge of ['jspi', 'sab'] as const) {
  test(`bridge: llm_query round trip (${bridge}) vs bare Comlink`, async ({ page }) => {
    await open(page, bridge === 'sab' ? ISOLATED : PLAIN);
    const sizes = [1024, 500 * 1024];
    for (const size of sizes) {
      const calls = QUICK ? 20 : size > 100_000 ? 200 : 2000;
      const samples = QUICK ? 1 : 5;
      const out = await page.evaluate(
        async ({ bridge, size, calls, samples }) => {
          const { RLM } = (window as any).rlmWeb;
          const Comlink = (window as any).Comlink;
          const code = `import time\np = "x" * ${size}\nllm_query(p)\nrounds = []\nfor _ in range(${samples}):\n    t = time.perf_counter()\n    for _ in range(${calls}):\n        llm_query(p)\n    rounds.append((time.perf_counter() - t) / ${calls} * 1000)\nanswer["content"] = ",".join(str(r) for r in rounds)\nanswer["ready"] = True`;
          const echo = {
            provider: 'bench',
            model: 'echo',
            async complete({ messages }: any) {
              const text = messages[0].role === 'system' ? '```repl\n' + code + '\n```' : messages[0].content;
              return { text, usage: { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 }, model: 'echo' };
            },
          };
          const rlm = new RLM({ backend: echo, environmentOptions: { bridge } });
          const result = await rlm.completion('ctx');
          await rlm.close();
          const ours = result.response.split(',').map(Number);
          const worker = new Worker('/bench/page/bare-worker.js', { type: 'module' });
          const remote = Comlink.wrap(worker);
          const payload = 'x'.repeat(size);
          const host = Comlink.proxy({ echo: (p: string) => p });
          const bare: number[] = [];
          for (let i = 0; i < samples; i++) bare.push(await remote.echoLoop(host, payload, calls));
          // The JSPI floor: Python → run_sync → Comlink → page and back, no rlm-web code.
          const floor: number[] = [];
          if (bridge === 'jspi') {
            await remote.boot(new URL('/dist/pyodide/', location.href).href);
            for (let i = 0; i < samples; i++) floor.push(await remote.pyEchoLoop(host, payload, calls));
          }
          worker.terminate();
          return { ours, bare, floor };
        },
        { bridge, size, calls, samples },
      );
      const label = `${size > 100_000 ? '500 KB' : '1 KB'} prompt, ${bridge.toUpperCase()}`;
      rows.push({
        group: 'Bridge',
        name: `llm_query round trip, ${label}`,
        unit: 'ms',
        samples: out.ours,
        reference: { name: 'bare Comlink round trip, same payload', samples: out.bare },
      });
      if (out.floor.length > 0) {
        rows.push({
          group: 'Bridge',
          name: `llm_query round trip, ${label}, against the JSPI floor`,
          unit: 'ms',
          samples: out.ours,
          reference: { name: 'Python run_sync + Comlink, no rlm-web code', samples: out.floor },
        });
      }
    }
  });
}

for (const bridge of ['jspi', 'sab'] as const) {
  test(`bridge in the isolation frame: llm_query (${bridge}) against floors measured in the same frame`, async ({ page }) => {
    await open(page, bridge === 'sab' ? ISOLATED : PLAIN);
    const rounds = QUICK ? 2 : 7;
    const calls = QUICK ? 20 : 1000;
    const out = await page.evaluate(
      async ({ bridge, rounds, calls }) => {
        const { RLM } = (window as any).rlmWeb;
        const Comlink = (window as any).Comlink;
        const { startFrameFloor } = await import('/bench/page/frame-floor.js' as string);
        const floors = await startFrameFloor(new URL('/dist/pyodide/', location.href).href);
        const code = `import time\np = "x" * 1024\nfor _ in range(20): llm_query(p)\nt = time.perf_counter()\nfor _ in range(${calls}): llm_query(p)\nanswer["content"] = str((time.perf_counter() - t) / ${calls} * 1000)\nanswer["ready"] = True`;
        const { echoLM } = await import('/bench/page/echo-lm.js' as string);
        // The default isolation, as a user gets it; one REPL for every round.
        const rlm = new RLM({ backend: echoLM(code), environmentOptions: { bridge } });
        const host = Comlink.proxy({ echo: (p: string) => p });
        const payload = 'x'.repeat(1024);
        const ours: number[] = [];
        const floor: number[] = [];
        const hop: number[] = [];
        // Interleaved, so that each round of ours has floors measured next to it.
        for (let i = 0; i < rounds; i++) {
          ours.push(Number((await rlm.completion('ctx')).response));
          // Each bridge's own floor: run_sync + Comlink (JSPI), or the frame's relay + Atomics.wait (SAB).
          floor.push(bridge === 'jspi' ? await floors.remote.pyEchoLoop(host, payload, calls) : await floors.remote.sabPyEchoLoop(payload, calls));
          hop.push(await floors.remote.echoLoop(host, payload, calls));
        }
        const info = rlm.replInfo;
        await rlm.close();
        floors.close();
        if (info?.bridge !== bridge || info?.isolation !== 'sandbox') throw new Error(`ran on ${info?.bridge} in ${info?.isolation}`);
        return { ours, floor, hop };
      },
      { bridge, rounds, calls },
    );
    const name = `llm_query round trip, 1 KB prompt, ${bridge.toUpperCase()}, isolation 'sandbox'`;
    const floorName =
      bridge === 'jspi'
        ? 'Python run_sync + Comlink in a worker of the same frame, no rlm-web code'
        : "Python → the frame's relay → page → Atomics.wait, in a worker of the same frame, no rlm-web code";
    rows.push({ group: 'Bridge (isolation frame)', name, unit: 'ms', samples: out.ours, reference: { name: floorName, samples: out.floor } });
    rows.push({ group: 'Bridge (isolation frame)', name, unit: 'ms', samples: out.ours, reference: { name: 'bare Comlink round trip from a worker of the same frame', samples: out.hop } });
  });
}

test('fan-out: llm_query_batched against an LM with 100 ms latency', async ({ page }) => {
  await open(page, PLAIN);
  const n = QUICK ? 40 : 1000;
  for (const concurrency of [4, 16, 64]) {
    const out = await page.evaluate(
      async ({ n, concurrency }) => {
        const { RLM } = (window as any).rlmWeb;
        const code = `import time\nt = time.perf_counter()\nr = llm_query_batched([f"p{i}" for i in range(${n})])\nassert r[5] == "p5", r[5]\nanswer["content"] = str((time.perf_counter() - t) * 1000)\nanswer["ready"] = True`;
        const client = {
          provider: 'bench',
          model: 'latency-100ms',
          async complete({ messages }: any) {
            if (messages[0].role === 'system') return { text: '```repl\n' + code + '\n```', usage: { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 }, model: 'x' };
            await new Promise((r) => setTimeout(r, 100));
            return { text: messages[0].content, usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 }, model: 'x' };
          },
        };
        const rlm = new RLM({ backend: client, maxConcurrentSubcalls: concurrency });
        const result = await rlm.completion('ctx');
        await rlm.close();
        return Number(result.response);
      },
      { n, concurrency },
    );
    const ideal = Math.ceil(n / concurrency) * 100;
    rows.push({ group: 'Fan-out', name: `${n} prompts at concurrency ${concurrency}`, unit: 'ms', samples: [out], reference: { name: 'ideal ceil(N/C) × 100 ms', samples: [ideal] } });
  }
});

for (const bridge of ['jspi', 'sab'] as const) {
  test(`batched: llm_query_batched of 1,000 prompts against an instant LM (${bridge})`, async ({ page }) => {
    await open(page, bridge === 'sab' ? ISOLATED : PLAIN);
    const prompts = 1000;
    const rounds = QUICK ? 3 : 30;
    const out = await page.evaluate(
      async ({ bridge, prompts, rounds }) => {
        const { RLM } = (window as any).rlmWeb;
        // Timed inside Python, around the call only: what a cell sees.
        const code = `import time\nps = [f"short prompt {i}" for i in range(${prompts})]\nllm_query_batched(ps)\nrounds = []\nfor _ in range(${rounds}):\n    t = time.perf_counter()\n    r = llm_query_batched(ps)\n    rounds.append((time.perf_counter() - t) * 1000)\nassert r[7] == "short prompt 7", r[7]\nanswer["content"] = ",".join(str(x) for x in rounds)\nanswer["ready"] = True`;
        const { echoLM } = await import('/bench/page/echo-lm.js' as string);
        // Default isolation ('sandbox') and limits, as a user gets them; each call counts usage.
        const rlm = new RLM({ backend: echoLM(code, { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 }), environmentOptions: { bridge } });
        const result = await rlm.completion('ctx');
        const info = rlm.replInfo;
        await rlm.close();
        if (info?.bridge !== bridge || info?.isolation !== 'sandbox') throw new Error(`ran on ${info?.bridge} in ${info?.isolation}`);
        return result.response.split(',').map(Number) as number[];
      },
      { bridge, prompts, rounds },
    );
    rows.push({
      group: 'Batched',
      name: `llm_query_batched, ${prompts} short prompts, instant in-page LM, ${bridge.toUpperCase()}, isolation 'sandbox': whole call`,
      unit: 'ms',
      samples: out,
      reference: { name: 'the reference implementation (rlms, native CPython), upper end of its 10–13 ms', samples: [13] },
    });
    rows.push({ group: 'Batched', name: `same, per prompt (${bridge.toUpperCase()})`, unit: 'µs', samples: out.map((ms) => (ms * 1000) / prompts), reference: { name: 'goal: the reference’s ≈13 µs', samples: [13] } });
  });
}

test('recursion: 64 child RLMs (rlm_query_batched) against an LM with 200 ms latency: shared interpreter vs a worker per child', async ({ page }) => {
  const n = QUICK ? 8 : 64;
  const settings: { interpreters: 'shared' | 'separate'; concurrency: number }[] = [
    { interpreters: 'shared', concurrency: 4 },
    { interpreters: 'shared', concurrency: 16 },
    { interpreters: 'separate', concurrency: 4 },
    { interpreters: 'separate', concurrency: 16 },
  ];
  for (const { interpreters, concurrency } of settings) {
    // A fresh page for each setting: memory left by the previous one is not counted.
    await page.goto('about:blank');
    await open(page, PLAIN);
    // What the page holds with one REPL (the root's): children are measured above this.
    await page.evaluate(async () => {
      const { RLM } = (window as any).rlmWeb;
      const alone = new RLM({ backend: { provider: 'bench', model: 'none', complete: async () => ({ text: 'FINAL(x)', usage: { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0 }, model: 'x' }) } });
      await alone.warmUp();
      (window as any).benchAlone = alone;
    });
    await new Promise((r) => setTimeout(r, 1000));
    const rootOnly = rendererRSS();
    await page.evaluate(() => (window as any).benchAlone.close());
    await page.evaluate(
      async ({ interpreters, concurrency }) => {
        const { RLM } = (window as any).rlmWeb;
        const client = {
          provider: 'bench',
          model: 'latency-200ms',
          async complete({ messages }: any) {
            const isRoot = messages[1]?.content.includes('The question to answer');
            await new Promise((r) => setTimeout(r, isRoot ? 0 : 200));
            const code = (window as any).benchRootCode as string;
            const text = isRoot ? '```repl\n' + code + '\n```' : '```repl\nanswer["content"] = "done " + context\nanswer["ready"] = True\n```';
            return { text, usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 }, model: 'x' };
          },
        };
        const rlm = new RLM({ backend: client, maxDepth: 2, maxConcurrentSubcalls: 16, maxConcurrentChildren: concurrency, environmentOptions: { childInterpreters: interpreters } });
        await rlm.warmUp();
        (window as any).benchRLM = rlm;
      },
      { interpreters, concurrency },
    );
    await page.evaluate((n) => {
      (window as any).benchRootCode = `import time\nt = time.perf_counter()\nr = rlm_query_batched([f"task {i}" for i in range(${n})])\nassert r[3] == "done task 3", r[3]\nanswer["content"] = str((time.perf_counter() - t) * 1000)\nanswer["ready"] = True`;
    }, n);
    const { value: ms, peakMB } = await withPeakMemory(() =>
      page.evaluate(async () => {
        const rlm = (window as any).benchRLM;
        const result = await rlm.completion('ctx', { rootPrompt: 'fan out' });
        await rlm.close();
        return Number(result.response);
      }),
    );
    const ideal = Math.ceil(n / concurrency) * 200;
    rows.push({
      group: 'Recursion',
      name: `${n} child RLMs at concurrency ${concurrency}, child LM 200 ms, ${interpreters === 'shared' ? 'one shared interpreter (default)' : 'a worker per concurrent child'}`,
      unit: 'ms',
      samples: [ms],
      reference: { name: 'ideal ceil(N/C) × 200 ms', samples: [ideal] },
      note: `${((peakMB - rootOnly) / concurrency).toFixed(1)} MB of renderer memory per concurrent child: peak ${peakMB.toFixed(0)} MB, ${rootOnly.toFixed(0)} MB with the root's REPL alone`,
    });
  }
});

test('context: time until Python holds `context`, and peak renderer memory', async ({ page }) => {
  await open(page, PLAIN);
  const sizes = QUICK ? [1] : [10, 100, 500];
  for (const mb of sizes) {
    for (const kind of ['string', 'blob'] as const) {
      await page.evaluate(
        ({ mb, kind }) => {
          const line = 'the quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstuvwxyz\n';
          const parts: string[] = [];
          const target = mb * 1024 * 1024;
          for (let n = 0; n < target; n += line.length) parts.push(line);
          const text = parts.join('').slice(0, target);
          (window as any).benchContext = kind === 'string' ? text : new Blob([text]);
          (window as any).benchBytes = new TextEncoder().encode(text);
        },
        { mb, kind },
      );
      const { value: ms, peakMB } = await withPeakMemory(() =>
        page.evaluate(async () => {
          const { PyodideRepl } = (window as any).rlmWeb;
          const repl = new PyodideRepl({ handle: async () => ({ results: [] }) }, {});
          await repl.start();
          const t = performance.now();
          await repl.loadContext(0, (window as any).benchContext);
          const ms = performance.now() - t;
          await repl.close();
          return ms;
        }),
      );
      const { value: refMs, peakMB: refPeak } = await withPeakMemory(() =>
        page.evaluate(async () => {
          const Comlink = (window as any).Comlink;
          const worker = new Worker('/bench/page/bare-worker.js', { type: 'module' });
          const remote = Comlink.wrap(worker);
          await remote.boot(new URL('/dist/pyodide/', location.href).href);
          const bytes: Uint8Array = (window as any).benchBytes.slice();
          const t = performance.now();
          await remote.copyIn(Comlink.transfer(bytes, [bytes.buffer]));
          const ms = performance.now() - t;
          worker.terminate();
          return ms;
        }),
      );
      await page.evaluate(() => {
        delete (window as any).benchContext;
        delete (window as any).benchBytes;
      });
      rows.push({ group: 'Context', name: `${mb} MB as a ${kind}: until Python holds it`, unit: 'ms', samples: [ms], reference: { name: 'transfer bytes + copy into wasm heap', samples: [refMs] } });
      rows.push({ group: 'Context', name: `${mb} MB as a ${kind}: peak renderer RSS`, unit: 'MB', samples: [peakMB], reference: { name: 'same for the bare copy', samples: [refPeak] } });
    }
  }
});

test('end to end: needle in a 100 MB haystack with a 0-latency LM', async ({ page }) => {
  await open(page, PLAIN);
  const mb = QUICK ? 2 : 100;
  const out = await page.evaluate(async (mb) => {
    const { RLM } = (window as any).rlmWeb;
    const { needleLM, needleText } = await import('/bench/page/needle.js' as string);
    const text = needleText(mb);
    const client = needleLM();
    let loadMs = 0;
    const rlm = new RLM({ backend: client, onEvent: (e: any) => e.type === 'context_loaded' && (loadMs = e.ms) });
    await rlm.warmUp();
    let cellMs = 0;
    const started = performance.now();
    const result = await rlm.completion(text, { rootPrompt: 'What is the magic number?' });
    const total = performance.now() - started;
    // Cell time is the model's own code running, not loop overhead.
    for (const it of result.trajectory.iterations) for (const b of it.codeBlocks) cellMs += b.executionTimeMs;
    await rlm.close();
    return { total, lmMs: client.ms, cellMs, loadMs, iterations: result.trajectory.iterations.length, response: result.response };
  }, mb);
  if (out.response !== '7731') throw new Error(`end-to-end run answered ${out.response}`);
  const perIteration = (out.total - out.lmMs) / out.iterations;
  const overhead = (out.total - out.lmMs - out.cellMs - out.loadMs) / out.iterations;
  rows.push({ group: 'End to end', name: `${mb} MB needle run: (total − LM time) per iteration`, unit: 'ms', samples: [perIteration], note: `${out.iterations} iterations, total ${fmt(out.total)} ms: context load ${fmt(out.loadMs)} ms, cells ${fmt(out.cellMs)} ms` });
  rows.push({ group: 'End to end', name: `${mb} MB needle run: loop overhead per iteration (total − LM − cells − context load)`, unit: 'ms', samples: [overhead], reference: { name: 'budget', samples: [20] } });
});

test('reuse: a reused RLM’s next completion (1 MB needle run): a fresh spare interpreter against the same one reset, side by side', async ({ page }) => {
  await open(page, PLAIN);
  const n = QUICK ? 1 : 5;
  const modes = ['spare', 'reset'] as const;
  type Mode = (typeof modes)[number];
  const samples: Record<string, Record<Mode, number[]>> = {};
  const add = (name: string, mode: Mode, value: number) => ((samples[name] ??= { spare: [], reset: [] })[mode].push(value));
  /** One RLM on a freshly loaded page: run 1, then (once its next REPL is ready) run 2, then runs 3 and 4 back to back. */
  const sample = async (mode: Mode) => {
    await page.reload();
    await page.waitForFunction(() => (window as any).benchReady === true);
    const first = await page.evaluate(async (mode) => {
      const { RLM, createPyodideEnvironment } = (window as any).rlmWeb;
      const { needleLM, needleText, NEEDLE_ANSWER } = await import('/bench/page/needle.js' as string);
      const text = needleText(1);
      const client = needleLM();
      // Before: one interpreter for every completion, reset as the next one starts (before
      // its tools and context are loaded), as the session did until each run got its own.
      let shared: any;
      let dirty = false;
      const resetFirst = async () => {
        if (!dirty) return;
        dirty = false;
        await shared.reset();
      };
      const reuse = (options: any) => {
        shared ??= createPyodideEnvironment(options);
        return {
          get info() {
            return shared.info;
          },
          start: () => shared.start(),
          checkContext: (index: number, context: unknown) => shared.checkContext(index, context),
          registerTools: async (tools: unknown) => (await resetFirst(), shared.registerTools(tools)),
          loadContext: async (index: number, context: unknown) => (await resetFirst(), shared.loadContext(index, context)),
          setVariable: (name: string, value: unknown, reserved: boolean) => shared.setVariable(name, value, reserved),
          execute: (code: string, options: unknown) => shared.execute(code, options),
          resolveVariable: (name: string) => shared.resolveVariable(name),
          reset: () => shared.reset(),
          close: async () => {
            dirty = true;
          },
        };
      };
      const rlm = new RLM({ backend: client, ...(mode === 'reset' ? { environment: reuse } : {}) });
      const run = async (rootLatencyMs = 0) => {
        client.ms = 0;
        client.rootLatencyMs = rootLatencyMs;
        const t = performance.now();
        const result = await rlm.completion(text, { rootPrompt: 'What is the magic number?' });
        if (result.response !== NEEDLE_ANSWER) throw new Error(`the needle run answered ${result.response}`);
        return performance.now() - t - client.ms;
      };
      (window as any).benchReuse = { rlm, run, close: async () => (await rlm.close(), await shared?.close()) };
      await rlm.warmUp();
      const firstMs = await run();
      // The next completion's REPL: the spare booting from the snapshot (or the same one, at once).
      const t = performance.now();
      await rlm.warmUp();
      return { firstMs, readyMs: performance.now() - t };
    }, mode);
    // Let the ended worker's memory go before counting what stays between completions.
    await page.waitForTimeout(1000);
    const betweenMB = browserRSS();
    const next = await withBrowserPeak(() =>
      page.evaluate(async () => {
        const { run } = (window as any).benchReuse;
        const idleMs = await run();
        // Back to back: this completion starts as the last one returns, its spare still booting.
        const backToBackMs = await run();
        // The same with a root LM that takes 1 s a call, which the spare's boot overlaps.
        const backToBackSlowLMMs = await run(1000);
        return { idleMs, backToBackMs, backToBackSlowLMMs };
      }),
    );
    await page.evaluate(() => (window as any).benchReuse.close());
    add('next completion, its REPL booted (total − LM time)', mode, next.value.idleMs);
    add('next completion back to back, as the last one returns (total − LM time)', mode, next.value.backToBackMs);
    add('next completion back to back, root LM latency 1 s (total − LM time)', mode, next.value.backToBackSlowLMMs);
    add('first completion of the RLM, after warmUp() (total − LM time)', mode, first.firstMs);
    add('after a completion returns, until the next completion’s REPL has booted (warmUp())', mode, first.readyMs);
    add('browser RSS between completions (all processes)', mode, betweenMB);
    add('peak browser RSS over the next three completions (all processes)', mode, next.peakMB);
  };
  for (let i = 0; i < n; i++) for (const mode of modes) await sample(mode);
  for (const [name, by] of Object.entries(samples)) {
    const unit = name.includes('RSS') ? 'MB' : 'ms';
    rows.push({ group: 'Reuse', name: `1 MB needle run, ${name}: a spare interpreter per completion`, unit, samples: by.spare, reference: { name: 'one interpreter, reset (before)', samples: by.reset } });
  }
});

test('isolation: the sandboxed REPL (default) against a same-origin worker, side by side', async ({ page }) => {
  await open(page, PLAIN);
  const n = QUICK ? 1 : 5;
  const modes = ['sandbox', 'none'] as const;
  const samples: Record<string, Record<(typeof modes)[number], number[]>> = {};
  const add = (name: string, mode: (typeof modes)[number], ms: number) => ((samples[name] ??= { sandbox: [], none: [] })[mode].push(ms));
  /** One boot in a freshly loaded page (no frame, no files or snapshot held in memory). */
  const boot = async (mode: (typeof modes)[number], clearStore: boolean) => {
    await page.reload();
    await page.waitForFunction(() => (window as any).benchReady === true);
    return page.evaluate(
      async ({ mode, clearStore }) => {
        if (clearStore) {
          await caches.delete('rlm-web');
          localStorage.clear();
        }
        const { PyodideRepl } = (window as any).rlmWeb;
        const t = performance.now();
        const repl = new PyodideRepl({ handle: async () => ({ results: [] }) }, { isolation: mode });
        const info = await repl.start();
        const ms = performance.now() - t;
        await repl.close();
        return { ms, snapshot: info.snapshot as string };
      },
      { mode, clearStore },
    );
  };
  for (let i = 0; i < n; i++) {
    for (const mode of modes) {
      add('boot, first visit (no snapshot stored: boot, make one, store it)', mode, (await boot(mode, true)).ms);
      const second = await boot(mode, false);
      if (second.snapshot !== 'loaded') throw new Error(`second boot in ${mode} did not load the snapshot`);
      add('boot, later visit (from the stored snapshot, digest checked)', mode, second.ms);
    }
  }
  for (const mode of modes) {
    const out = await page.evaluate(
      async ({ mode, quick }) => {
        const { PyodideRepl } = (window as any).rlmWeb;
        const repl = new PyodideRepl({ handle: async (request: any) => ({ results: request.prompts }) }, { isolation: mode });
        await repl.start();
        const perCall = async (bytes: number, calls: number) => {
          const cell = await repl.execute(
            `import time\np = "x" * ${bytes}\nfor _ in range(20): llm_query(p)\nt = time.perf_counter()\nfor _ in range(${calls}): llm_query(p)\nprint((time.perf_counter() - t) / ${calls} * 1000)`,
            { timeoutMs: 120_000 },
          );
          return Number(cell.stdout.trim());
        };
        const small = await perCall(1024, quick ? 50 : 1000);
        const large = await perCall(500 * 1024, quick ? 10 : 200);
        const text = 'y'.repeat((quick ? 10 : 100) * 1024 * 1024);
        const t = performance.now();
        await repl.loadContext(0, text);
        const load = performance.now() - t;
        await repl.close();
        return { small, large, load };
      },
      { mode, quick: QUICK },
    );
    add('llm_query round trip, 1 KB prompt (JSPI)', mode, out.small);
    add('llm_query round trip, 500 KB prompt (JSPI)', mode, out.large);
    add(`${QUICK ? 10 : 100} MB context (string) until Python holds it`, mode, out.load);
  }
  for (const [name, by] of Object.entries(samples)) {
    rows.push({ group: 'Isolation', name: `${name}: isolation 'sandbox'`, unit: 'ms', samples: by.sandbox, reference: { name: "isolation 'none'", samples: by.none } });
  }
});

/** Total RSS (MB) of this run's Chromium: every process of it (browser, renderers, the isolation frame's, GPU, utilities). */
function browserRSS(): number {
  let kb = 0;
  for (const pid of benchBrowserProcesses().keys()) {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      // the process ended while we looked
    }
  }
  return kb / 1024;
}

/** Runs `fn` while sampling this browser's total RSS every 50 ms; returns fn's value, the peak and the RSS before (MB). */
async function withBrowserPeak<T>(fn: () => Promise<T>): Promise<{ value: T; peakMB: number; beforeMB: number }> {
  const beforeMB = browserRSS();
  let peak = beforeMB;
  const timer = setInterval(() => (peak = Math.max(peak, browserRSS())), 50);
  try {
    const value = await fn();
    peak = Math.max(peak, browserRSS());
    return { value, peakMB: peak, beforeMB };
  } finally {
    clearInterval(timer);
  }
}

/** Writes `bytes` bytes of numbered text lines to `path`, 8 MB at a time. */
function writeTextFile(path: string, bytes: number): void {
  const lines: string[] = [];
  for (let n = 0, i = 0; n < 8 * MB; i++) {
    const line = `line ${i}: the quick brown fox jumps over the lazy dog, nothing to see here.\n`;
    lines.push(line);
    n += line.length;
  }
  const block = Buffer.from(lines.join(''));
  const fd = openSync(path, 'w');
  try {
    for (let written = 0; written < bytes; ) written += writeSync(fd, block, 0, Math.min(block.length, bytes - written));
  } finally {
    closeSync(fd);
  }
}

test('ceiling: 1 GB and 2 GB contexts from a File picked in the page', async ({ page }) => {
  await open(page, PLAIN);
  const sizes = QUICK ? [10_000_000] : [1_000_000_000, 2_000_000_000];
  const dir = mkdtempSync(join(tmpdir(), 'rlm-web-bench-'));
  try {
    // One small run first: the REPL's memory snapshot is made and stored, as on a later visit.
    await page.evaluate(async () => {
      const { RLM } = (window as any).rlmWeb;
      const client = { provider: 'bench', model: 'instant', complete: async () => ({ text: '```repl\nanswer["content"] = "ok"\nanswer["ready"] = True\n```', usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 }, model: 'instant' }) };
      const rlm = new RLM({ backend: client });
      await rlm.completion('warm-up');
      await rlm.close();
    });
    for (const bytes of sizes) {
      const path = join(dir, `context-${bytes}.txt`);
      writeTextFile(path, bytes);
      await page.evaluate(() => {
        document.querySelector('#bench-file')?.remove();
        delete (window as any).benchFile;
        const input = document.createElement('input');
        input.type = 'file';
        input.id = 'bench-file';
        input.addEventListener('change', () => ((window as any).benchFile = input.files?.[0]));
        document.body.append(input);
      });
      await page.setInputFiles('#bench-file', path);
      await page.waitForFunction((bytes) => (window as any).benchFile?.size === bytes, bytes);
      const { value, peakMB, beforeMB } = await withBrowserPeak(() =>
        page.evaluate(async () => {
          const { RLM } = (window as any).rlmWeb;
          const client = { provider: 'bench', model: 'instant', complete: async () => ({ text: '```repl\nanswer["content"] = str(len(context))\nanswer["ready"] = True\n```', usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 }, model: 'instant' }) };
          let heldMs = 0;
          let loadMs = 0;
          const started = performance.now();
          const rlm = new RLM({
            backend: client,
            onEvent: (e: any) => {
              if (e.type !== 'context_loaded') return;
              heldMs = performance.now() - started;
              loadMs = e.ms;
            },
          });
          const result = await rlm.completion((window as any).benchFile, { rootPrompt: 'How long is it?' });
          const answerMs = performance.now() - started;
          await rlm.close();
          return { heldMs, loadMs, answerMs, length: Number(result.response) };
        }),
      );
      // The browser reading the same File into one ArrayBuffer on the page, what any use of it
      // costs: measured after the run, so that the buffer does not add to the REPL's peak.
      const readMs = await page.evaluate(async () => {
        const t = performance.now();
        const buffer: ArrayBuffer = await (window as any).benchFile.arrayBuffer();
        const ms = performance.now() - t;
        if (buffer.byteLength !== (window as any).benchFile.size) throw new Error('short read');
        return ms;
      });
      rmSync(path);
      await page.evaluate(() => delete (window as any).benchFile);
      if (value.length !== bytes) throw new Error(`Python's len(context) was ${value.length}, not ${bytes}`);
      const label = QUICK ? `${bytes / 1e6} MB` : `${bytes / 1e9} GB`;
      rows.push({
        group: 'Ceiling',
        name: `${label} File: completion() → Python holds \`context\``,
        unit: 'ms',
        samples: [value.heldMs],
        reference: { name: 'file.arrayBuffer() on the page', samples: [readMs] },
        note: `boot from the snapshot included; load alone ${fmt(value.loadMs)} ms; answer at ${fmt(value.answerMs)} ms`,
      });
      rows.push({
        group: 'Ceiling',
        name: `${label} File: peak RSS of the browser (all its processes)`,
        unit: 'MB',
        samples: [peakMB],
        reference: { name: 'the same before the run', samples: [beforeMB] },
        note: 'Python holds the bytes and the str they become',
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('IndexedDB: a run of 1,000 iterations written to the store, and read back', async ({ page }) => {
  await open(page, PLAIN);
  const n = QUICK ? 20 : 1000;
  const out = await page.evaluate(async (n) => {
    const { RLM, RLMLogger, IndexedDBTrajectoryStore } = (window as any).rlmWeb;
    /** The logger, timed: its calls run inside the loop; flush() is awaited at the run's end. */
    class TimedLogger extends RLMLogger {
      inLoopMs = 0;
      flushMs = 0;
      constructor(options: unknown) {
        super(options);
      }
      timed(fn: () => void): void {
        const t = performance.now();
        fn();
        this.inLoopMs += performance.now() - t;
      }
      runStarted(t: unknown) {
        this.timed(() => super.runStarted(t));
      }
      iterationFinished(t: unknown, it: unknown) {
        this.timed(() => super.iterationFinished(t, it));
      }
      stepRecorded(t: unknown, step: unknown) {
        this.timed(() => super.stepRecorded(t, step));
      }
      contextGiven(t: unknown, c: unknown) {
        this.timed(() => super.contextGiven(t, c));
      }
      runEnded(t: unknown) {
        this.timed(() => super.runEnded(t));
      }
      async flush() {
        const t = performance.now();
        await super.flush();
        this.flushMs += performance.now() - t;
      }
    }
    // A turn as a model writes one: some prose, a small cell that prints a line.
    const client = {
      provider: 'bench',
      model: 'instant',
      async complete({ messages }: any) {
        const turn = messages.filter((m: any) => m.role === 'assistant').length;
        const text = turn >= n ? 'FINAL(done)' : `Looking at part ${turn} of the context next.\n\`\`\`repl\npart = context[${turn}:${turn} + 40]\nprint(${turn}, repr(part))\n\`\`\``;
        return { text, usage: { inputTokens: 1, outputTokens: 1, cachedInputTokens: 0 }, model: 'instant' };
      },
    };
    const context = 'the quick brown fox jumps over the lazy dog '.repeat(200);
    const store = new IndexedDBTrajectoryStore({ name: 'rlm-web-bench' });
    await store.clear();
    const logger = new TimedLogger({ store });
    const rlm = new RLM({ backend: client, maxIterations: n, logger });
    await rlm.warmUp();
    const t = performance.now();
    const result = await rlm.completion(context, { rootPrompt: 'Read it all.' });
    const totalMs = performance.now() - t;
    await rlm.close();
    // Without a store: the same run, for the loop's own time.
    const bare = new RLM({ backend: client, maxIterations: n });
    await bare.warmUp();
    const b = performance.now();
    await bare.completion(context, { rootPrompt: 'Read it all.' });
    const bareMs = performance.now() - b;
    await bare.close();
    await store.close();
    // Read back by a fresh store, as History does on a later visit.
    const reader = new IndexedDBTrajectoryStore({ name: 'rlm-web-bench' });
    const l = performance.now();
    const [summary] = await reader.listRuns();
    const listMs = performance.now() - l;
    const g = performance.now();
    const run = await reader.getRun(result.trajectory.id);
    const getMs = performance.now() - g;
    await reader.clear();
    await reader.close();
    if (run?.iterations.length !== result.trajectory.iterations.length) throw new Error(`read back ${run?.iterations.length} iterations of ${result.trajectory.iterations.length}`);
    return { inLoopMs: logger.inLoopMs, flushMs: logger.flushMs, totalMs, bareMs, listMs, getMs, iterations: run.iterations.length, sizeMB: summary.size / 1e6 };
  }, n);
  rows.push({
    group: 'IndexedDB',
    name: `${out.iterations}-iteration run with the store, instant LM`,
    unit: 'ms',
    samples: [out.totalMs],
    reference: { name: 'the same run without a store', samples: [out.bareMs] },
    note: `${fmt(out.sizeMB)} MB stored`,
  });
  rows.push({ group: 'IndexedDB', name: `${out.iterations}-iteration run: time in the loop (logger calls)`, unit: 'ms', samples: [out.inLoopMs] });
  rows.push({ group: 'IndexedDB', name: `${out.iterations}-iteration run: flush() at its end (writes still out)`, unit: 'ms', samples: [out.flushMs] });
  rows.push({ group: 'IndexedDB', name: `read back the ${out.iterations}-iteration run (getRun, fresh store)`, unit: 'ms', samples: [out.getMs], note: `listRuns() ${fmt(out.listMs)} ms` });
});

test.afterAll(() => {
  const chromium = execSync(`${process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'} --version 2>/dev/null`).toString().trim();
  const lines = [
    `rlm-web benchmarks${QUICK ? ' (quick mode: small sizes, figures not meaningful)' : ''} — ${chromium}, headless, ${execSync('nproc').toString().trim()} cores`,
    '',
    '| group | measurement | median | p95 | reference | ref. median | ratio |',
    '| --- | --- | ---: | ---: | --- | ---: | ---: |',
  ];
  for (const r of rows) {
    const m = median(r.samples);
    const ref = r.reference ? median(r.reference.samples) : undefined;
    const ratio = ref ? `${(m / ref).toFixed(2)}×` : '';
    lines.push(`| ${r.group} | ${r.name}${r.note ? ` (${r.note})` : ''} | ${fmt(m)} ${r.unit} | ${fmt(p95(r.samples))} ${r.unit} | ${r.reference?.name ?? ''} | ${ref !== undefined ? `${fmt(ref)} ${r.unit}` : ''} | ${ratio} |`);
  }
  console.log(`\n${lines.join('\n')}\n`);
  writeFileSync(new URL('./results/latest.json', import.meta.url), JSON.stringify({ quick: QUICK, chromium, date: new Date().toISOString(), rows }, null, 2));
});
