/**
 * Trajectories and a reference-format log for the store tests, written by hand.
 */
import type { IterationRecord, SubcallRecord, Trajectory, TrajectorySink, UsageSummary } from '../../src/core/types';
import { joinRun, type RunSummary, type TrajectoryStore } from '../../src/store/types';

export function usageOf(model: string, input: number, output: number, cost = 0, cached = 0): UsageSummary {
  return {
    models: { [model]: { calls: 1, inputTokens: input, outputTokens: output, cachedInputTokens: cached, costUSD: cost } },
    calls: 1,
    inputTokens: input,
    outputTokens: output,
    cachedInputTokens: cached,
    costUSD: cost,
  };
}

function iteration(n: number, extra: Partial<IterationRecord> = {}): IterationRecord {
  return {
    iteration: n,
    timestamp: `2026-11-24T09:0${n}:00.000Z`,
    prompt: [
      { role: 'system', content: 'You are an RLM.' },
      { role: 'user', content: `turn ${n}: "quoted" and unicode ✓ 日本` },
    ],
    response: `Step ${n}\n\n\`\`\`repl\nprint(${n})\n\`\`\``,
    codeBlocks: [
      {
        code: `print(${n})`,
        stdout: `${n}\n`,
        stderr: '',
        locals: ['x', 'chunks'],
        executionTimeMs: 12.345678 * n,
        finalAnswer: null,
        errorType: null,
        interrupted: false,
        subcalls: [],
      },
    ],
    finalAnswer: null,
    iterationTimeMs: 1234.5678 * n,
    usage: { inputTokens: 100 * n, outputTokens: 20 * n, cachedInputTokens: 50 },
    ...extra,
  };
}

/** A child RLM's trajectory, nested in a sub-call of the parent. */
function childTrajectory(): Trajectory {
  return {
    id: 'child-1',
    startedAt: '2026-11-24T09:01:30.000Z',
    config: {
      rootModel: 'gpt-5-mini',
      backend: 'openai',
      backendOptions: { model: 'gpt-5-mini' },
      otherBackends: [],
      environment: 'pyodide',
      environmentOptions: {},
      maxDepth: 2,
      maxIterations: 5,
      depth: 1,
    },
    context: { type: 'str', length: 42 },
    iterations: [iteration(1, { finalAnswer: 'child answer', codeBlocks: [] })],
    status: 'completed',
    endReason: 'answer',
    response: 'child answer',
    usage: usageOf('gpt-5-mini', 300, 40),
    executionTimeMs: 2000.5,
  };
}

/** A three-iteration root run with an LM sub-call, a child RLM and a failed cell. */
export function sampleTrajectory(): Trajectory {
  const llm: SubcallRecord = {
    kind: 'llm',
    model: 'gpt-5-mini',
    prompt: 'Find the number in: ...',
    response: '4817305',
    usage: usageOf('gpt-5-mini', 1000, 5, 0.0021, 200),
    executionTimeMs: 321.987654,
    callId: 'b7.0',
    index: 0,
  };
  const rlm: SubcallRecord = {
    kind: 'rlm',
    model: 'gpt-5-mini',
    prompt: 'Summarize chunk 2',
    response: 'child answer',
    usage: usageOf('gpt-5-mini', 300, 40),
    executionTimeMs: 2100.25,
    trajectory: childTrajectory(),
    callId: 'b7.1',
    index: 1,
  };
  const failed: SubcallRecord = { kind: 'llm', model: 'gpt-5-mini', prompt: 'p', response: '', usage: usageOf('gpt-5-mini', 0, 0), executionTimeMs: 3, error: 'LMTimeoutError: took too long' };
  const it2 = iteration(2, { reasoning: 'thinking about chunks' });
  it2.codeBlocks[0]!.subcalls = [llm, rlm, failed];
  // Values the REPL previewed (`chunks` without one, as a remote REPL of an older proxy would send).
  it2.codeBlocks[0]!.previews = { x: 'the magic number is 4817305, found in chunk 2 of 3' };
  const it3 = iteration(3, { finalAnswer: '4817305' });
  // Rebuilt from durable steps after the tab closed mid-iteration (then resumed).
  it3.partial = true;
  it3.codeBlocks.push({
    code: '1/0',
    stdout: '',
    stderr: 'ZeroDivisionError: division by zero',
    locals: [],
    executionTimeMs: 0.5,
    finalAnswer: null,
    errorType: 'ZeroDivisionError',
    interrupted: false,
    subcalls: [],
  });
  it3.codeBlocks[0]!.finalAnswer = '4817305';
  return {
    id: 'run-1',
    startedAt: '2026-11-24T09:00:00.000Z',
    config: {
      rootModel: 'gpt-5-nano',
      backend: 'openai',
      backendOptions: { model: 'gpt-5-nano', baseURL: 'http://127.0.0.1:1/v1' },
      otherBackends: [{ backend: 'openai', backendOptions: { model: 'gpt-5-mini' } }],
      environment: 'pyodide',
      environmentOptions: { cellTimeoutMs: 30000 },
      maxDepth: 2,
      maxIterations: 30,
      maxBudget: 1.5,
      depth: 0,
    },
    rootPrompt: 'What is the magic number?',
    context: { type: 'str', length: 6_000_000, bytes: 6_000_000 },
    iterations: [iteration(1), it2, it3],
    status: 'completed',
    endReason: 'answer',
    response: '4817305',
    usage: usageOf('gpt-5-nano', 2400, 300, 0.01),
    executionTimeMs: 9876.54321,
  };
}

/**
 * A log as the reference Python RLMLogger writes it (REFERENCE.md §5): one metadata line,
 * then iterations; the logger served two completions, so `iteration` restarts at 1.
 */
export const REFERENCE_LOG = [
  {
    type: 'metadata',
    timestamp: '2026-06-25T14:03:11.123456',
    root_model: 'gpt-5',
    max_depth: 2,
    max_iterations: 10,
    backend: 'openai',
    backend_kwargs: { model_name: 'gpt-5' },
    environment_type: 'local',
    environment_kwargs: {},
    other_backends: ['openai'],
  },
  {
    type: 'iteration',
    iteration: 1,
    timestamp: '2026-06-25T14:03:15.000001',
    prompt: [
      { role: 'system', content: 'You are tasked with answering a query with associated context.' },
      { role: 'user', content: 'Your context is a str with 50000 total characters. The original query: "What is the secret number?"' },
    ],
    response: 'Let me look.\n```repl\nprint(context[:100])\n```',
    code_blocks: [
      {
        code: 'print(context[:100])',
        result: {
          stdout: 'line 0 ...\n',
          stderr: '',
          locals: { context: 'line 0 ...', n: 3, chunks: ['a', 'b'] },
          execution_time: 0.0123,
          rlm_calls: [],
          final_answer: null,
        },
      },
    ],
    final_answer: null,
    iteration_time: 2.5,
  },
  {
    type: 'iteration',
    iteration: 2,
    timestamp: '2026-06-25T14:03:20.5',
    prompt: [{ role: 'user', content: 'Continue.' }],
    response: '```repl\nr = llm_query("find it")\n```',
    code_blocks: [
      {
        code: 'r = llm_query("find it")\nsub = rlm_query("dig")',
        result: {
          stdout: '',
          stderr: '',
          locals: { r: '7421' },
          execution_time: 1.75,
          rlm_calls: [
            {
              root_model: 'gpt-5-mini',
              prompt: 'find it',
              response: '7421',
              usage_summary: { model_usage_summaries: { 'gpt-5-mini': { total_calls: 1, total_input_tokens: 1200, total_output_tokens: 4, total_cost: 0.0003 } }, total_cost: 0.0003 },
              execution_time: 0.9,
            },
            {
              root_model: 'gpt-5-mini',
              prompt: 'dig',
              response: 'deep',
              usage_summary: { model_usage_summaries: { 'gpt-5-mini': { total_calls: 2, total_input_tokens: 800, total_output_tokens: 30 } } },
              execution_time: 0.7,
              metadata: {
                run_metadata: { root_model: 'gpt-5-mini', max_depth: 2, max_iterations: 10, backend: 'openai', backend_kwargs: {}, environment_type: 'local', environment_kwargs: {}, other_backends: null },
                iterations: [
                  { type: 'iteration', iteration: 1, timestamp: '2026-06-25T14:03:21', prompt: [{ role: 'user', content: 'dig' }], response: 'x', code_blocks: [], final_answer: 'deep', iteration_time: 0.6 },
                ],
              },
            },
          ],
          final_answer: '7421',
        },
      },
    ],
    final_answer: '7421',
    iteration_time: 3.25,
  },
  {
    type: 'iteration',
    iteration: 1,
    timestamp: '2026-06-25T14:05:00',
    prompt: [{ role: 'user', content: 'second completion' }],
    response: 'FINAL(done)',
    code_blocks: [],
    final_answer: ['FINAL', 'done'],
    iteration_time: 0.25,
  },
]
  .map((line) => JSON.stringify(line))
  .join('\n');

/** A TrajectoryStore in memory that records the order of writes (for tests in Node). */
export class RecordingStore implements TrajectoryStore {
  readonly runs = new Map<string, RunSummary>();
  readonly iterations = new Map<string, IterationRecord[]>();
  readonly log: string[] = [];
  /** Set to make writes fail; `delay` to make them slow. */
  failWith: ((what: string) => unknown) | undefined;
  delayMs = 0;

  private async write(what: string, apply: () => void): Promise<void> {
    if (this.delayMs) await new Promise((ok) => setTimeout(ok, this.delayMs));
    const error = this.failWith?.(what);
    if (error) throw error;
    apply();
    this.log.push(what);
  }

  writeRun(run: RunSummary): Promise<void> {
    return this.write(`run ${run.id} ${run.status}`, () => this.runs.set(run.id, structuredClone(run)));
  }

  writeIteration(run: RunSummary, it: IterationRecord): Promise<void> {
    return this.write(`iteration ${run.id} ${it.iteration}`, () => {
      const list = this.iterations.get(run.id) ?? [];
      list.push(structuredClone(it));
      this.iterations.set(run.id, list);
      this.runs.set(run.id, structuredClone(run));
    });
  }

  async hasRun(id: string): Promise<boolean> {
    return this.runs.has(id);
  }

  async listRuns(): Promise<RunSummary[]> {
    return [...this.runs.values()].sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  }

  async getRun(id: string): Promise<Trajectory | undefined> {
    const run = this.runs.get(id);
    return run && joinRun(run, this.iterations.get(id) ?? []);
  }

  async deleteRun(id: string): Promise<void> {
    this.runs.delete(id);
    this.iterations.delete(id);
  }

  async clear(): Promise<void> {
    this.runs.clear();
    this.iterations.clear();
  }
}

/** Plays a trajectory into a sink the way the loop does. */
export function replay(sink: TrajectorySink, finished: Trajectory): Trajectory {
  const live: Trajectory = { ...structuredClone(finished), iterations: [], status: 'running' };
  delete live.endReason;
  delete live.response;
  sink.runStarted(live);
  for (const it of finished.iterations) {
    live.iterations.push(it);
    sink.iterationFinished(live, it);
  }
  live.status = finished.status;
  if (finished.endReason) live.endReason = finished.endReason;
  if (finished.response !== undefined) live.response = finished.response;
  sink.runEnded(live);
  return live;
}
