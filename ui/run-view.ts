/**
 * One run on screen: header, running totals, the timeline of iterations (model text as
 * Markdown, code cells with their output and sub-calls, child RLMs as nested timelines) and
 * the answer. Built live from `onEvent`, or at once from a stored Trajectory.
 */
// The parser itself, not the package entry: unit tests load this module without the build's isolation sources.
import { segmentReply } from '../src/core/parsing';
import type { CodeBlockRecord, CompletionResult, IterationRecord, ReplInfo, RLMEvent, RunStatus, SubcallRecord, Trajectory, UsageSummary } from '../src/index';
import type { Explained } from './errors';
import { el, formatBytes, formatCost, formatCount, formatDate, formatDuration, formatRunCost, unpricedOf } from './format';
import { renderStructured } from './structured';
import { codeElement, renderMarkdown } from './markdown';

const PREVIEW_CHARS = 4000;

/** What an iteration shows of a reply, in order: prose, the cells the engine runs, and the empty blocks it skips. */
export type ReplyPiece = { kind: 'prose'; text: string } | { kind: 'cell'; code: string } | { kind: 'skipped' };

/** The engine's own reading of a reply (segmentReply), so that cell i is the i-th block it runs. */
export function layoutReply(text: string): ReplyPiece[] {
  return segmentReply(text).map((segment) => (segment.kind === 'text' ? { kind: 'prose', text: segment.text } : segment.runs ? { kind: 'cell', code: segment.code } : { kind: 'skipped' }));
}

/** A reply that is words, not code to run: worth showing as a partial answer. */
function isProse(text: string): boolean {
  return text.trim().length > 0 && segmentReply(text).every((segment) => segment.kind === 'text');
}

function preview(text: string): string {
  return text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS)}\n… ${formatCount(text.length - PREVIEW_CHARS)} more characters` : text;
}

function labelled(label: string, body: HTMLElement): HTMLElement {
  const wrap = el('div', 'labelled');
  wrap.append(el('div', 'label', label), body);
  return wrap;
}

function textBlock(text: string, className = 'output'): HTMLElement {
  return el('pre', className, text);
}

function tokensOf(usage: { inputTokens: number; outputTokens: number }): string {
  return `${formatCount(usage.inputTokens)} in · ${formatCount(usage.outputTokens)} out`;
}

// ------------------------------------------------------------------ sub-calls

function renderSubcall(record: SubcallRecord): HTMLElement {
  const details = el('details', `subcall${record.error ? ' failed' : ''}`);
  const summary = el('summary');
  summary.append(
    el('span', 'kind', record.kind === 'rlm' ? 'rlm_query' : 'llm_query'),
    el('span', 'model', record.model),
    el('span', 'meta', `${formatDuration(record.executionTimeMs)} · ${tokensOf(record.usage)}${record.error ? ' · failed' : ''}`),
    el('span', 'snippet', record.prompt.slice(0, 120).replace(/\s+/g, ' ')),
  );
  details.append(summary);
  // The body is built on first open: child trajectories can be large.
  details.addEventListener(
    'toggle',
    () => {
      if (!details.open || details.dataset.built) return;
      details.dataset.built = '1';
      const body = el('div', 'subcall-body');
      body.append(labelled('Prompt', textBlock(preview(record.prompt))));
      if (record.trajectory && record.trajectory.iterations.length > 0) {
        const child = el('div', 'child-run');
        child.append(el('div', 'label', `Child RLM · ${record.trajectory.iterations.length} iteration${record.trajectory.iterations.length === 1 ? '' : 's'}`));
        child.append(renderTimeline(record.trajectory.iterations));
        body.append(child);
      }
      if (record.response) body.append(labelled('Response', textBlock(preview(record.response))));
      if (record.error) body.append(labelled('Error', textBlock(record.error, 'output stderr')));
      details.append(body);
    },
  );
  return details;
}

// ------------------------------------------------------------------ cells

/** Characters of a running cell's live output kept on screen. */
const LIVE_CHARS = 20_000;

class CellView {
  readonly root = el('div', 'cell');
  private readonly status = el('span', 'cell-status', 'waiting');
  private readonly output = el('div', 'cell-output');
  private readonly subcalls = el('div', 'subcalls');
  /** Sub-calls in flight, by callId. */
  private readonly pending = new Map<string, HTMLElement>();

  constructor(code: string, index: number) {
    const head = el('div', 'cell-head');
    head.append(el('span', 'cell-label', `Cell ${index + 1}`), this.status);
    this.root.append(head, codeElement(code, 'python'), this.subcalls, this.output);
    this.root.dataset.state = 'waiting';
  }

  start(): void {
    this.setState('running', 'running…');
  }

  addPendingSubcall(callId: string, kind: 'llm' | 'rlm', model: string, prompt: string): void {
    const item = el('div', 'subcall pending');
    item.append(el('span', 'kind', kind === 'rlm' ? 'rlm_query' : 'llm_query'), el('span', 'model', model), el('span', 'meta', 'waiting for the model…'), el('span', 'snippet', prompt.slice(0, 120).replace(/\s+/g, ' ')));
    this.pending.set(callId, item);
    this.subcalls.append(item);
  }

  /** A child RLM (started by the sub-call `callId`) moved on: shown on its placeholder while it runs. */
  childProgress(callId: string, text: string): void {
    const meta = this.pending.get(callId)?.querySelector('.meta');
    if (meta) meta.textContent = text;
  }

  /** Output the running cell wrote: it grows on screen until the cell ends (the last 20 000 characters are kept). */
  addLiveOutput(stream: 'stdout' | 'stderr', text: string): void {
    const className = stream === 'stderr' ? 'output stderr live' : 'output live';
    let block = this.output.lastElementChild as HTMLElement | null;
    if (!block || block.className !== className) {
      block = textBlock('', className);
      this.output.append(block);
    }
    const next = (block.textContent ?? '') + text;
    block.textContent = next.length > LIVE_CHARS ? next.slice(-LIVE_CHARS) : next;
  }

  addSubcall(callId: string, record: SubcallRecord): void {
    const view = renderSubcall(record);
    const slot = this.pending.get(callId);
    this.pending.delete(callId);
    if (slot) slot.replaceWith(view);
    else this.subcalls.append(view);
  }

  finish(record: CodeBlockRecord): void {
    for (const slot of this.pending.values()) slot.remove();
    this.pending.clear();
    if (this.subcalls.childElementCount !== record.subcalls.length) {
      this.subcalls.replaceChildren(...record.subcalls.map(renderSubcall));
    }
    if (record.subcalls.length > 0) this.subcalls.prepend(el('div', 'label', `${record.subcalls.length} sub-call${record.subcalls.length === 1 ? '' : 's'}`));
    this.output.replaceChildren();
    if (record.stdout) this.output.append(textBlock(preview(record.stdout)));
    if (record.stderr) this.output.append(textBlock(preview(record.stderr), 'output stderr'));
    if (!record.stdout && !record.stderr) this.output.append(el('div', 'output empty', 'no output'));
    const time = formatDuration(record.executionTimeMs);
    if (record.interrupted) this.setState('interrupted', `interrupted · ${time}`);
    else if (record.errorType) this.setState('error', `${record.errorType} · ${time}`);
    else this.setState('ok', `ran in ${time}`);
    if (record.finalAnswer !== null) this.root.append(el('div', 'cell-final', 'This cell marked the answer.'));
  }

  notRun(): void {
    if (this.root.dataset.state === 'waiting') this.setState('skipped', 'not run');
  }

  private setState(state: string, label: string): void {
    this.root.dataset.state = state;
    this.status.textContent = label;
  }
}

// ------------------------------------------------------------------ iterations

class IterationView {
  readonly root = el('li', 'iteration');
  private readonly meta = el('span', 'iteration-meta', 'waiting for the model…');
  private readonly body = el('div', 'iteration-body');
  private cells: CellView[] = [];

  constructor(readonly number: number) {
    const head = el('div', 'iteration-head');
    head.append(el('h3', 'iteration-title', `Iteration ${number}`), this.meta);
    this.root.append(head, this.body);
    this.root.dataset.state = 'thinking';
  }

  setText(text: string): void {
    this.body.replaceChildren();
    this.cells = [];
    for (const piece of layoutReply(text)) {
      if (piece.kind === 'prose') {
        const prose = el('div', 'prose');
        prose.dataset.rendered = renderMarkdown(prose, piece.text, 'reply');
        this.body.append(prose);
      } else if (piece.kind === 'cell') {
        const cell = new CellView(piece.code, this.cells.length);
        this.cells.push(cell);
        this.body.append(cell.root);
      } else {
        this.body.append(el('p', 'muted', 'An empty repl block (not run).'));
      }
    }
    if (!text.trim()) this.body.append(el('p', 'muted', '(the model sent an empty reply)'));
    this.meta.textContent = this.cells.length ? 'running code…' : '';
    this.root.dataset.state = 'running';
  }

  cell(index: number, code?: string): CellView {
    let cell = this.cells[index];
    if (!cell) {
      cell = new CellView(code ?? '', index);
      this.cells[index] = cell;
      this.body.append(cell.root);
    }
    return cell;
  }

  get lastStartedCell(): CellView | undefined {
    return [...this.cells].reverse().find((c) => c.root.dataset.state === 'running');
  }

  finish(record: IterationRecord): void {
    record.codeBlocks.forEach((block, i) => {
      const cell = this.cell(i, block.code);
      if (cell.root.dataset.state === 'waiting' || cell.root.dataset.state === 'running') cell.finish(block);
    });
    for (const cell of this.cells) cell.notRun();
    this.meta.textContent = `${formatDuration(record.iterationTimeMs)} · ${tokensOf(record.usage)}`;
    this.root.dataset.state = record.finalAnswer !== null ? 'final' : 'done';
  }

  stop(label = 'stopped'): void {
    if (this.root.dataset.state === 'thinking' || this.root.dataset.state === 'running') {
      this.meta.textContent = label;
      this.root.dataset.state = 'stopped';
    }
  }

  static fromRecord(record: IterationRecord): IterationView {
    const view = new IterationView(record.iteration);
    view.setText(record.response);
    record.codeBlocks.forEach((block, i) => view.cell(i, block.code).finish(block));
    view.finish(record);
    if (record.partial) {
      // Saved step by step while it ran: the reply and what had finished when the run stopped.
      view.meta.textContent = 'cut off · what had finished was saved';
      view.root.dataset.state = 'stopped';
    }
    return view;
  }
}

function renderTimeline(iterations: IterationRecord[]): HTMLElement {
  const list = el('ol', 'timeline');
  for (const record of iterations) list.append(IterationView.fromRecord(record).root);
  return list;
}

function countSubcalls(iterations: IterationRecord[]): number {
  let n = 0;
  for (const it of iterations) for (const b of it.codeBlocks) for (const s of b.subcalls) n += 1 + (s.trajectory ? countSubcalls(s.trajectory.iterations) : 0);
  return n;
}

// ------------------------------------------------------------------ the run

const STATUS_TEXT: Record<RunStatus, string> = {
  running: 'Running',
  completed: 'Done',
  failed: 'Failed',
  cancelled: 'Stopped',
  interrupted: 'Interrupted (tab closed)',
  imported: 'Imported',
};

export interface RunHeader {
  question: string;
  model: string;
  contextLabel: string;
  startedAt: string;
}

export class RunView {
  readonly root = el('article', 'run');
  private readonly statusPill = el('span', 'status');
  private readonly statusLine = el('p', 'status-line');
  private readonly errorBox = el('div', 'error-box');
  private readonly totals = el('dl', 'totals');
  private readonly timeline = el('ol', 'timeline');
  private readonly answerBox = el('section', 'answer');
  private readonly iterations = new Map<number, IterationView>();
  private current: IterationView | undefined;
  private started = performance.now();
  private timer: ReturnType<typeof setInterval> | undefined;
  private base: UsageSummary | undefined;
  private extra = { inputTokens: 0, outputTokens: 0, costUSD: 0 };
  /** Models of unknown cost seen in calls since the last usage figure. */
  private unpriced = new Set<string>();
  private subcalls = 0;
  /** Undefined for a stored run that never recorded it (a closed tab). */
  private elapsedMs: number | undefined = 0;
  /** When the first iteration appeared on screen (ms since the view was created). */
  firstIterationMs: number | undefined;

  /** The root model, named when its cost is unknown. */
  private readonly model: string;

  constructor(header: RunHeader, status: RunStatus) {
    this.model = header.model;
    const head = el('header', 'run-head');
    const title = el('h2', 'run-question', preview(header.question) || '(no question: the context states the task)');
    title.tabIndex = -1;
    title.title = preview(header.question);
    const facts = el('p', 'run-facts', `${header.model} · ${header.contextLabel} · ${formatDate(header.startedAt)}`);
    head.append(this.statusPill, title, facts);
    this.errorBox.setAttribute('role', 'alert');
    this.errorBox.hidden = true;
    this.statusLine.setAttribute('aria-live', 'polite');
    this.answerBox.hidden = true;
    this.answerBox.setAttribute('aria-labelledby', 'answer-heading');
    this.timeline.setAttribute('aria-label', 'Iterations');
    this.root.append(head, this.totals, this.statusLine, this.errorBox, this.timeline, this.answerBox);
    this.setStatus(status);
    this.renderTotals();
  }

  get title(): HTMLElement {
    return this.root.querySelector('.run-question') as HTMLElement;
  }

  setStatus(status: RunStatus, line?: string): void {
    this.root.dataset.status = status;
    this.statusPill.textContent = STATUS_TEXT[status];
    this.statusPill.dataset.status = status;
    if (line !== undefined) this.statusLine.textContent = line;
  }

  /** Starts the elapsed-time clock of a live run. */
  startClock(since = performance.now()): void {
    this.started = since;
    this.timer = setInterval(() => {
      this.elapsedMs = performance.now() - this.started;
      this.renderTotals();
    }, 250);
  }

  private stopClock(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.elapsedMs = performance.now() - this.started;
  }

  private renderTotals(): void {
    const u = this.base ?? { inputTokens: 0, outputTokens: 0, costUSD: 0, calls: 0 };
    const items: [string, string][] = [
      ['Tokens', `${formatCount(u.inputTokens + this.extra.inputTokens)} in · ${formatCount(u.outputTokens + this.extra.outputTokens)} out`],
      // A model the price database does not list is named, never counted as $0.
      ['Cost', formatRunCost(u.costUSD + this.extra.costUSD, [...new Set([...(this.base ? unpricedOf(this.base) : []), ...this.unpriced])])],
      ['Sub-calls', String(this.subcalls)],
      ['Iterations', String(this.iterations.size)],
      ['Time', this.elapsedMs === undefined ? '—' : formatDuration(this.elapsedMs)],
    ];
    this.totals.replaceChildren(
      ...items.map(([k, v]) => {
        const item = el('div', 'total');
        item.append(el('dt', undefined, k), el('dd', undefined, v));
        item.dataset.total = k.toLowerCase();
        return item;
      }),
    );
  }

  handleEvent(event: RLMEvent): void {
    // Child RLMs report through the same handler: count their cost, draw only the root.
    if (event.depth > 0) {
      if (event.depth === 1 && event.parentCallId !== undefined) {
        if (event.type === 'run_start') this.current?.lastStartedCell?.childProgress(event.parentCallId, 'child RLM starting…');
        if (event.type === 'iteration_start') this.current?.lastStartedCell?.childProgress(event.parentCallId, `child RLM · iteration ${event.iteration}…`);
      }
      if (event.type === 'lm_response') this.addExtra(event.usage.inputTokens, event.usage.outputTokens, event.usage.costUSD ?? 0);
      if (event.type === 'subcall_end') this.countSubcall(event.record);
      return;
    }
    switch (event.type) {
      case 'iteration_start': {
        const view = new IterationView(event.iteration);
        this.iterations.set(event.iteration, view);
        this.current = view;
        this.timeline.append(view.root);
        if (this.firstIterationMs === undefined) {
          this.firstIterationMs = performance.now() - this.started;
          this.root.dataset.firstIterationMs = String(Math.round(this.firstIterationMs));
        }
        this.setStatus('running', `Iteration ${event.iteration}: waiting for the model…`);
        this.renderTotals();
        break;
      }
      case 'lm_response':
        this.iterations.get(event.iteration)?.setText(event.text);
        this.root.dataset.firstTextMs ??= String(Math.round(performance.now() - this.started));
        if (event.usage.costUSD === undefined) this.unpriced.add(this.model);
        this.addExtra(event.usage.inputTokens, event.usage.outputTokens, event.usage.costUSD ?? 0);
        this.setStatus('running', `Iteration ${event.iteration}: the model replied.`);
        break;
      case 'code_start':
        this.iterations.get(event.iteration)?.cell(event.block, event.code).start();
        this.setStatus('running', `Iteration ${event.iteration}: running cell ${event.block + 1}…`);
        break;
      case 'subcall_start':
        this.current?.lastStartedCell?.addPendingSubcall(event.callId, event.kind, event.model, event.prompt);
        break;
      case 'subcall_end':
        this.current?.lastStartedCell?.addSubcall(event.callId, event.record);
        this.countSubcall(event.record);
        break;
      case 'code_output':
        this.iterations.get(event.iteration)?.cell(event.block).addLiveOutput(event.stream, event.text);
        break;
      case 'code_end':
        this.iterations.get(event.iteration)?.cell(event.block, event.record.code).finish(event.record);
        break;
      case 'iteration_end':
        this.iterations.get(event.record.iteration)?.finish(event.record);
        break;
      case 'usage':
        this.base = event.usage;
        this.extra = { inputTokens: 0, outputTokens: 0, costUSD: 0 };
        this.unpriced.clear();
        this.renderTotals();
        break;
      case 'resumed':
        this.setStatus('running', `Rebuilt Python’s state: ${event.cells} saved cell${event.cells === 1 ? '' : 's'} replayed in ${formatDuration(event.replayMs)}, no model calls.`);
        break;
      case 'compaction':
        this.timeline.append(el('li', 'compaction', `The conversation was summarized to fit the model’s context window (${event.count}).`));
        break;
      default:
        break;
    }
  }

  private addExtra(input: number, output: number, cost: number): void {
    this.extra.inputTokens += input;
    this.extra.outputTokens += output;
    this.extra.costUSD += cost;
    this.renderTotals();
  }

  private countSubcall(record: SubcallRecord): void {
    if (record.kind === 'llm') {
      for (const model of unpricedOf(record.usage)) this.unpriced.add(model);
      this.addExtra(record.usage.inputTokens, record.usage.outputTokens, record.usage.costUSD);
    }
    this.subcalls++;
    this.renderTotals();
  }

  /** The run answered: with text, or with a value when the run had an answer format. */
  finish(result: CompletionResult<unknown>): void {
    this.stopClock();
    this.base = result.usage;
    this.extra = { inputTokens: 0, outputTokens: 0, costUSD: 0 };
    this.unpriced.clear();
    this.elapsedMs = result.executionTimeMs;
    this.renderTotals();
    this.setStatus('completed', `Answered after ${this.iterations.size} iteration${this.iterations.size === 1 ? '' : 's'}.`);
    this.showAnswer(result.response, 'Answer');
  }

  /** The run ended without an answer (stopped, failed, a limit). */
  fail(explained: Explained, status: RunStatus, partial?: { answer?: string | undefined; usage?: UsageSummary | undefined }): void {
    this.stopClock();
    for (const view of this.iterations.values()) view.stop(status === 'cancelled' ? 'stopped' : 'did not finish');
    if (partial?.usage) {
      this.base = partial.usage;
      this.extra = { inputTokens: 0, outputTokens: 0, costUSD: 0 };
      this.unpriced.clear();
    }
    this.renderTotals();
    this.setStatus(status, '');
    this.showError(explained, status === 'cancelled' ? 'notice' : 'error');
    if (partial?.answer && isProse(partial.answer)) this.showAnswer(partial.answer, 'Best answer so far (the run did not finish)');
  }

  showError(explained: Explained, tone: 'error' | 'notice' = 'error'): void {
    // A stored or imported run's error is text from anywhere: shown, like outputs, by its start.
    this.errorBox.replaceChildren(el('strong', undefined, explained.title), el('p', undefined, preview(explained.detail)));
    this.errorBox.dataset.tone = tone;
    this.errorBox.hidden = false;
  }

  private showAnswer(answer: unknown, heading: string): void {
    const h = el('h3', undefined, heading);
    h.id = 'answer-heading';
    const body = el('div', 'prose answer-body');
    const text = typeof answer === 'string' ? answer : JSON.stringify(answer, null, 2);
    if (typeof answer === 'string') body.dataset.rendered = renderMarkdown(body, answer, 'answer');
    else body.append(renderStructured(answer));
    const copy = el('button', 'secondary small', 'Copy answer');
    copy.type = 'button';
    copy.addEventListener('click', () => {
      navigator.clipboard?.writeText(text).then(
        () => (copy.textContent = 'Copied'),
        () => (copy.textContent = 'Copy failed: select the text instead'),
      );
    });
    this.answerBox.replaceChildren(h, body, copy);
    this.answerBox.dataset.partial = heading === 'Answer' ? 'false' : 'true';
    this.answerBox.hidden = false;
    this.answerBox.tabIndex = -1;
  }

  get answer(): HTMLElement {
    return this.answerBox;
  }

  setBridge(info: ReplInfo): void {
    this.root.dataset.bridge = info.bridge;
  }

  /** A stored run, drawn at once. */
  static fromTrajectory(t: Trajectory, status: RunStatus = t.status): RunView {
    const view = new RunView(
      { question: t.rootPrompt ?? '', model: t.config.rootModel, contextLabel: describeContext(t.context), startedAt: t.startedAt },
      status,
    );
    for (const record of t.iterations) {
      const it = IterationView.fromRecord(record);
      view.iterations.set(record.iteration, it);
      view.timeline.append(it.root);
    }
    view.base = t.usage;
    view.subcalls = countSubcalls(t.iterations);
    view.elapsedMs = t.executionTimeMs;
    view.renderTotals();
    const n = t.iterations.length;
    if (t.response !== undefined && (status === 'completed' || status === 'imported')) {
      view.setStatus(status, `Answered after ${n} iteration${n === 1 ? '' : 's'}.`);
      // With an answer format the stored response is the value as JSON text.
      view.showAnswer(t.schema ? parseStored(t.response) : t.response, 'Answer');
    } else {
      const finished = t.iterations.filter((it) => !it.partial).length;
      const saved = `${finished} iteration${finished === 1 ? ' was' : 's were'} saved${finished < n ? ', and the reply of the one in progress' : ''}.`;
      view.setStatus(status, status === 'interrupted' ? `The tab closed during the run; ${saved}` : t.error ? saved : '');
      if (t.error && status !== 'interrupted') view.showError({ title: STATUS_TEXT[status], detail: t.error }, status === 'cancelled' ? 'notice' : 'error');
      const last = [...t.iterations].reverse().find((it) => it.response.trim());
      const partial = t.response ?? last?.response;
      if (partial && isProse(partial)) view.showAnswer(partial, 'Best answer so far (the run did not finish)');
    }
    return view;
  }
}

/** A stored structured answer; its text as is if it does not parse (an edited or damaged log). */
function parseStored(response: string): unknown {
  try {
    return JSON.parse(response);
  } catch {
    return response;
  }
}

export function describeContext(c: Trajectory['context']): string {
  if (!c || c.type === 'unknown') return 'context not recorded';
  const size = c.bytes !== undefined ? formatBytes(c.bytes) : c.type === 'str' ? `${formatCount(c.length)} characters` : `${c.length} items`;
  return `context: ${c.type}, ${size}`;
}
