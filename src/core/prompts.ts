/**
 * Everything the root model is told. Written for this project; the structure (system
 * prompt, metadata message, per-turn line) follows the RLM paper's reference design.
 */
import type { ContextDescription } from './types';

export interface ToolDescription {
  name: string;
  description?: string | undefined;
  kind: 'function' | 'data';
  typeName?: string | undefined;
}

export interface SystemPromptOptions {
  /** Whether rlm_query starts child RLMs (false: it is a plain sub-model call). */
  recursive: boolean;
  tools: ToolDescription[];
  /** Roughly how many characters one sub-call can take. */
  subcallChars: number;
  /** Output longer than this is cut before the model sees it. */
  maxOutputChars: number;
  compaction: boolean;
  /** The answer-format section (`buildAnswerFormatSection`), for runs with a schema. Default: none. */
  answerFormat?: string | undefined;
}

export function formatToolsSection(tools: ToolDescription[]): string {
  if (tools.length === 0) return '';
  const lines = tools.map((t) => {
    const what = t.description ?? (t.kind === 'function' ? 'a function provided by the host page' : `a ${t.typeName ?? 'data'} value`);
    return `- \`${t.name}\`: ${what}`;
  });
  return `\nAlso available in the REPL:\n${lines.join('\n')}\n`;
}

const SCHEMA_ARGUMENT =
  'Every query function also takes `schema=`, a JSON Schema dict: each reply is then the parsed value (dict, list, ...) checked against it, or an "Error: ..." string saying what did not match.';

export function buildSystemPrompt(options: SystemPromptOptions): string {
  const k = Math.round(options.subcallChars / 1000);
  const rlm = options.recursive
    ? '`rlm_query(prompt, model=None)` starts a child RLM: a model with its own REPL that can itself explore `prompt` and make sub-calls. Use it for sub-tasks that need several steps of their own. `rlm_query_batched(prompts, model=None)` runs many children concurrently.'
    : '`rlm_query(prompt, model=None)` and `rlm_query_batched(prompts, model=None)` behave like `llm_query` and `llm_query_batched` here (recursion is off at this depth).';
  return `You are the controller of a recursive language model. You answer a question about a context that you cannot see directly: it is stored in a Python REPL, and you explore it by writing code, one step per turn.

The REPL (Python 3, standard library only) holds:
- \`context\`: the data the question is about. It may be far larger than what you can read at once.
- \`llm_query(prompt, model=None)\`: sends \`prompt\` to a sub-model and returns its reply as a string. A sub-model sees only the prompt you give it and can read about ${k}K characters at once. If a call fails you get a string starting with "Error:".
- \`llm_query_batched(prompts, model=None)\`: many independent \`llm_query\` calls run concurrently; returns the replies in the same order. Much faster than calling \`llm_query\` in a loop.
- ${rlm}
- ${SCHEMA_ARGUMENT}
- \`SHOW_VARS()\`: lists the variables you have created.
- \`answer\`: a dict \`{"content": "", "ready": False}\`. When you know the answer, set \`answer["content"]\` to it and \`answer["ready"] = True\`; the run ends after that cell.
- \`FINAL_VAR(name)\`: ends the run with the value of the variable called \`name\` as the answer.
${formatToolsSection(options.tools)}${options.compaction ? '- `history`: a list with the messages of every earlier turn (one entry per turn). When the conversation grows long it is summarized; the summaries are added to this list too, so nothing is lost.\n' : ''}
How to work:
1. Each turn, think briefly in plain text, then write exactly one fenced block tagged \`repl\`:
\`\`\`repl
print(type(context), len(context))
print(context[:500])
\`\`\`
2. You see only what the code prints (the value of a final bare expression is printed too). Output longer than ${options.maxOutputChars} characters is cut, so print summaries and slices, not whole documents.
3. Look at the context before you answer: its structure, size and a sample. Variables persist between turns, so build on earlier results.
4. For large contexts, split the work: chunk the context, search it with Python (re, str methods), and hand chunks to \`llm_query_batched\` with precise instructions, then combine the replies in code.
5. Never guess what a cell will print: wait for the REPL output in the next turn.
6. Only when the result is verified, set \`answer["ready"] = True\` (with \`answer["content"]\`) in a repl block. Do not answer in your first turn.${options.answerFormat ? `\n\n${options.answerFormat}` : ''}`;
}

/** The system prompt's section for a run with a schema: what `answer["content"]` must be. */
export function buildAnswerFormatSection(jsonSchema: object | undefined, vendor: string): string {
  const head = 'Answer format: `answer["content"]` must be a value built from dicts, lists, strings, numbers, booleans and None (not a JSON string) that matches';
  const tail = 'It is checked when you mark the answer; if it does not match you are told what to fix.';
  if (!jsonSchema) return `${head} the ${vendor} schema the application holds. ${tail}`;
  return `${head} this JSON Schema. ${tail}\n\`\`\`json\n${JSON.stringify(jsonSchema, null, 2)}\n\`\`\``;
}

/** What the model is told when its answer does not match the schema. */
export function buildAnswerFeedback(issues: string, attemptsLeft: number): string {
  const next = attemptsLeft > 0
    ? `Fix these and mark the answer again (${attemptsLeft} more attempt${attemptsLeft === 1 ? '' : 's'}): set answer["content"] to the corrected value and answer["ready"] = True.`
    : 'No attempts are left.';
  return `Your answer does not match the required answer format, so the run has not ended:\n${issues}\n${next}`;
}

export interface MetadataOptions {
  rootPrompt?: string | undefined;
  contexts: (ContextDescription & { bytes?: number | undefined })[];
  /** The REPL name of the (first) context. Default: 'context'. */
  contextName?: string | undefined;
  subcallChars: number;
}

function describeContext(c: ContextDescription & { bytes?: number | undefined }): string {
  // Bytes (a File, a Blob) are described before Python has decoded them.
  if (c.bytes !== undefined) return `a Python \`str\` decoded from ${c.bytes.toLocaleString('en-US')} bytes of UTF-8 text`;
  const unit = c.type === 'str' ? 'characters' : 'items';
  return `a Python \`${c.type}\` of ${c.length.toLocaleString('en-US')} ${unit}`;
}

/** The first user message: what the context is, never what it says. */
export function buildMetadataMessage(options: MetadataOptions): string {
  const parts: string[] = [];
  if (options.rootPrompt) parts.push(`The question to answer:\n${options.rootPrompt}`);
  const first = options.contexts[0];
  if (first) parts.push(`\`${options.contextName ?? 'context'}\` is ${describeContext(first)}.`);
  if (first?.type === 'str' && first.length > options.subcallChars) {
    const pieces = Math.ceil(first.length / options.subcallChars);
    parts.push(`That is about ${pieces} times what one sub-call can read, so plan to split it.`);
  }
  return parts.join('\n\n');
}

/** The first user message's text before the turn line: the context's description, then the prologue. */
export function buildOpening(metadata: string, userPrologue: string | undefined): string {
  return userPrologue ? `${metadata}\n\n${userPrologue}` : metadata;
}

/** How to work as an orchestrator (the `orchestrator` option). */
export const ORCHESTRATOR_GUIDANCE = `Work as an orchestrator: you direct the work and delegate the reading.
- Once you have seen the shape of the context, write a short plan: the steps, which of them go to sub-calls, and about how many turns each takes. Then carry it out one turn at a time, and revise it when an output surprises you.
- Keep your own conversation small. Reading, summarizing, classifying and checking long text belong in \`llm_query\` / \`llm_query_batched\` calls; print only what you need for the next decision (counts, short samples, the sub-calls' short answers). When a plain Python search already settles the question, skip the sub-calls.
- Sub-models see only the prompt you send and have no REPL. Give each a focused piece and a precise question, and ask for a short answer in a fixed format your code can parse.
- Batch sensibly: prompts of up to about 100K characters and a few dozen prompts per batch. Do not send thousands of tiny prompts; filter or group them in Python first.
- Verify before answering: print the candidate answer, check it against the evidence, and only then set \`answer["ready"] = True\`.
- If your turns are running out, submit your best supported answer rather than none.`;

/** `prompt` (built-in or custom) with the orchestrator guidance appended. */
export function withOrchestratorGuidance(prompt: string): string {
  return `${prompt}\n\n${ORCHESTRATOR_GUIDANCE}`;
}

export interface TurnOptions {
  iteration: number;
  maxIterations: number;
  contextCount: number;
  historyCount: number;
}

/** The short line that opens each turn. */
export function buildTurnPrompt(options: TurnOptions): string {
  const lines: string[] = [];
  if (options.iteration === 0) {
    lines.push('You have not looked at the context yet. Start by inspecting it; do not answer in this turn.');
  }
  if (options.contextCount > 1) {
    lines.push(`Note: ${options.contextCount} contexts are loaded (context_0 through context_${options.contextCount - 1}; \`context\` is context_0).`);
  }
  if (options.historyCount === 1) {
    lines.push('Note: the previous conversation is in the variable `history` (also `history_0`).');
  } else if (options.historyCount > 1) {
    lines.push(`Note: ${options.historyCount} previous conversations are in history_0 through history_${options.historyCount - 1}.`);
  }
  lines.push(`Turn ${options.iteration + 1} of ${options.maxIterations}. Write your next repl block.`);
  return lines.join('\n');
}

export const NO_CODE_REMINDER =
  'No ```repl block was found in your reply, so nothing ran. Write Python in a block fenced with ```repl (not ```python), or set answer["ready"] = True in one when you are done.';

/** Feedback for a reply written as tool-call markup (`<function_calls>`, `<tool_call>`, ...) instead of a repl block. */
export function buildToolMarkupReminder(markup: string): string {
  return `Your reply used tool-call markup (${markup}) instead of a \`\`\`repl block. No tools of that kind exist here, so nothing ran and nothing came back: any result your reply shows for it was not produced by the REPL. Write the Python in a block fenced with \`\`\`repl, end your reply there, and read its output in the next turn.`;
}

export const FINAL_REQUEST =
  'You have no turns left. Reply now with your final answer to the question, as plain text, based on what you found. Do not write code.';

/** FINAL_REQUEST for a run with a schema. */
export const FINAL_REQUEST_STRUCTURED =
  'You have no turns left. Reply now with your final answer as JSON that matches the answer format: only the JSON, no code, no other text.';

export const COMPACTION_REQUEST =
  'The conversation is getting long. Summarize your progress: what you learned about the context, which variables hold what, what is left to do, and your best answer so far. Be concise and specific; this summary replaces the conversation.';

export function buildCompactedNote(count: number): string {
  return `The conversation was summarized (${count} time${count === 1 ? '' : 's'}) to save space. The summary is above; the full earlier messages are in the REPL variable \`history\`. Your variables are unchanged: use SHOW_VARS() to list them.`;
}
