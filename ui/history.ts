/**
 * The History panel: stored runs newest first (status, model, question, cost), opening one
 * into the run view, resuming one that did not finish, delete, JSONL export and import.
 */
import type { RunStatus, Trajectory, UsageSummary } from '../src/index';
import { explainError } from './errors';
import { el, formatDate, formatRunCost, unpricedOf } from './format';

/** What the panel needs of a run summary (a subset of the store's RunSummary). */
export interface HistoryEntry {
  id: string;
  status: RunStatus;
  model: string;
  question?: string | undefined;
  usage: UsageSummary;
  startedAt: string;
  iterationCount: number;
  /** The run's answer schema, if it had one (such runs are not resumed). */
  schema?: unknown;
  /** `depth` 0: a root run (a child's run is resumed through its root). */
  config?: { depth: number } | undefined;
}

/** What the panel needs of the trajectory store. */
export interface HistorySource {
  listRuns(): Promise<HistoryEntry[]>;
  getRun(id: string): Promise<Trajectory | undefined>;
  deleteRun(id: string): Promise<void>;
  /** Imports a JSONL file; resolves with the ids of the imported runs. */
  importFile(file: File): Promise<string[]>;
  toJSONL(trajectory: Trajectory): string;
}

const STATUS_LABEL: Record<RunStatus, string> = {
  running: 'running',
  completed: 'done',
  failed: 'failed',
  cancelled: 'stopped',
  interrupted: 'interrupted',
  imported: 'imported',
};

/** Runs that stopped before their answer: their saved cells can be replayed and the run continued. */
const RESUMABLE = new Set<RunStatus>(['interrupted', 'failed', 'cancelled']);

/** Whether History offers Resume for a run: a root run without a schema that stopped before its answer (as rlm.resume() accepts). */
export function canResume(entry: HistoryEntry): boolean {
  return RESUMABLE.has(entry.status) && entry.schema === undefined && (entry.config?.depth ?? 0) === 0;
}

export class HistoryView {
  private entries: HistoryEntry[] = [];
  /** The run this page is running now. */
  liveRunId: string | undefined;
  selectedId: string | undefined;
  /** Shows a stored run in the run view. */
  onOpenRun: (trajectory: Trajectory, status: RunStatus) => void = () => undefined;
  /** Continues a run that did not finish (the Resume button). */
  onResume: ((id: string) => void) | undefined;
  /** A run is going on in this page: no Resume meanwhile. */
  busy = false;

  constructor(
    private readonly source: HistorySource,
    private readonly list: HTMLElement,
    private readonly status: HTMLElement,
    importInput: HTMLInputElement,
  ) {
    importInput.addEventListener('change', () => {
      const file = importInput.files?.[0];
      importInput.value = '';
      if (file) void this.importFile(file);
    });
  }

  /** The store marks runs cut off by a closed tab 'interrupted'; this page's own run is live. */
  statusOf(entry: { id: string; status: RunStatus }): RunStatus {
    return entry.status;
  }

  async refresh(): Promise<void> {
    try {
      this.entries = await this.source.listRuns();
    } catch (error) {
      this.say(explainError(error).title + ' ' + explainError(error).detail);
      return;
    }
    this.render();
  }

  private render(): void {
    if (this.entries.length === 0) {
      this.list.replaceChildren(el('li', 'muted', 'No runs yet. Each run is saved here as it goes.'));
      return;
    }
    this.list.replaceChildren(
      ...this.entries.map((entry) => {
        const item = el('li', 'history-item');
        const open = el('button', 'history-open');
        open.type = 'button';
        open.dataset.runId = entry.id;
        if (entry.id === this.selectedId) open.setAttribute('aria-current', 'true');
        const status = this.statusOf(entry);
        const pill = el('span', 'status small', STATUS_LABEL[status]);
        pill.dataset.status = status;
        open.append(
          el('span', 'history-question', entry.question || '(no question)'),
          pill,
          el('span', 'history-meta', `${entry.model} · ${entry.iterationCount} iteration${entry.iterationCount === 1 ? '' : 's'}${entry.usage.calls > 0 ? ` · ${formatRunCost(entry.usage.costUSD, unpricedOf(entry.usage))}` : ''} · ${formatDate(entry.startedAt)}`),
        );
        open.addEventListener('click', () => void this.open(entry.id));
        item.append(open);
        if (this.onResume && canResume(entry) && !this.busy) {
          const resume = el('button', 'history-resume secondary small', 'Resume');
          resume.type = 'button';
          resume.dataset.runId = entry.id;
          resume.setAttribute('aria-label', `Resume: ${entry.question || 'run without a question'}`);
          resume.addEventListener('click', () => this.onResume?.(entry.id));
          item.append(resume);
        }
        return item;
      }),
    );
  }

  async open(id: string): Promise<void> {
    try {
      const trajectory = await this.source.getRun(id);
      if (!trajectory) {
        this.say('That run is no longer stored (deleted in another tab?).');
        await this.refresh();
        return;
      }
      this.selectedId = id;
      this.render();
      this.onOpenRun(trajectory, this.statusOf(trajectory));
    } catch (error) {
      const e = explainError(error);
      this.say(`${e.title} ${e.detail}`);
    }
  }

  async remove(id: string): Promise<void> {
    try {
      await this.source.deleteRun(id);
      if (this.selectedId === id) this.selectedId = undefined;
      this.say('Run deleted.');
    } catch (error) {
      const e = explainError(error);
      this.say(`${e.title} ${e.detail}`);
    }
    await this.refresh();
  }

  async export(id: string): Promise<void> {
    const trajectory = await this.source.getRun(id);
    if (!trajectory) return;
    const blob = new Blob([this.source.toJSONL(trajectory)], { type: 'application/x-ndjson' });
    const url = URL.createObjectURL(blob);
    const link = el('a');
    link.href = url;
    link.download = `rlm-run-${trajectory.startedAt.slice(0, 19).replace(/[:T]/g, '-')}.jsonl`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  async importFile(file: File): Promise<void> {
    this.say(`Importing ${file.name}…`);
    try {
      const ids = await this.source.importFile(file);
      await this.refresh();
      this.say(`Imported ${file.name}${ids.length > 1 ? ` (${ids.length} runs)` : ''}.`);
      if (ids[0]) await this.open(ids[0]);
    } catch (error) {
      const e = explainError(error);
      this.say(`Could not import ${file.name}: ${e.detail === e.title ? e.title : `${e.title} ${e.detail}`}`);
    }
  }

  say(text: string): void {
    this.status.textContent = text;
  }
}
