/**
 * One turn of the loop: ask the root model, run the ```repl blocks of its reply in order,
 * look for an answer, and say what the model is told next. Also the out-of-turns call.
 */
import { raceAbort } from './abort';
import type { AnswerValidationError } from './errors';
import { LiveOutput } from './live-output';
import { capAnswer, findCodeBlocks, findTextAnswer, findToolMarkup, formatFeedback, hasOnlyForeignFences } from './parsing';
import { buildToolMarkupReminder, NO_CODE_REMINDER } from './prompts';
import { callRoot, type Run } from './run';
import type { AnswerChecker } from './schema-answers';
import type { CellResult, ChatMessage, CodeBlockRecord, IterationRecord, LMClient, LMResult, ReplEnvironment, ResponseFormat, SamplingArgs, SubcallRecord, ToolCallRecord } from './types';

/** What a turn needs besides the run: the root model and the REPL (booting while the model thinks). */
export interface TurnSetup {
  client: LMClient;
  env: ReplEnvironment;
  /** Settles once the REPL has booted and holds the context. */
  ready: Promise<void>;
  cellTimeoutMs: number;
  maxOutputChars: number;
  /** Characters of an answer kept (`maxAnswerChars`): every answer is cut to it before it is recorded. */
  maxAnswerChars: number;
  /** Sampling of the root model's calls. */
  sampling?: SamplingArgs | undefined;
  /** Runs with a schema: checks each marked answer. */
  answers?: AnswerChecker | undefined;
}

export interface TurnOutcome {
  record: IterationRecord;
  /** The answer the turn marked, or null. */
  answer: string | null;
  /** For the next user message when there is no answer. */
  feedback: string;
  /** stderr of the cells that raised (not interrupted), for the error limit; undefined when none did. */
  errors: string | undefined;
  /** Runs with a schema: the validated answer, when `answer` is set. */
  value?: unknown;
  /** Runs with a schema: the answer failed and no attempts are left; thrown once the turn is recorded. */
  invalid?: AnswerValidationError | undefined;
}

/** Asks the root model once; records the reply as the partial answer and emits it. */
async function ask(setup: TurnSetup, run: Run, messages: ChatMessage[], iteration: number, format?: ResponseFormat): Promise<{ lm: LMResult; prompt: ChatMessage[]; started: number; timestamp: string }> {
  const started = performance.now();
  const timestamp = new Date().toISOString();
  run.hub.emit({ type: 'iteration_start', ...run.base, iteration });
  const prompt = messages.map((m) => ({ ...m }));
  const lm = await callRoot(setup.client, run, messages, setup.sampling, format);
  if (lm.text.trim()) run.bestPartial = lm.text;
  run.hub.emit({ type: 'lm_response', ...run.base, iteration, text: lm.text, reasoning: lm.reasoning, usage: lm.usage });
  // A reply that pushed the run over a limit is kept as the partial answer, not run.
  run.guard.check();
  messages.push({ role: 'assistant', content: lm.text });
  return { lm, prompt, started, timestamp };
}

/** Plays turn `iteration` (1-based): `messages` gains the model's reply. */
export async function playTurn(setup: TurnSetup, run: Run, messages: ChatMessage[], iteration: number): Promise<TurnOutcome> {
  const { lm, prompt, started, timestamp } = await ask(setup, run, messages, iteration);
  const until = <T>(promise: Promise<T>): Promise<T> => raceAbort(promise, run.guard.signal);
  const text = lm.text;
  const blocks = findCodeBlocks(text);
  const records: CodeBlockRecord[] = [];
  /** The answer as the REPL or the reply gave it, before the cap: only the schema check sees it whole. */
  let answer: string | null = null;
  if (blocks.length > 0) await until(setup.ready);
  for (let b = 0; b < blocks.length && answer === null; b++) {
    const cell = await runCell(setup, run, blocks[b]!, iteration, b);
    records.push(cell.record);
    answer = cell.answer;
  }
  run.guard.check();
  let textAnswerError: string | undefined;
  if (answer === null) {
    const textAnswer = findTextAnswer(text);
    if (textAnswer?.kind === 'final') answer = textAnswer.value;
    if (textAnswer?.kind === 'final_var') {
      await until(setup.ready);
      const value = await until(setup.env.resolveVariable(textAnswer.name));
      if (value === null) {
        textAnswerError = missingVariableNote(textAnswer.name);
      } else {
        answer = value;
      }
    }
  }
  const checked = answer !== null && setup.answers ? await setup.answers.check(answer) : undefined;
  if (answer !== null) answer = capAnswer(answer, setup.maxAnswerChars);
  if (checked && !checked.ok) {
    // Not an answer yet: the model is told what to fix. It stays the best partial answer.
    run.bestPartial = answer ?? undefined;
    answer = null;
    textAnswerError = checked.feedback;
  }
  const failed = records.filter((r) => r.errorType !== null && !r.interrupted);
  const record: IterationRecord = {
    iteration,
    timestamp,
    prompt,
    response: text,
    reasoning: lm.reasoning,
    codeBlocks: records,
    finalAnswer: answer,
    iterationTimeMs: performance.now() - started,
    usage: lm.usage,
    validation: checked?.record,
  };
  return {
    record,
    answer,
    feedback: answer === null ? feedbackFor(text, blocks, records, textAnswerError, setup.maxOutputChars) : '',
    errors: failed.length > 0 ? failed.map((r) => r.stderr).join('\n') : undefined,
    value: checked?.ok ? checked.value : undefined,
    invalid: checked && !checked.ok ? checked.error : undefined,
  };
}

function missingVariableNote(name: string): string {
  return `FINAL_VAR(${name}): there is no variable named '${name}' in the REPL, so this is not an answer yet. Create it in a repl block first (or set answer["content"] and answer["ready"] = True).`;
}

/** What the model was told after a stored iteration that gave no answer (a resume rebuilds the conversation with it). */
export function storedFeedback(record: IterationRecord, maxOutputChars: number): string {
  const textAnswer = findTextAnswer(record.response);
  // A FINAL_VAR in an iteration without an answer named a variable that did not exist.
  const missing = textAnswer?.kind === 'final_var' ? missingVariableNote(textAnswer.name) : undefined;
  return feedbackFor(record.response, findCodeBlocks(record.response), record.codeBlocks, missing, maxOutputChars);
}

function feedbackFor(text: string, blocks: string[], records: CodeBlockRecord[], textAnswerError: string | undefined, maxOutputChars: number): string {
  if (blocks.length > 0) {
    const feedback = formatFeedback(blocks.slice(0, records.length).map((code, k) => ({ code, result: records[k]! })), maxOutputChars);
    return textAnswerError ? `${feedback}\n\n${textAnswerError}` : feedback;
  }
  if (textAnswerError) return textAnswerError;
  const markup = findToolMarkup(text);
  if (markup) return buildToolMarkupReminder(markup);
  return hasOnlyForeignFences(text) ? `${NO_CODE_REMINDER} (Your \`\`\`python block was not run.)` : NO_CODE_REMINDER;
}

/**
 * Out of turns: one last call for a plain-text answer, recorded like any iteration. With a
 * schema, the call asks for structured output (when the schema has a JSON Schema) and the
 * answer gets its last check.
 */
export async function playFinalTurn(setup: TurnSetup, run: Run, messages: ChatMessage[], iteration: number): Promise<Pick<TurnOutcome, 'record' | 'value' | 'invalid'> & { answer: string }> {
  const jsonSchema = setup.answers?.schema.jsonSchema;
  const { lm, prompt, started, timestamp } = await ask(setup, run, messages, iteration, jsonSchema ? { name: 'answer', schema: jsonSchema } : undefined);
  const textAnswer = findTextAnswer(lm.text);
  const whole = lm.parsed !== undefined ? JSON.stringify(lm.parsed) : textAnswer?.kind === 'final' ? textAnswer.value : lm.text;
  const checked = setup.answers ? await setup.answers.check(whole, true) : undefined;
  const answer = capAnswer(whole, setup.maxAnswerChars);
  const record: IterationRecord = {
    iteration,
    timestamp,
    prompt,
    response: lm.text,
    reasoning: lm.reasoning,
    codeBlocks: [],
    finalAnswer: checked && !checked.ok ? null : answer,
    iterationTimeMs: performance.now() - started,
    usage: lm.usage,
    validation: checked?.record,
  };
  return { record, answer, value: checked?.ok ? checked.value : undefined, invalid: checked && !checked.ok ? checked.error : undefined };
}

/** Runs one cell; `answer` is the answer it marked as the REPL gave it, the record holds it cut to `maxAnswerChars`. */
async function runCell(setup: TurnSetup, run: Run, code: string, iteration: number, block: number): Promise<{ record: CodeBlockRecord; answer: string | null }> {
  run.hub.emit({ type: 'code_start', ...run.base, iteration, block, code });
  const subcalls: SubcallRecord[] = [];
  const toolCalls: ToolCallRecord[] = [];
  run.cellSubcalls = subcalls;
  run.cellTools = toolCalls;
  const live = new LiveOutput({ ...run.base, iteration, block }, (event) => run.hub.emit(event));
  let result: CellResult;
  try {
    result = await setup.env.execute(code, { timeoutMs: setup.cellTimeoutMs, signal: run.guard.signal, onOutput: live.write });
  } finally {
    live.close();
    run.cellSubcalls = undefined;
    run.cellTools = undefined;
  }
  const record: CodeBlockRecord = {
    code,
    stdout: result.stdout,
    stderr: result.stderr,
    locals: result.locals,
    ...(result.previews ? { previews: result.previews } : {}),
    executionTimeMs: result.executionTimeMs,
    // The worker's size is not trusted: what is recorded (and emitted) is held to the cap.
    finalAnswer: result.finalAnswer === null ? null : capAnswer(result.finalAnswer, setup.maxAnswerChars),
    errorType: result.errorType,
    interrupted: result.interrupted,
    subcalls,
    ...(toolCalls.length > 0 ? { toolCalls } : {}),
  };
  run.hub.emit({ type: 'code_end', ...run.base, iteration, block, record });
  return { record, answer: result.finalAnswer };
}
