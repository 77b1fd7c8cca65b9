/**
 * At the depth limit (`maxDepth: 0` for the root, or a child at the bottom) an RLM is a
 * plain LM call on the context and the question, recorded as a run of one iteration.
 */
import { contextAsText, describeInput } from './context-input';
import type { EventHub } from './events';
import type { CompletionOptions } from './options';
import { capAnswer } from './parsing';
import { buildAnswerFormatSection } from './prompts';
import { RunRecorder } from './recorder';
import { toJSONText } from './schema';
import type { AnswerChecker } from './schema-answers';
import type { ChatMessage, CompletionResult, ContextInput, LMClient, RunConfig, SamplingArgs, TrajectorySink } from './types';
import { UsageTracker } from './usage';

/** What the plain call needs of the RLM making it. */
export interface PlainCallSetup {
  client: LMClient;
  hub: EventHub;
  logger: TrajectorySink | undefined;
  config: RunConfig;
  depth: number;
  parentUsage: UsageTracker | undefined;
  parentCallId: string | undefined;
  sampling: SamplingArgs | undefined;
  /** Characters of the answer kept (`maxAnswerChars`). */
  maxAnswerChars: number;
}

/** One LM call, held to the schema when there is one (one call, so one attempt). */
export async function plainCompletion(setup: PlainCallSetup, context: ContextInput, options: CompletionOptions, answers: AnswerChecker | undefined): Promise<CompletionResult<unknown>> {
  const started = performance.now();
  const usage = new UsageTracker(setup.parentUsage);
  const recorder = new RunRecorder(setup.hub, setup.logger, usage, { config: setup.config, depth: setup.depth, rootPrompt: options.rootPrompt, context: describeInput(context), parentCallId: setup.parentCallId });
  if (answers) recorder.trajectory.schema = answers.schema.recorded;
  recorder.start();
  try {
    const text = await contextAsText(context);
    const format = answers?.schema.jsonSchema;
    const question = options.rootPrompt ? `${text}\n\n${options.rootPrompt}` : text;
    const messages: ChatMessage[] = [{ role: 'user', content: answers ? `${question}\n\n${buildAnswerFormatSection(format, answers.schema.recorded.vendor)}` : question }];
    const timestamp = new Date().toISOString();
    const lm = await setup.client.complete({ messages, signal: options.signal, sampling: setup.sampling, ...(format ? { responseFormat: { name: 'answer', schema: format } } : {}) });
    usage.add(setup.client.model, lm.usage);
    const whole = lm.parsed !== undefined ? JSON.stringify(lm.parsed) : lm.text;
    const checked = answers ? await answers.check(whole, true) : undefined;
    const answer = capAnswer(whole, setup.maxAnswerChars);
    recorder.iteration({ iteration: 1, timestamp, prompt: messages, response: lm.text, reasoning: lm.reasoning, codeBlocks: [], finalAnswer: checked?.ok === false ? null : answer, iterationTimeMs: performance.now() - started, usage: lm.usage, validation: checked?.record });
    if (checked?.ok === false) throw checked.error;
    if (checked?.ok) return recorder.succeed(toJSONText(checked.value, answer), 'answer', performance.now() - started, { value: checked.value });
    return recorder.succeed(answer, 'answer', performance.now() - started);
  } catch (error) {
    throw recorder.fail(error, performance.now() - started);
  } finally {
    await recorder.flush();
  }
}
