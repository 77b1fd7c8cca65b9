/**
 * The demo page: settings, context, question, Run/Stop, the live run view, and History.
 * It uses rlm-web's public API only.
 */
import type { ReplInfo } from '../src/index';
import { explainError, type Explained } from '../ui/errors';
import { el, formatDuration } from '../ui/format';
import { RunPane, showRunning } from '../ui/run-pane';
import { toRLMOptions, validateSettings } from '../ui/settings';
import { SettingsForm } from '../ui/settings-form';
import { connectHistory } from '../ui/store';
import { ContextInputView } from './context-input';
import { loadSettings, saveSettings } from './settings';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const form = $<HTMLFormElement>('run-form');
const coi = $<HTMLInputElement>('coi');
const question = $<HTMLTextAreaElement>('question');
const runButton = $<HTMLButtonElement>('run');
const stopButton = $<HTMLButtonElement>('stop');
const formError = $('form-error');
const bridgeBadge = $('bridge');

const contextView = new ContextInputView($('context-text'), $('file-picker'), $('drop-zone'), $('file-list'), $('context-summary'));

// ------------------------------------------------------------------ settings

const settings = new SettingsForm(document, {
  onChange: (s) => {
    try {
      saveSettings(s);
    } catch {
      // storage full or disabled: settings simply are not remembered
    }
  },
  // SharedArrayBuffer exists only on cross-origin isolated pages.
  bridgeHint: () =>
    crossOriginIsolated
      ? 'This page is cross-origin isolated: Automatic uses SharedArrayBuffer, and a stopped or timed-out cell keeps its variables on either bridge.'
      : 'This page is not cross-origin isolated: Automatic uses JSPI, and stopping a cell restarts Python. Tick the box below, or serve with npm run demo -- --isolated.',
});
const initial = loadSettings();
settings.write(initial);
settings.panel.open = Boolean(validateSettings(initial));

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

const history = connectHistory();

function setRunning(running: boolean): void {
  showRunning(form, runButton, stopButton, running);
}

const narrow = matchMedia('(max-width: 900px)');
// Python runs in rlm-web's sandbox.html, emitted beside index.html by the build (scripts/isolated-sources.ts):
// this page's CSP forbids the default srcdoc frame's inline script.
const sandboxURL = new URL('./sandbox.html', location.href).href;
const pane = new RunPane(document, { history, narrow, sandboxURL, showRepl: showBridge, onRunning: setRunning });

/** Boots Python as soon as the user shows intent, so the first cell does not wait for it. */
function warmUp(): void {
  const s = settings.read();
  if (validateSettings(s)) return;
  try {
    pane.warmUp(toRLMOptions(s));
  } catch {
    // Settings the RLM refuses: Run says what is wrong.
  }
}
for (const target of [question, $('context-text'), $('file-picker')]) target.addEventListener('focus', warmUp, { once: true });

// ------------------------------------------------------------------ running

function showFormError(explained: Explained): void {
  formError.replaceChildren(el('strong', undefined, explained.title), el('p', undefined, explained.detail));
  formError.hidden = false;
}

async function run(): Promise<void> {
  const clickedAt = performance.now();
  formError.hidden = true;
  const ready = pane.prepare(settings, showFormError);
  if (!ready) return;
  let prepared;
  try {
    prepared = await contextView.prepare();
  } catch (error) {
    showFormError({ title: 'No context to run on.', detail: (error as Error).message });
    return;
  }
  settings.panel.open = false;
  await pane.run({
    ...ready,
    context: prepared.context,
    question: question.value.trim(),
    contextLabel: prepared.label,
    clickedAt,
  });
}

/**
 * Continues a stored run that did not finish (History's Resume). A context too large to have
 * been kept is taken from the Context pane.
 */
async function resumeRun(id: string): Promise<void> {
  if (pane.running) return;
  const clickedAt = performance.now();
  formError.hidden = true;
  const ready = pane.prepare(settings, showFormError, 'Settings needed to resume.');
  if (!ready) return;
  settings.panel.open = false;
  await pane.resume({ ...ready, id, clickedAt, context: async () => (await contextView.prepare()).context }).catch((error: unknown) => showFormError(explainError(error)));
}
if (history) history.view.onResume = (id) => void resumeRun(id);

form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (!pane.running) void run();
});
stopButton.addEventListener('click', () => pane.stop());
for (const area of [question, $<HTMLTextAreaElement>('context-text')]) {
  area.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
}

// A write that failed mid-run (storage full): the run goes on, History is what suffers.
if (history) history.onStorageError = (error) => showFormError(explainError(error));
