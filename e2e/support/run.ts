/**
 * What most e2e specs do on the page: one completion with the root and sub models on the
 * scripted LM server, summarized into plain data; and the needle-in-a-haystack script that
 * several suites run through different environments.
 */
import type { Page } from '@playwright/test';
import type { Trajectory } from '../../src/core/types';
import { isRootCall, lastUser, repl, turnOf, type LMServer, type Script } from './lm-server';

/** The line hidden in haystacks, and the answer the needle script finds. */
export const NEEDLE = 'The magic number is 4817305.';
export const NEEDLE_ANSWER = '4817305';

/**
 * Root model: look at the context, then split it into chunks of `chunkChars`, ask a
 * sub-model about each with llm_query_batched, and answer. Sub-model: the number, or NONE.
 */
export function needleScript(chunkChars: number): Script {
  return (request) => {
    if (!isRootCall(request)) {
      const m = /magic number is (\d+)/.exec(lastUser(request));
      return m ? m[1]! : 'NONE';
    }
    if (turnOf(request) === 0) return repl('print(type(context).__name__, len(context))', 'Let me look at the context first.');
    return repl(`
size = ${chunkChars}
chunks = [context[i:i + size] for i in range(0, len(context), size)]
replies = llm_query_batched([f"Find the magic number in this text. Reply with only the number, or NONE.\\n\\n{c}" for c in chunks])
found = [r.strip() for r in replies if r.strip() != "NONE"]
print(len(chunks), found)
answer["content"] = found[0]
answer["ready"] = True
`);
  };
}

/** One run's code block, as plain data. */
export interface RunBlock {
  stdout: string;
  stderr: string;
  locals: string[];
  errorType: string | null;
  interrupted: boolean;
  subcalls: { prompt: string; response: string; error?: string }[];
}

/** A completion's outcome; a failed run has `ok: false` and the error's name and message. */
export interface RunOutcome {
  ok: boolean;
  response?: string;
  errorName?: string;
  errorMessage?: string;
  /** Iterations of the root run (0 when it failed). */
  iterations: number;
  /** LM calls, sub-calls and children included (undefined when the run failed). */
  calls?: number;
  /** `rlm.replInfo.bridge` after the run. */
  bridge?: string;
  /** The root run's code blocks per iteration, as they ended (from `code_end` events). */
  turns: RunBlock[][];
  /** The same blocks in one list. */
  blocks: RunBlock[];
  /** The types of every event, in order. */
  events: string[];
  /** The root run's `code_output` chunks, each with its index in `events`. */
  output: { stream: string; text: string; at: number }[];
  /** The root run's trajectory (when it completed). */
  trajectory?: Trajectory;
}

export interface RunSpec {
  context: string;
  rootPrompt?: string;
  /** Default: 'openai'. */
  backend?: 'openai' | 'anthropic';
  environment?: 'pyodide' | 'remote';
  environmentOptions?: Record<string, unknown>;
  /** More RLM options (JSON): maxDepth, cellTimeoutMs, ... */
  options?: Record<string, unknown>;
  /** Custom tools made on the page: name → the source of a JS function. */
  functionTools?: Record<string, string>;
  /** Custom data tools: name → JSON value (or `{ tool, description }`). */
  dataTools?: Record<string, unknown>;
}

/**
 * Runs one completion on the page with the root model 'scripted-root' and the sub-call model
 * 'scripted-sub' on `lm` (the caller sets the script). Never throws for a failed run.
 */
export async function runCompletion(page: Page, lm: LMServer, spec: RunSpec): Promise<RunOutcome> {
  const baseURL = spec.backend === 'anthropic' ? lm.anthropicURL : lm.openaiURL;
  return page.evaluate(
    async ({ baseURL, spec }) => {
      const { RLM } = (window as any).rlmWeb;
      const backend = spec.backend ?? 'openai';
      const events: string[] = [];
      const output: { stream: string; text: string; at: number }[] = [];
      const turns: RunBlock[][] = [];
      const tools: Record<string, unknown> = { ...spec.dataTools };
      // The functions' sources come from the test itself.
      for (const [name, source] of Object.entries(spec.functionTools ?? {})) tools[name] = new Function(`return (${source});`)();
      const rlm = new RLM({
        backend,
        backendOptions: { model: 'scripted-root', apiKey: 'test-key', baseURL },
        otherBackends: [{ backend, backendOptions: { model: 'scripted-sub', apiKey: 'test-key', baseURL } }],
        ...(spec.environment ? { environment: spec.environment } : {}),
        ...(spec.environmentOptions ? { environmentOptions: spec.environmentOptions } : {}),
        ...(Object.keys(tools).length > 0 ? { customTools: tools } : {}),
        ...spec.options,
        onEvent: (e: any) => {
          events.push(e.type);
          if (e.type === 'code_output' && e.depth === 0) output.push({ stream: e.stream, text: e.text, at: events.length - 1 });
          if (e.type !== 'code_end' || e.depth !== 0) return;
          const r = e.record;
          (turns[e.iteration - 1] ??= []).push({
            stdout: r.stdout,
            stderr: r.stderr,
            locals: r.locals,
            errorType: r.errorType,
            interrupted: r.interrupted,
            subcalls: r.subcalls.map((s: any) => ({ prompt: s.prompt, response: s.response, ...(s.error !== undefined ? { error: s.error } : {}) })),
          });
        },
      });
      // Iterations without code have no code_end: fill them in.
      const dense = (iterations: number) => Array.from({ length: Math.max(iterations, turns.length) }, (_, i) => turns[i] ?? []);
      try {
        const result = await rlm.completion(spec.context, { rootPrompt: spec.rootPrompt ?? 'What is the magic number?' });
        const iterations = result.trajectory.iterations.length;
        const byIteration = dense(iterations);
        return { ok: true, response: result.response, iterations, calls: result.usage.calls, bridge: rlm.replInfo?.bridge, turns: byIteration, blocks: byIteration.flat(), events, output, trajectory: result.trajectory };
      } catch (error) {
        const byIteration = dense(0);
        return { ok: false, errorName: (error as Error).name, errorMessage: (error as Error).message, iterations: 0, turns: byIteration, blocks: byIteration.flat(), events, output };
      } finally {
        await rlm.close();
      }
    },
    { baseURL, spec },
  );
}

/** An outcome whose blocks give the number of their sub-calls rather than the sub-calls. */
export type CountedOutcome = Omit<RunOutcome, 'blocks'> & { blocks: (Omit<RunBlock, 'subcalls'> & { subcalls: number })[] };

export function countSubcalls(outcome: RunOutcome): CountedOutcome {
  return { ...outcome, blocks: outcome.blocks.map((b) => ({ ...b, subcalls: b.subcalls.length })) };
}

/** Starts a PyodideRepl with `options` in the page and returns "Name: message" of the error it fails with ("started" if none). */
export function replStartError(page: Page, options: Record<string, unknown>): Promise<string> {
  return page.evaluate(async (opts) => {
    const { PyodideRepl } = (window as any).rlmWeb;
    const repl = new PyodideRepl({ handle: async () => ({ results: [] }) }, opts);
    try {
      await repl.start();
      return 'started';
    } catch (e: any) {
      return `${e.name}: ${e.message}`;
    } finally {
      await repl.close();
    }
  }, options);
}
