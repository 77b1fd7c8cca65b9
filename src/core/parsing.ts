/**
 * Reading the root model's replies: ```repl blocks to run and FINAL(...) / FINAL_VAR(...)
 * answers written in the text; and writing cell results back as feedback.
 */
import type { CellResult } from './types';

const OPEN_REPL = /^\s*```repl[^\S\n]*$/;
/** A ```repl opener after prose on the same line ("Run: ```repl"); group 1 is the prose. */
const INLINE_REPL = /^(.*[^`\s])[^\S\n]*```repl[^\S\n]*$/;
const OPEN_ANY = /^\s*```[\w+-]*[^\S\n]*$/;
const CLOSE = /^\s*```[^\S\n]*$/;

/** One piece of a root model's reply, in order: prose (with any non-repl fences) or a ```repl block. */
export type ReplySegment =
  | { kind: 'text'; text: string }
  /** `runs` is true exactly for the blocks the loop executes (non-empty `repl` blocks), in order. */
  | { kind: 'code'; code: string; language: string; runs: boolean };

interface Segments {
  segments: ReplySegment[];
  /** Lines outside every fence, where FINAL(...) may stand. */
  prose: string[];
  /** Fenced blocks in other languages (```python): used to nudge the model. */
  otherFences: number;
}

function segment(text: string): Segments {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const segments: ReplySegment[] = [];
  const prose: string[] = [];
  let otherFences = 0;
  let textLines: string[] = [];
  let block: string[] | undefined;
  let foreign = false;
  const flushText = () => {
    if (textLines.join('').trim()) segments.push({ kind: 'text', text: textLines.join('\n') });
    textLines = [];
  };
  const pushCode = (lines: string[]) => {
    const code = lines.join('\n').trim();
    segments.push({ kind: 'code', code, language: 'repl', runs: code.length > 0 });
  };
  for (const line of lines) {
    if (block) {
      if (CLOSE.test(line)) {
        pushCode(block);
        block = undefined;
      } else {
        block.push(line);
      }
      continue;
    }
    if (foreign) {
      // A fence in another language stays part of the text around it.
      textLines.push(line);
      if (CLOSE.test(line)) foreign = false;
      continue;
    }
    const inline = OPEN_REPL.test(line) ? undefined : INLINE_REPL.exec(line)?.[1];
    if (OPEN_REPL.test(line)) {
      flushText();
      block = [];
    } else if (OPEN_ANY.test(line)) {
      foreign = true;
      otherFences++;
      textLines.push(line);
    } else if (inline !== undefined) {
      prose.push(inline);
      textLines.push(inline);
      flushText();
      block = [];
    } else {
      prose.push(line);
      textLines.push(line);
    }
  }
  // A reply cut off inside a repl block still runs: the error, if any, tells the model.
  if (block) pushCode(block);
  flushText();
  return { segments, prose, otherFences };
}

/**
 * Splits a root model's reply the way the loop reads it: prose and the ```repl blocks it runs.
 * Views use it so that the i-th cell they draw is the i-th block the loop executed.
 *
 * @example
 * const cells = segmentReply(reply).filter((s) => s.kind === 'code' && s.runs);
 */
export function segmentReply(text: string): ReplySegment[] {
  return segment(text).segments;
}

/** The ```repl blocks of a reply, in order, trimmed. Only the `repl` tag counts. */
export function findCodeBlocks(text: string): string[] {
  return segment(text).segments.flatMap((s) => (s.kind === 'code' && s.runs ? [s.code] : []));
}

/** Whether the reply has fenced code in another language (```python) but no ```repl. */
export function hasOnlyForeignFences(text: string): boolean {
  const s = segment(text);
  return s.otherFences > 0 && !s.segments.some((seg) => seg.kind === 'code' && seg.runs);
}

/** Tool-call markup of other agent frameworks: Anthropic-style XML, Hermes/Qwen tags, Llama's. */
const TOOL_MARKUP = /<(?:[a-z]+:)?(function_calls|invoke|tool_call|tool_use|function_call)(?=[\s>/])|<(function)=[\w.-]{1,100}>|<\|(python_tag)\|>/i;

/**
 * The tool-call markup a reply uses instead of ```repl blocks (`<function_calls>`,
 * `<invoke name=...>`, `<tool_call>`, ...), named as a short tag; null when there is none.
 * Looks outside repl blocks only.
 */
export function findToolMarkup(text: string): string | null {
  for (const seg of segment(text).segments) {
    if (seg.kind !== 'text') continue;
    const m = TOOL_MARKUP.exec(seg.text);
    if (!m) continue;
    if (m[1]) return `<${m[1].toLowerCase()}>`;
    if (m[2]) return '<function=...>';
    return '<|python_tag|>';
  }
  return null;
}

/** An answer written in the reply text: `FINAL(value)` or `FINAL_VAR(name)`. */
export type TextAnswer = { kind: 'final'; value: string } | { kind: 'final_var'; name: string };

/**
 * FINAL(answer) or FINAL_VAR(name) at the start of a line outside code fences (the
 * original RLM text protocol). FINAL_VAR wins when both appear, as in the reference.
 */
export function findTextAnswer(text: string): TextAnswer | null {
  const { prose } = segment(text);
  for (const line of prose) {
    const m = /^\s*FINAL_VAR\(\s*(.*?)\s*\)\s*$/.exec(line);
    if (m) return { kind: 'final_var', name: stripQuotes(m[1] ?? '') };
  }
  for (let i = 0; i < prose.length; i++) {
    const line = prose[i] ?? '';
    const start = /^\s*FINAL\(/.exec(line);
    if (!start) continue;
    const rest = [line.slice(start[0].length), ...prose.slice(i + 1)].join('\n');
    // The answer ends at the ')' that closes FINAL( — nested pairs inside are kept.
    let depth = 1;
    for (let k = 0; k < rest.length; k++) {
      const ch = rest[k];
      if (ch === '(') depth++;
      else if (ch === ')' && --depth === 0) return { kind: 'final', value: rest.slice(0, k).trim() };
    }
    // Unbalanced: fall back to the last ')' of the first line that ends with one.
    const lines = rest.split('\n');
    for (let j = 0; j < lines.length; j++) {
      const candidate = lines.slice(0, j + 1).join('\n').trimEnd();
      if (candidate.endsWith(')')) return { kind: 'final', value: candidate.slice(0, -1).trim() };
    }
    return { kind: 'final', value: rest.trim() };
  }
  return null;
}

function stripQuotes(name: string): string {
  return name.trim().replace(/^(['"])(.*)\1$/, '$2').trim();
}

/** Cuts `text` to its first `limit` characters, saying how much was cut. */
export function truncate(text: string, limit: number): string {
  if (text.length <= limit) return text;
  const cut = text.length - limit;
  return `${text.slice(0, limit)}\n... [${cut} more characters cut; print a smaller slice to see them]`;
}

/**
 * A run's answer held to `limit` characters: a longer one keeps its start, cut where no
 * character is split, and gains a note saying how much was dropped and what to do.
 */
export function capAnswer(text: string, limit: number): string {
  if (text.length <= limit) return text;
  // Never end on the first half of a surrogate pair (an emoji, a rare CJK character).
  const end = limit > 0 && /[\uD800-\uDBFF]/.test(text.charAt(limit - 1)) ? limit - 1 : limit;
  const dropped = text.length - end;
  return `${text.slice(0, end)}\n\n[rlm-web: the answer was ${text.length} characters long; the last ${dropped} were dropped (maxAnswerChars is ${limit}). Raise maxAnswerChars, or ask for a shorter answer and keep long results in the REPL or a custom tool.]`;
}

/** Cuts `text` to its last `limit` characters (where an error message stands), saying how much was cut. */
export function truncateStart(text: string, limit: number): string {
  if (text.length <= limit) return text;
  const cut = text.length - limit;
  return `[${cut} earlier characters cut] ...\n${text.slice(cut)}`;
}

/**
 * How a cell's `limit` characters are shared between stdout and stderr: each stream gets what
 * it needs if that fits, else at least half; the other gets the rest.
 */
export function shareOutputLimit(stdoutLength: number, stderrLength: number, limit: number): [number, number] {
  if (stdoutLength + stderrLength <= limit) return [stdoutLength, stderrLength];
  const half = Math.floor(limit / 2);
  if (stdoutLength <= half) return [stdoutLength, limit - stdoutLength];
  if (stderrLength <= half) return [limit - stderrLength, stderrLength];
  return [half, limit - half];
}

/** Most variable names listed after a cell, and most characters of that line. */
const MAX_LISTED_VARIABLES = 100;
const MAX_VARIABLES_LINE = 2_000;

function formatVariables(names: string[]): string {
  const listed: string[] = [];
  let length = 0;
  for (const name of names) {
    if (listed.length === MAX_LISTED_VARIABLES || length + name.length > MAX_VARIABLES_LINE) break;
    listed.push(name);
    length += name.length + 2;
  }
  const more = names.length - listed.length;
  return `REPL variables: [${listed.join(', ')}]${more > 0 ? ` (and ${more} more; SHOW_VARS() lists them all)` : ''}`;
}

/**
 * One cell's result as the model reads it: stdout, stderr, then the REPL's variables. The two
 * streams share `limit` characters (stdout keeps its start, stderr its end), each cut noted.
 */
export function formatCellResult(result: Pick<CellResult, 'stdout' | 'stderr' | 'locals'>, limit: number): string {
  const stdout = result.stdout.replace(/\n$/, '');
  const stderr = result.stderr.replace(/\n$/, '');
  const [outLimit, errLimit] = shareOutputLimit(stdout.length, stderr.length, limit);
  const parts: string[] = [];
  if (stdout) parts.push(truncate(stdout, outLimit));
  if (stderr) parts.push(truncateStart(stderr, errLimit));
  if (result.locals.length > 0) parts.push(formatVariables(result.locals));
  return parts.length > 0 ? parts.join('\n\n') : 'No output';
}

/** Every cell of an iteration, in order, as one feedback message. */
export function formatFeedback(
  blocks: { code: string; result: Pick<CellResult, 'stdout' | 'stderr' | 'locals'> }[],
  limit: number,
): string {
  if (blocks.length === 1) return `REPL output:\n${formatCellResult(blocks[0]!.result, limit)}`;
  return blocks
    .map((b, i) => `REPL output (block ${i + 1}):\n${formatCellResult(b.result, limit)}`)
    .join('\n\n');
}
