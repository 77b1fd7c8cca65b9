/**
 * What the reference implementation's visualizer (rlms: visualizer/src/lib/parse-logs.ts, and
 * the LogViewer and CodeBlock components) takes from a JSONL log, restated here so that tests
 * can check our export the way it reads it: the metadata line is the config, every other
 * parseable line an iteration; the header names the root model, backend and environment; each
 * code block shows a "Variables" panel (entries of `result.locals`, values cut to 30
 * characters); the context shown is the first string `locals.context`.
 */

type Json = Record<string, any>;

export interface VisualizerView {
  /** "model • backend • environment", as the log viewer's header reads. */
  header: string;
  iterations: number;
  codeBlocks: number;
  subCalls: number;
  hasErrors: boolean;
  finalAnswer: string | null;
  /** Per iteration, per code block: the variables panel's "name = value" cells. */
  variables: string[][][];
  /** The first string value of `locals.context` in any code block. */
  context: string | null;
}

/** The visualizer's cell text for one variable value. */
function cell(value: unknown): string {
  if (typeof value === 'string') return value.length > 30 ? `${value.slice(0, 30)}...` : value;
  return String(JSON.stringify(value)).slice(0, 30);
}

export function visualize(jsonl: string): VisualizerView {
  let config: Json = {};
  const iterations: Json[] = [];
  for (const line of jsonl.trim().split('\n').filter((l) => l.trim())) {
    let parsed: Json;
    try {
      parsed = JSON.parse(line);
    } catch {
      continue; // the visualizer logs and skips such lines
    }
    if (parsed.type === 'metadata') config = parsed;
    else iterations.push(parsed);
  }
  let codeBlocks = 0;
  let subCalls = 0;
  let hasErrors = false;
  let finalAnswer: string | null = null;
  let context: string | null = null;
  const variables = iterations.map((it) => {
    codeBlocks += it.code_blocks.length;
    if (it.final_answer) finalAnswer = Array.isArray(it.final_answer) ? it.final_answer[1] : it.final_answer;
    return (it.code_blocks as Json[]).map((block) => {
      const result = block.result ?? {};
      if (result.stderr) hasErrors = true;
      subCalls += result.rlm_calls?.length ?? 0;
      if (context === null && typeof result.locals?.context === 'string') context = result.locals.context;
      const locals: Json = result.locals ?? {};
      return Object.entries(locals).map(([name, value]) => `${name} = ${cell(value)}`);
    });
  });
  return {
    header: `${config.root_model ?? 'Unknown model'} • ${config.backend ?? 'Unknown backend'} • ${config.environment_type ?? 'Unknown env'}`,
    iterations: iterations.length,
    codeBlocks,
    subCalls,
    hasErrors,
    finalAnswer,
    variables,
    context,
  };
}
