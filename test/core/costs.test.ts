/**
 * What the loop does with costs and windows that come from the client: a priced call counts
 * toward maxBudget, an unpriced one is reported as such, and compaction takes the client's
 * context window when no option overrides it.
 */
import { describe, expect, it } from 'vitest';
import { BudgetExceededError } from '../../src/core/errors';
import { COMPACTION_REQUEST } from '../../src/core/prompts';
import { unpricedModels } from '../../src/core/usage';
import { FakeClient, makeRLM, rejection, repl, scripted, type Responder } from './fakes/fakes';

const CONTEXT = 'The quick brown fox. '.repeat(20);

/** A client that knows its model's context window, as the SDK clients do from the price database. */
class WindowedClient extends FakeClient {
  constructor(model: string, respond: Responder, private readonly window: number) {
    super(model, respond);
  }
  async contextWindow(): Promise<number | undefined> {
    return this.window;
  }
}

describe('costs', () => {
  it('stops at maxBudget on list-priced calls, and names the unpriced model in the usage', async () => {
    const root = new FakeClient('priced-model', scripted(repl('a'), repl('a'), repl('a'), 'FINAL(x)'), { costUSD: 0.4 });
    const sub = new FakeClient('local-model', () => 'free?');
    const { rlm } = makeRLM({
      root,
      others: [sub],
      cells: { a: async (ctx) => (await ctx.host.handle({ op: 'llm_query', prompts: ['q'], model: null }, ctx.signal), {}) },
      rlm: { maxBudget: 1 },
    });
    const error = await rejection(rlm.completion(CONTEXT));
    expect(error).toBeInstanceOf(BudgetExceededError);
    const usage = (error as BudgetExceededError).usage!;
    expect(usage.costUSD).toBeCloseTo(1.2, 10);
    expect(unpricedModels(usage)).toEqual(['local-model']);
    expect(usage.unpricedCalls).toBe(usage.models['local-model']?.calls);
  });
});

describe('compaction window', () => {
  it("compacts at the client's context window when no contextWindows option names the model", async () => {
    const padding = 'p'.repeat(700);
    const script = scripted(repl('a', `Exploring. ${padding}`), 'FINAL(done)');
    const respond: Responder = (messages, request, call) => (messages.at(-1)?.content === COMPACTION_REQUEST ? 'SUMMARY' : script(messages, request, call));
    const small = makeRLM({ root: new WindowedClient('m', respond, 400), cells: { a: {} }, rlm: { compaction: true, compactionThreshold: 0.5, customSystemPrompt: 'SYS' } });
    await small.rlm.completion(CONTEXT);
    expect(small.events.some((e) => e.type === 'compaction')).toBe(true);
    // The option wins over the client's figure.
    const script2 = scripted(repl('a', `Exploring. ${padding}`), 'FINAL(done)');
    const big = makeRLM({
      root: new WindowedClient('m', (m, r, c) => script2(m, r, c), 400),
      cells: { a: {} },
      rlm: { compaction: true, compactionThreshold: 0.5, customSystemPrompt: 'SYS', contextWindows: { m: 1_000_000 } },
    });
    await big.rlm.completion(CONTEXT);
    expect(big.events.some((e) => e.type === 'compaction')).toBe(false);
  });
});
