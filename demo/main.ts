/**
 * The demo page: settings, context, question, Run/Stop, the live run view, and History.
 * It uses rlm-web's public API only.
 */
import { RLM, type CompletionResult, type PyodideEnvironmentOptions, type ReplInfo, type RLMEvent, type RLMOptions, type RunStatus, type Trajectory } from '../src/index';
import { ContextInputView } from './context-input';
import { explainError, type Explained } from './errors';
import { el, formatDuration } from './format';
import { connectHistory } from './store';
import { RunView } from './run-view';
import { loadSettings, presetOf, PRESETS, saveSettings, toRLMOptions, validateSettings, type PresetId, type Settings } from './settings';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const form = $<HTMLFormElement>('run-form');
const settingsPanel = $<HTMLDetailsElement>('settings');
const settingsSummary = $('settings-summary');
const presetSelect = $<HTMLSelectElement>('preset');
const baseURLField = $('base-url-field');
const baseURLInput = $<HTMLInputElement>('base-url');
const keyInput = $<HTMLInputElement>('api-key');
const keyOptional = $('key-optional');
const showKey = $<HTMLButtonElement>('show-key');
const rememberKey = $<HTMLInputElement>('remember-key');
const rememberWarning = $('remember-warning');
const rootModel = $<HTMLInputElement>('root-model');
const subModel = $<HTMLInputElement>('sub-model');
const maxIterations = $<HTMLInputElement>('max-iterations');
const maxDepth = $<HTMLInputElement>('max-depth');
const maxBudget = $<HTMLInputElement>('max-budget');
const maxMinutes = $<HTMLInputElement>('max-minutes');
const coi = $<HTMLInputElement>('coi');
const bridgeChoice = $<HTMLSelectElement>('bridge-choice');
const bridgeHint = $('bridge-hint');
const question = $<HTMLTextAreaElement>('question');
const runButton = $<HTMLButtonElement>('run');
const stopButton = $<HTMLButtonElement>('stop');
const formError = $('form-error');
const bridgeBadge = $('bridge');
const runArea = $('run-area');
const runSlot = $('run-slot');
const viewingBar = $('viewing-bar');
const viewingLabel = $('viewing-label');
const exportButton = $<HTMLButtonElement>('export-run');
const deleteButton = $<HTMLButtonElement>('delete-run');
const backButton = $<HTMLButtonElement>('back-to-live');

const contextView = new ContextInputView($('context-text'), $('file-picker'), $('drop-zone'), $('file-list'), $('context-summary'));

// ------------------------------------------------------------------ settings

for (const preset of PRESETS) presetSelect.append(new Option(preset.label, preset.id));

function readSettings(): Settings {
  const number = (input: HTMLInputElement, fallback: number) => (input.value.trim() === '' ? fallback : Number(input.value));
  return {
    preset: presetSelect.value as PresetId,
    rootModel: rootModel.value,
    subModel: subModel.value,
    baseURL: baseURLInput.value,
    apiKey: keyInput.value,
    rememberKey: rememberKey.checked,
    maxIterations: number(maxIterations, 20),
    maxDepth: number(maxDepth, 1),
    maxBudget: number(maxBudget, 0),
    maxMinutes: number(maxMinutes, 0),
    bridge: bridgeChoice.value === 'jspi' ? 'jspi' : 'auto',
  };
}

function writeSettings(s: Settings): void {
  presetSelect.value = s.preset;
  rootModel.value = s.rootModel;
  subModel.value = s.subModel;
  baseURLInput.value = s.baseURL;
  keyInput.value = s.apiKey;
  rememberKey.checked = s.rememberKey;
  maxIterations.value = String(s.maxIterations);
  maxDepth.value = String(s.maxDepth);
  maxBudget.value = String(s.maxBudget);
  maxMinutes.value = String(s.maxMinutes);
  bridgeChoice.value = s.bridge === 'jspi' ? 'jspi' : 'auto';
  reflectPreset();
}

function reflectPreset(): void {
  const preset = presetOf(presetSelect.value);
  baseURLField.hidden = preset.id !== 'local';
  keyOptional.textContent = preset.needsKey ? '' : '(optional for most local servers)';
  keyInput.placeholder = preset.keyHint;
  rememberWarning.hidden = !rememberKey.checked;
  // SharedArrayBuffer exists only on cross-origin isolated pages.
  bridgeHint.textContent = crossOriginIsolated
    ? 'This page is cross-origin isolated: Automatic uses SharedArrayBuffer, and a stopped or timed-out cell keeps its variables on either bridge.'
    : 'This page is not cross-origin isolated: Automatic uses JSPI, and stopping a cell restarts Python. Tick the box below, or serve with npm run demo -- --isolated.';
  settingsSummary.textContent = `${preset.id === 'local' ? 'Local' : preset.label} · ${rootModel.value || 'no model'}${keyInput.value || !preset.needsKey ? '' : ' · no key yet'}`;
}

presetSelect.addEventListener('change', () => {
  const preset = presetOf(presetSelect.value);
  rootModel.value = preset.rootModel;
  subModel.value = preset.subModel;
  baseURLInput.value = preset.baseURL;
  reflectPreset();
  persist();
});
form.addEventListener('input', (event) => {
  if (settingsPanel.contains(event.target as Node)) persist();
});
rememberKey.addEventListener('change', () => {
  reflectPreset();
  persist();
});
showKey.addEventListener('click', () => {
  const shown = keyInput.type === 'text';
  keyInput.type = shown ? 'password' : 'text';
  showKey.textContent = shown ? 'Show' : 'Hide';
  showKey.setAttribute('aria-pressed', String(!shown));
});

function persist(): void {
  reflectPreset();
  try {
    saveSettings(readSettings());
  } catch {
    // storage full or disabled: settings simply are not remembered
  }
}

const initial = loadSettings();
writeSettings(initial);
settingsPanel.open = Boolean(validateSettings(initial));

// ------------------------------------------------------------------ cross-origin isolation by service worker

const COI_KEY = 'rlm-web-demo:coi';
coi.checked = localStorage.getItem(COI_KEY) === '1';
// Isolated by the server's own headers: nothing for the service worker to add.
$('coi-field').hidden = crossOriginIsolated && !coi.checked;
coi.addEventListener('change', async () => {
  if (!('serviceWorker' in navigator)) {
    showFormError({ title: 'This browser has no service workers.', detail: 'Serve the page with COOP/COEP headers instead (npm run demo -- --isolated).' });
    coi.checked = false;
    return;
  }
  if (coi.checked) {
    localStorage.setItem(COI_KEY, '1');
    await navigator.serviceWorker.register('./coi-serviceworker.js');
    await navigator.serviceWorker.ready;
  } else {
    localStorage.removeItem(COI_KEY);
    for (const registration of await navigator.serviceWorker.getRegistrations()) await registration.unregister();
  }
  location.reload();
});
if (coi.checked && 'serviceWorker' in navigator && !crossOriginIsolated) {
  void navigator.serviceWorker.register('./coi-serviceworker.js').then(async () => {
    await navigator.serviceWorker.ready;
    // The first load was not controlled by the worker; the next one is (once).
    if (!navigator.serviceWorker.controller && !sessionStorage.getItem('rlm-web-demo:coi-reloaded')) {
      sessionStorage.setItem('rlm-web-demo:coi-reloaded', '1');
      location.reload();
    }
  });
}

// ------------------------------------------------------------------ the REPL bridge badge

function showBridge(info: ReplInfo | undefined, state: 'idle' | 'starting' | 'ready' = info ? 'ready' : 'idle'): void {
  if (state === 'idle') {
    bridgeBadge.textContent = `Python: starts with the first run${crossOriginIsolated ? ' · cross-origin isolated' : ''}`;
  } else if (state === 'starting') {
    bridgeBadge.textContent = 'Python: starting…';
  } else if (info) {
    const bridge = info.bridge === 'jspi' ? 'JSPI bridge' : info.bridge === 'sab' ? 'SharedArrayBuffer bridge' : 'remote sandbox';
    const stops = info.interruptible ? 'Stop keeps variables' : 'Stop restarts Python';
    const snapshot = info.snapshot === 'loaded' ? ' from a snapshot' : '';
    const isolation = info.isolation === 'sandbox' ? ' · no network, no storage' : info.isolation === 'none' ? ' · not isolated' : '';
    bridgeBadge.textContent = `Python ready${isolation} · ${bridge} · ${stops} · booted in ${formatDuration(info.bootMs)}${snapshot}`;
    bridgeBadge.title = `${info.runtime}; ${
      info.isolation === 'sandbox' ? 'sandboxed: Python cannot reach the network, this site’s storage or this page; ' : ''
    }${info.interruptible ? 'a stopped or timed-out cell keeps its variables' : 'a stopped or timed-out cell restarts Python (the context is reloaded, other variables are lost)'}`;
  }
  bridgeBadge.dataset.state = state;
  bridgeBadge.dataset.bridge = info?.bridge ?? '';
}
showBridge(undefined);

// ------------------------------------------------------------------ the RLM

/** rlm-web's isolation frame host, emitted beside index.html by the build (scripts/isolated-sources.ts). */
const SANDBOX_URL = new URL('./sandbox.html', location.href).href;

let rlm: RLM | undefined;
let rlmKey = '';
let onEvent: (event: RLMEvent) => void = () => undefined;
let warming: Promise<unknown> | undefined;
const history = connectHistory();

function getRLM(options: RLMOptions): RLM {
  const key = JSON.stringify(options);
  if (rlm && key === rlmKey) return rlm;
  void rlm?.close();
  // Python runs in rlm-web's sandbox page (this page's CSP forbids the default srcdoc frame's inline script).
  const environmentOptions: PyodideEnvironmentOptions = { ...(options.environmentOptions as PyodideEnvironmentOptions | undefined), sandboxURL: SANDBOX_URL };
  rlm = new RLM({ ...options, environment: 'pyodide', environmentOptions, logger: history?.logger, onEvent: (event) => onEvent(event) });
  rlmKey = key;
  warming = undefined;
  showBridge(undefined);
  return rlm;
}

/** Boots Python as soon as the user shows intent, so the first cell does not wait for it. */
function warmUp(): void {
  const s = readSettings();
  if (validateSettings(s) || warming) return;
  let instance: RLM;
  try {
    instance = getRLM(toRLMOptions(s));
  } catch {
    return;
  }
  if (instance.replInfo) return;
  showBridge(undefined, 'starting');
  warming = instance.warmUp().then(
    (info) => {
      if (instance === rlm) showBridge(info);
    },
    () => {
      // The run reports boot failures where the user looks; keep the badge honest here.
      if (instance === rlm) showBridge(undefined);
    },
  );
}
for (const target of [question, $('context-text'), $('file-picker')]) target.addEventListener('focus', warmUp, { once: true });

// ------------------------------------------------------------------ showing runs

let live: RunView | undefined;
let liveRunId: string | undefined;
let shownRunId: string | undefined;
let controller: AbortController | undefined;

function show(view: RunView, runId: string | undefined, saved: boolean): void {
  runSlot.replaceChildren(view.root);
  shownRunId = runId;
  const isLive = view === live;
  viewingBar.hidden = isLive && controller !== undefined;
  viewingLabel.textContent = saved ? 'Saved run' : 'This run';
  exportButton.hidden = deleteButton.hidden = !history || !runId;
  backButton.hidden = isLive || !live;
}

function showFormError(explained: Explained): void {
  formError.replaceChildren(el('strong', undefined, explained.title), el('p', undefined, explained.detail));
  formError.hidden = false;
}

function setRunning(running: boolean): void {
  runButton.disabled = running;
  stopButton.disabled = !running;
  runButton.textContent = running ? 'Running…' : 'Run';
  form.setAttribute('aria-busy', String(running));
}

const narrow = matchMedia('(max-width: 900px)');

async function run(): Promise<void> {
  const clickedAt = performance.now();
  formError.hidden = true;
  const s = readSettings();
  const problem = validateSettings(s);
  if (problem) {
    showFormError({ title: 'Settings needed.', detail: problem });
    settingsPanel.open = true;
    (presetOf(s.preset).needsKey && !s.apiKey.trim() ? keyInput : s.rootModel.trim() ? baseURLInput : rootModel).focus();
    return;
  }
  let prepared;
  try {
    prepared = await contextView.prepare();
  } catch (error) {
    showFormError({ title: 'No context to run on.', detail: (error as Error).message });
    return;
  }
  let instance: RLM;
  try {
    instance = getRLM(toRLMOptions(s));
  } catch (error) {
    showFormError(explainError(error));
    return;
  }
  const view = new RunView({ question: question.value.trim(), model: s.rootModel.trim(), contextLabel: prepared.label, startedAt: new Date().toISOString() }, 'running');
  view.setStatus('running', instance.replInfo ? 'Asking the model…' : 'Asking the model while Python starts…');
  await watch(view, instance, s, clickedAt, (signal) => instance.completion(prepared.context, { rootPrompt: question.value.trim() || undefined, signal }));
}

/**
 * Continues a stored run that did not finish: its cells are replayed from History (no model
 * calls), then the model takes the next turn. A context too large to have been kept is taken
 * from the Context pane.
 */
async function resumeRun(id: string): Promise<void> {
  if (controller || !history) return;
  const clickedAt = performance.now();
  formError.hidden = true;
  const s = readSettings();
  const problem = validateSettings(s);
  if (problem) {
    showFormError({ title: 'Settings needed to resume.', detail: problem });
    settingsPanel.open = true;
    return;
  }
  let instance: RLM;
  let stored: Trajectory | undefined;
  try {
    instance = getRLM(toRLMOptions(s));
    stored = await history.store.getRun(id);
  } catch (error) {
    showFormError(explainError(error));
    return;
  }
  if (!stored) return;
  // The iteration the tab closed in is asked again: show the finished ones.
  const view = RunView.fromTrajectory({ ...stored, iterations: stored.iterations.filter((it) => !it.partial) }, 'running');
  view.setStatus('running', 'Replaying the saved cells (no model calls)…');
  await watch(view, instance, s, clickedAt, async (signal) => {
    try {
      return await instance.resume(id, { signal });
    } catch (error) {
      if ((error as { reason?: string }).reason !== 'context_missing') throw error;
      const prepared = await contextView.prepare().catch(() => undefined);
      if (!prepared) throw error;
      return instance.resume(id, { signal, context: prepared.context });
    }
  });
}

/** Shows a live run in `view` until it ends: events, Stop, History, focus. */
async function watch(view: RunView, instance: RLM, s: ReturnType<typeof readSettings>, clickedAt: number, start: (signal: AbortSignal) => Promise<CompletionResult>): Promise<void> {
  live = view;
  liveRunId = undefined;
  settingsPanel.open = false;
  controller = new AbortController();
  if (history) history.view.busy = true;
  show(view, undefined, false);
  setRunning(true);
  stopButton.focus();
  if (narrow.matches) runArea.scrollIntoView({ behavior: 'smooth', block: 'start' });
  if (!instance.replInfo) {
    showBridge(undefined, 'starting');
    // Python boots alongside the first LM call (idempotent): the badge follows it even if the run ends first.
    instance.warmUp().then(
      (info) => instance === rlm && showBridge(info),
      () => instance === rlm && showBridge(undefined),
    );
  }
  view.startClock(clickedAt);
  onEvent = (event) => {
    const follow = runArea.scrollHeight - runArea.scrollTop - runArea.clientHeight < 80;
    if (event.type === 'run_start' && event.depth === 0) {
      liveRunId = event.runId;
      shownRunId = event.runId;
      if (history) history.view.liveRunId = event.runId;
    }
    // run_start comes before the logger's first write; by iteration_start the run is stored.
    if (event.type === 'iteration_start' && event.depth === 0 && event.iteration === 1 && history) void history.view.refresh();
    if (event.type === 'repl_ready' && event.depth === 0) showBridge(event.info);
    if (event.type === 'iteration_end' && event.depth === 0 && history) void history.view.refresh();
    view.handleEvent(event);
    if (follow && !narrow.matches && runSlot.contains(view.root)) runArea.scrollTop = runArea.scrollHeight;
  };
  try {
    const result = await start(controller.signal);
    view.finish(result);
  } catch (error) {
    const explained = explainError(error, { baseURL: s.baseURL || presetOf(s.preset).baseURL || undefined, provider: presetOf(s.preset).label });
    const name = (error as { name?: string }).name;
    const status: RunStatus = name === 'CancellationError' ? 'cancelled' : 'failed';
    const ended = error as { partialAnswer?: string; usage?: Trajectory['usage'] };
    // Shown at the top of the run view, which is in sight after Run (scrolled to on phones).
    view.fail(explained, status, { answer: ended.partialAnswer, usage: ended.usage });
  } finally {
    if (instance.replInfo) showBridge(instance.replInfo);
    controller = undefined;
    onEvent = () => undefined;
    setRunning(false);
    if (runSlot.contains(view.root)) {
      show(view, liveRunId, false);
      // The answer (or what went wrong) is where the eyes go next.
      const target = view.answer.hidden ? view.title : view.answer;
      target.focus({ preventScroll: true });
      if (narrow.matches) target.scrollIntoView({ block: 'start', behavior: 'smooth' });
      else {
        // Below the sticky totals bar.
        const totals = view.root.querySelector<HTMLElement>('.totals')?.offsetHeight ?? 0;
        runArea.scrollTop += target.getBoundingClientRect().top - runArea.getBoundingClientRect().top - totals - 12;
      }
    }
    if (history) {
      history.view.liveRunId = undefined;
      history.view.busy = false;
      await history.view.refresh();
    }
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (!controller) void run();
});
stopButton.addEventListener('click', () => {
  controller?.abort();
  live?.setStatus('running', 'Stopping…');
});
for (const area of [question, $<HTMLTextAreaElement>('context-text')]) {
  area.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
}

backButton.addEventListener('click', () => {
  if (live) show(live, liveRunId, false);
  if (history) history.view.selectedId = undefined;
});

// ------------------------------------------------------------------ history

if (history) {
  // A write that failed mid-run (storage full): the run goes on, History is what suffers.
  history.onStorageError = (error) => showFormError(explainError(error));
  history.view.onOpenRun = (trajectory: Trajectory, status: RunStatus) => {
    // The run in progress is shown live; anything else (this page's finished run too) as stored.
    if (trajectory.id === liveRunId && live && controller) {
      show(live, liveRunId, false);
      return;
    }
    const view = RunView.fromTrajectory(trajectory, status);
    show(view, trajectory.id, true);
    runArea.focus({ preventScroll: true });
    if (narrow.matches) runArea.scrollIntoView({ behavior: 'smooth', block: 'start' });
  };
  history.view.onResume = (id) => void resumeRun(id);
  exportButton.addEventListener('click', () => {
    if (shownRunId) void history.view.export(shownRunId);
  });
  deleteButton.addEventListener('click', async () => {
    const id = shownRunId;
    if (!id || !confirm('Delete this run from History? This cannot be undone.')) return;
    await history.view.remove(id);
    if (id === liveRunId) live = undefined;
    backButton.hidden = !live;
    if (live) show(live, liveRunId, false);
    else {
      runSlot.replaceChildren(el('p', 'muted', 'The run was deleted.'));
      viewingBar.hidden = true;
    }
  });
  void history.view.refresh();
} else {
  $('history').hidden = true;
}

