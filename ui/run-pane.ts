/**
 * The run pane of the demo and the extension: the live run (a RunView fed by the RLM's
 * events), Stop, the bar over a shown run (export JSONL, delete, back to the live run) and
 * History opening stored runs into it. Both pages use the same element ids.
 */
import { CancellationError, RLM, type CompletionResult, type ContextInput, type PyodideEnvironmentOptions, type ReplInfo, type RLMEvent, type RLMOptions, type RunStatus, type Trajectory } from '../src/index';
import { explainError, type ErrorSetting, type Explained } from './errors';
import { el } from './format';
import { RunView } from './run-view';
import { answerSchemaOf, presetOf, toRLMOptions, validateSettings, type Settings } from './settings';
import type { SettingsForm } from './settings-form';
import type { ConnectedHistory } from './store';

/** How a page shows its REPL: not started, booting, or ready (with what it reported). */
export type ShowRepl = (info: ReplInfo | undefined, state: 'idle' | 'starting' | 'ready') => void;

/**
 * Boots the RLM's Python now (idempotent: a run started meanwhile shares the boot) and
 * shows how it goes, as long as `isCurrent()` says this RLM is still the page's.
 */
export function followBoot(instance: RLM, show: ShowRepl, isCurrent: () => boolean): void {
  if (instance.replInfo) return;
  show(undefined, 'starting');
  instance.warmUp().then(
    (info) => isCurrent() && show(info, 'ready'),
    () => isCurrent() && show(undefined, 'idle'),
  );
}

/**
 * The page's Run and Stop buttons as a run starts (true) or ends (false): for `onRunning`.
 * Stop takes the focus while a run goes on.
 */
export function showRunning(form: HTMLFormElement, run: HTMLButtonElement, stop: HTMLButtonElement, running: boolean): void {
  run.disabled = running;
  stop.disabled = !running;
  run.textContent = running ? 'Running…' : 'Run';
  form.setAttribute('aria-busy', String(running));
  if (running) stop.focus();
}

export interface RunPaneOptions {
  /** History, when the page has IndexedDB (see connectHistory). */
  history: ConnectedHistory | undefined;
  /** Where the run pane scrolls by itself (laptops) or the page scrolls (phones, narrow panels). */
  narrow: MediaQueryList;
  /** How the root REPL is doing (booting with the run, ready): for the page's bridge badge. */
  showRepl?: ShowRepl;
  /** A run started (true) or ended (false): for the page's Run and Stop buttons. */
  onRunning?: (running: boolean) => void;
  /**
   * rlm-web's sandbox.html, passed as `environmentOptions.sandboxURL` to every RLM the pane
   * makes: for pages whose CSP forbids the default srcdoc frame (the demo, extension pages).
   * Default: undefined (the srcdoc frame).
   */
  sandboxURL?: string;
}

export interface RunRequest {
  rlm: RLM;
  context: ContextInput;
  question: string;
  /**
   * The settings the RLM was made from: the run view names the model, errors the endpoint;
   * their answer format (see answerSchemaOf), when set, is the run's schema, and the answer
   * a value shown as a table or tree.
   */
  settings: Settings;
  /** What the run view shows about the context, e.g. "report.txt, 48 MB". */
  contextLabel: string;
  /** performance.now() at the user's click: the run's clock starts there. */
  clickedAt: number;
}

export interface ResumeRequest {
  rlm: RLM;
  /** The stored run to continue (History's id). */
  id: string;
  /** The settings the RLM was made from (errors name the endpoint). */
  settings: Settings;
  /** performance.now() at the user's click. */
  clickedAt: number;
  /**
   * The context, for a run whose context was too large to keep (called only then, with the
   * run's signal); undefined when the page has none to give. Default: none (such a run ends
   * with its ResumeError).
   */
  context?: ((signal: AbortSignal) => Promise<ContextInput | undefined>) | undefined;
  /** How the user gives the context again on this page, said when it is missing or not the run's. Default: the demo's words (see explainError). */
  contextAgain?: string | undefined;
}

export class RunPane {
  private readonly runArea: HTMLElement;
  private readonly runSlot: HTMLElement;
  private readonly viewingBar: HTMLElement;
  private readonly viewingLabel: HTMLElement;
  private readonly exportButton: HTMLButtonElement;
  private readonly deleteButton: HTMLButtonElement;
  private readonly backButton: HTMLButtonElement;
  private live: RunView | undefined;
  private liveRunId: string | undefined;
  private shownRunId: string | undefined;
  private controller: AbortController | undefined;
  private forward: (event: RLMEvent) => void = () => undefined;
  private rlm: RLM | undefined;
  private rlmKey = '';

  constructor(
    doc: Document,
    private readonly options: RunPaneOptions,
  ) {
    const $ = <T extends HTMLElement>(id: string) => {
      const found = doc.getElementById(id);
      if (!found) throw new Error(`The run pane needs an element #${id}.`);
      return found as T;
    };
    this.runArea = $('run-area');
    this.runSlot = $('run-slot');
    this.viewingBar = $('viewing-bar');
    this.viewingLabel = $('viewing-label');
    this.exportButton = $('export-run');
    this.deleteButton = $('delete-run');
    this.backButton = $('back-to-live');
    this.backButton.addEventListener('click', () => {
      if (this.live) this.show(this.live, this.liveRunId, false);
      if (options.history) options.history.view.selectedId = undefined;
    });
    const history = options.history;
    if (!history) {
      $('history').hidden = true;
      return;
    }
    history.view.onOpenRun = (trajectory: Trajectory, status: RunStatus) => {
      // The run in progress is shown live; anything else (this page's finished run too) as stored.
      if (trajectory.id === this.liveRunId && this.live && this.controller) {
        this.show(this.live, this.liveRunId, false);
        return;
      }
      this.show(RunView.fromTrajectory(trajectory, status), trajectory.id, true);
      this.runArea.focus({ preventScroll: true });
      if (options.narrow.matches) this.runArea.scrollIntoView({ behavior: 'smooth', block: 'start' });
    };
    this.exportButton.addEventListener('click', () => {
      if (this.shownRunId) void history.view.export(this.shownRunId);
    });
    this.deleteButton.addEventListener('click', async () => {
      const id = this.shownRunId;
      if (!id || !confirm('Delete this run from History? This cannot be undone.')) return;
      await history.view.remove(id);
      if (id === this.liveRunId) this.live = undefined;
      this.backButton.hidden = !this.live;
      if (this.live) this.show(this.live, this.liveRunId, false);
      else {
        this.runSlot.replaceChildren(el('p', 'muted', 'The run was deleted.'));
        this.viewingBar.hidden = true;
      }
    });
    void history.view.refresh();
  }

  /** Whether a run is in progress. */
  get running(): boolean {
    return this.controller !== undefined;
  }

  /**
   * The page's RLM for these options (without logger and onEvent, which the pane adds): the
   * same instance while the options stay the same (its REPL stays booted), else a new one.
   */
  rlmFor(options: RLMOptions): RLM {
    const key = JSON.stringify(options);
    if (this.rlm && key === this.rlmKey) return this.rlm;
    void this.rlm?.close();
    const sandboxURL = this.options.sandboxURL;
    // The pages' settings always run Pyodide here (toRLMOptions sets no other environment).
    const environment: RLMOptions = sandboxURL
      ? { ...options, environment: 'pyodide', environmentOptions: { ...(options.environmentOptions as PyodideEnvironmentOptions | undefined), sandboxURL } }
      : options;
    this.rlm = new RLM({ ...environment, logger: this.options.history?.logger, onEvent: (event) => this.forward(event) });
    this.rlmKey = key;
    this.options.showRepl?.(undefined, 'idle');
    return this.rlm;
  }

  /**
   * The page's RLM for the settings in `form` (see rlmFor), or undefined after `report` said
   * what is wrong: a missing or invalid setting (with its field focused, the answer format's
   * included) or settings the RLM refuses. For Run and Resume, before anything is sent.
   */
  prepare(form: SettingsForm, report: (explained: Explained) => void, title = 'Settings needed.'): { rlm: RLM; settings: Settings } | undefined {
    const settings = form.read();
    const problem = validateSettings(settings);
    if (problem) {
      report({ title, detail: problem });
      form.focusProblem(settings);
      return undefined;
    }
    try {
      return { rlm: this.rlmFor(toRLMOptions(settings)), settings };
    } catch (error) {
      report(explainError(error));
      return undefined;
    }
  }

  /** Boots Python as soon as the user shows intent, so the first cell does not wait for it. */
  warmUp(options: RLMOptions): void {
    const rlm = this.rlmFor(options);
    // The run reports boot failures where the user looks; the badge stays honest here.
    if (this.options.showRepl) followBoot(rlm, this.options.showRepl, () => rlm === this.rlm);
  }

  /** Stops the run in progress (the RLM aborts its LM call and interrupts the cell). */
  stop(): void {
    this.controller?.abort();
    this.live?.setStatus('running', 'Stopping…');
  }

  /** Runs one completion in a fresh live view; resolves when it has answered or ended. */
  async run(request: RunRequest): Promise<void> {
    const { rlm, settings } = request;
    const view = new RunView({ question: request.question, model: settings.rootModel.trim(), contextLabel: request.contextLabel, startedAt: new Date().toISOString() }, 'running');
    view.setStatus('running', rlm.replInfo ? 'Asking the model…' : 'Asking the model while Python starts…');
    const schema = answerSchemaOf(settings);
    await this.watch(view, rlm, settings, request.clickedAt, (signal) => {
      const options = { rootPrompt: request.question || undefined, signal };
      return schema ? rlm.completion(request.context, { ...options, schema }) : rlm.completion(request.context, options);
    });
  }

  /**
   * Continues a stored run that did not finish: its cells are replayed from History (no model
   * calls), then the model takes the next turn. A context too large to have been kept is
   * asked of `request.context` (the demo: its Context pane).
   */
  async resume(request: ResumeRequest): Promise<void> {
    const { rlm, id } = request;
    const stored = await this.options.history?.store.getRun(id);
    if (!stored) return;
    // The iteration the tab closed in is asked again: show the finished ones, without how the
    // run ended before (it goes on).
    const view = RunView.fromTrajectory({ ...stored, error: undefined, iterations: stored.iterations.filter((it) => !it.partial) }, 'running');
    view.setStatus('running', 'Replaying the saved cells (no model calls)…');
    let givenAgain = false;
    const start = async (signal: AbortSignal) => {
      try {
        return await rlm.resume(id, { signal });
      } catch (error) {
        if ((error as { reason?: string }).reason !== 'context_missing' || !request.context) throw error;
        const context = await request.context(signal).catch(() => undefined);
        if (signal.aborted) throw new CancellationError('Stopped while the context was read again.');
        if (context === undefined) throw error;
        givenAgain = true;
        return rlm.resume(id, { signal, context });
      }
    };
    await this.watch(view, rlm, request.settings, request.clickedAt, start, () => ({ contextAgain: request.contextAgain, contextGivenAgain: givenAgain }));
  }

  /** Shows a live run in `view` until it ends: events, Stop, History, focus. A resume says how its context was given (`resumed`), for its errors. */
  private async watch(view: RunView, rlm: RLM, settings: Settings, clickedAt: number, start: (signal: AbortSignal) => Promise<CompletionResult<unknown>>, resumed?: () => ErrorSetting): Promise<void> {
    const { history, narrow } = this.options;
    const preset = presetOf(settings.preset);
    const where = { baseURL: settings.baseURL || preset.baseURL || undefined, provider: preset.label };
    this.live = view;
    this.liveRunId = undefined;
    this.controller = new AbortController();
    if (history) history.view.busy = true;
    this.show(view, undefined, false);
    this.options.onRunning?.(true);
    // Python boots alongside the first LM call: the badge follows it even if the run ends first.
    if (this.options.showRepl) followBoot(rlm, this.options.showRepl, () => rlm === this.rlm);
    if (narrow.matches) this.runArea.scrollIntoView({ behavior: 'smooth', block: 'start' });
    view.startClock(clickedAt);
    this.forward = (event) => {
      const follow = this.runArea.scrollHeight - this.runArea.scrollTop - this.runArea.clientHeight < 80;
      if (event.type === 'run_start' && event.depth === 0) {
        this.liveRunId = event.runId;
        this.shownRunId = event.runId;
        if (history) history.view.liveRunId = event.runId;
      }
      // run_start comes before the logger's first write; by iteration_start the run is stored.
      if (event.type === 'iteration_start' && event.depth === 0 && event.iteration === 1 && history) void history.view.refresh();
      if (event.type === 'repl_ready' && event.depth === 0) this.options.showRepl?.(event.info, 'ready');
      if (event.type === 'iteration_end' && event.depth === 0 && history) void history.view.refresh();
      view.handleEvent(event);
      if (follow && !narrow.matches && this.runSlot.contains(view.root)) this.runArea.scrollTop = this.runArea.scrollHeight;
    };
    try {
      const result = await start(this.controller.signal);
      view.finish(result);
    } catch (error) {
      const explained = explainError(error, { ...where, ...resumed?.() });
      const name = (error as { name?: string }).name;
      const status: RunStatus = name === 'CancellationError' ? 'cancelled' : 'failed';
      const ended = error as { partialAnswer?: string; usage?: Trajectory['usage'] };
      // Shown at the top of the run view, which is in sight after Run (scrolled to on phones).
      view.fail(explained, status, { answer: ended.partialAnswer, usage: ended.usage });
    } finally {
      if (rlm.replInfo) this.options.showRepl?.(rlm.replInfo, 'ready');
      this.controller = undefined;
      this.forward = () => undefined;
      this.options.onRunning?.(false);
      if (this.runSlot.contains(view.root)) {
        this.show(view, this.liveRunId, false);
        this.focusOutcome(view);
      }
      if (history) {
        history.view.liveRunId = undefined;
        history.view.busy = false;
        await history.view.refresh();
      }
    }
  }

  private show(view: RunView, runId: string | undefined, saved: boolean): void {
    this.runSlot.replaceChildren(view.root);
    this.shownRunId = runId;
    const isLive = view === this.live;
    this.viewingBar.hidden = isLive && this.controller !== undefined;
    this.viewingLabel.textContent = saved ? 'Saved run' : 'This run';
    this.exportButton.hidden = this.deleteButton.hidden = !this.options.history || !runId;
    this.backButton.hidden = isLive || !this.live;
  }

  /** The answer (or what went wrong) is where the eyes go next. */
  private focusOutcome(view: RunView): void {
    const target = view.answer.hidden ? view.title : view.answer;
    target.focus({ preventScroll: true });
    if (this.options.narrow.matches) target.scrollIntoView({ block: 'start', behavior: 'smooth' });
    else {
      // Below the sticky totals bar.
      const totals = view.root.querySelector<HTMLElement>('.totals')?.offsetHeight ?? 0;
      this.runArea.scrollTop += target.getBoundingClientRect().top - this.runArea.getBoundingClientRect().top - totals - 12;
    }
  }
}
