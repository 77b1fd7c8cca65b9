/**
 * The side panel ("Ask this page"): the tab's title and size, what to ask about, the
 * question, Settings, and the demo's run view and History. The panel is an extension page:
 * the RLM, its LM clients and the key live here; Python runs in a worker inside the
 * extension's sandbox page (an opaque origin with no network), started from here. The page
 * being read only ever sends text (see page-source.ts).
 */
import type { ContextInput, ReplInfo } from '../src/index';
import { explainError, type Explained } from '../ui/errors';
import { el, formatBytes, formatCount, formatDuration } from '../ui/format';
import { RunPane, showRunning } from '../ui/run-pane';
import { endpointOrigin, toRLMOptions, validateSettings } from '../ui/settings';
import { SettingsForm } from '../ui/settings-form';
import { connectHistory } from '../ui/store';
import { describeTab, readAllTabs, readSource, type TabItem } from './page-source';
import { requestAccess, type Access } from './permissions';
import { SOURCES, type PageFacts, type Source } from './protocol';
import { loadSettings, restrictStorage, saveSettings } from './storage';

type Choice = Source | 'tabs';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const form = $<HTMLFormElement>('run-form');
const pageCard = $('page');
const pageTitle = $('page-title');
const pageFacts = $('page-facts');
const selectionSize = $('selection-size');
const question = $<HTMLTextAreaElement>('question');
const runButton = $<HTMLButtonElement>('run');
const stopButton = $<HTMLButtonElement>('stop');
const reading = $('reading');
const formError = $('form-error');
const bridgeBadge = $('bridge');

const params = new URLSearchParams(location.search);
/** The tab this panel was opened for (the background names it in the panel's URL). */
const tabId = Number.parseInt(params.get('tab') ?? '', 10);
const hasTab = Number.isSafeInteger(tabId) && tabId >= 0;

const SOURCE_LABEL: Record<Choice, string> = {
  article: 'article',
  text: 'full text',
  selection: 'selection',
  html: 'raw HTML',
  tabs: 'all tabs',
};

function choice(): Choice {
  const value = form.querySelector<HTMLInputElement>('input[name="source"]:checked')?.value;
  return value === 'tabs' || SOURCES.includes(value as Source) ? (value as Choice) : 'article';
}

function showFormError(explained: Explained): void {
  formError.replaceChildren(el('strong', undefined, explained.title), el('p', undefined, explained.detail));
  formError.hidden = false;
}

// ------------------------------------------------------------------ settings

const settings = new SettingsForm(document, {
  onChange: (s) => {
    saveSettings(s).catch((error: unknown) => showFormError({ title: 'Settings could not be saved.', detail: (error as Error).message }));
  },
});

// ------------------------------------------------------------------ the tab

let facts: PageFacts | undefined;

async function describe(): Promise<void> {
  if (!hasTab) {
    pageTitle.textContent = 'No page chosen';
    pageFacts.textContent = 'Open this panel from the toolbar button (or Alt+Shift+A) on the page you want to ask about. “All tabs” works from here.';
    pageCard.dataset.state = 'error';
    return;
  }
  try {
    facts = await describeTab(tabId);
    pageTitle.textContent = facts.title || '(untitled page)';
    pageTitle.title = facts.url;
    const selected = facts.selectionChars > 0 ? `${formatCount(facts.selectionChars)} characters selected` : 'nothing selected';
    pageFacts.textContent = `${facts.contentType} · ${formatCount(facts.textChars)} characters of text (${formatBytes(facts.textChars)}) · ${selected}`;
    selectionSize.textContent = facts.selectionChars > 0 ? `(${formatCount(facts.selectionChars)} characters)` : '(nothing selected)';
    pageCard.dataset.state = 'ready';
  } catch (error) {
    facts = undefined;
    pageTitle.textContent = 'This page cannot be read';
    pageFacts.textContent = (error as Error).message;
    pageCard.dataset.state = 'error';
  }
}

if (hasTab) {
  chrome.tabs.onUpdated.addListener((id, change) => {
    if (id === tabId && change.status === 'complete') void describe();
  });
}
// The selection may have changed while the user was on the page.
window.addEventListener('focus', () => void describe());

// ------------------------------------------------------------------ the REPL badge

function showBridge(info: ReplInfo | undefined, state: 'idle' | 'starting' | 'ready' = info ? 'ready' : 'idle'): void {
  if (state === 'idle') bridgeBadge.textContent = 'Python: starts with the first run';
  else if (state === 'starting') bridgeBadge.textContent = 'Python: starting…';
  else if (info) {
    const bridge = info.bridge === 'jspi' ? 'JSPI' : info.bridge === 'sab' ? 'SharedArrayBuffer' : 'remote';
    const isolation = info.isolation === 'sandbox' ? ' · no network, no storage' : info.isolation === 'none' ? ' · not isolated' : '';
    bridgeBadge.textContent = `Python ready${isolation} · ${bridge} · booted in ${formatDuration(info.bootMs)}`;
    bridgeBadge.title = `${info.runtime}${info.isolation === 'sandbox' ? '; sandboxed: Python cannot reach the network, the extension’s storage or this panel' : ''}`;
  }
  bridgeBadge.dataset.state = state;
  bridgeBadge.dataset.bridge = info?.bridge ?? '';
}

// ------------------------------------------------------------------ the RLM

const history = connectHistory();

function setRunning(running: boolean): void {
  showRunning(form, runButton, stopButton, running);
  // No Resume while the page is read or a run goes on (the run pane marks History busy for the run only).
  if (history && history.view.busy !== running) {
    history.view.busy = running;
    void history.view.refresh();
  }
}

// One column in the panel's own scroll, whatever its width.
// Python runs in rlm-web's sandbox.html, a sandbox page of the manifest (opaque origin, no
// network): the panel's CSP forbids the default srcdoc frame's inline script.
const sandboxURL = chrome.runtime.getURL('sandbox.html');
const pane = new RunPane(document, { history, narrow: matchMedia('all'), sandboxURL, showRepl: showBridge, onRunning: setRunning });
if (history) history.onStorageError = (error) => showFormError(explainError(error));

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
question.addEventListener('focus', warmUp, { once: true });

// ------------------------------------------------------------------ reading and running

let readController: AbortController | undefined;
/** A Run or Resume waits for the user's answer to the access prompt. */
let accessPending = false;

/** Whether a Run or Resume is under way (asking for access, reading the page, running). */
function busy(): boolean {
  return pane.running || readController !== undefined || accessPending;
}

async function readContext(what: Choice, signal: AbortSignal): Promise<{ context: ContextInput; label: string }> {
  if (what === 'tabs') {
    const windowId = hasTab ? (await chrome.tabs.get(tabId)).windowId : (await chrome.windows.getCurrent()).id!;
    const { items, skipped } = await readAllTabs(windowId, signal);
    if (items.length === 0) throw new Error('No tab of this window could be read (browser pages and the web store cannot be).');
    const chars = items.reduce((n: number, item: TabItem) => n + item.content.length, 0);
    return { context: items, label: `${items.length} tabs${skipped.length ? ` (${skipped.length} skipped)` : ''}, ${formatCount(chars)} characters` };
  }
  if (!hasTab) throw new Error('This panel is not tied to a page: open it from the toolbar button on the page you want to ask about.');
  const read = await readSource(tabId, what, signal);
  return { context: read.blob, label: `${SOURCE_LABEL[what]} of “${read.title || 'untitled'}”, ${formatBytes(read.blob.size)}` };
}

/**
 * Asks for access to the LM endpoint's origin (and every site, to read all tabs): call it
 * before any other await after the click, the prompt needs the user's gesture. Undefined,
 * after saying so, when the user refused.
 */
async function askAccess(origin: string, allSites: boolean, button: 'Run' | 'Resume'): Promise<Access | undefined> {
  const asking = requestAccess(origin, allSites);
  reading.textContent = `Asking for access to ${origin}${allSites ? ' and your tabs’ sites' : ''} (answered at once if you allowed it before)…`;
  accessPending = true;
  const access = await asking.finally(() => (accessPending = false));
  reading.textContent = '';
  if (access.granted) return access;
  showFormError({ title: 'The extension was not allowed to reach the model.', detail: `${button} needs access to ${origin}${allSites ? ' and, to read all tabs, to their sites' : ''}. Press ${button} again and allow it.` });
  return undefined;
}

async function run(): Promise<void> {
  const clickedAt = performance.now();
  formError.hidden = true;
  // An answer format that is not JSON is refused here, before any request.
  const ready = pane.prepare(settings, showFormError);
  if (!ready) return;
  const what = choice();
  const access = await askAccess(endpointOrigin(ready.settings)!, what === 'tabs', 'Run');
  if (!access) return;
  readController = new AbortController();
  setRunning(true);
  reading.textContent = what === 'tabs' ? 'Reading the tabs…' : `Reading the ${SOURCE_LABEL[what]}…`;
  let prepared: { context: ContextInput; label: string };
  try {
    prepared = await readContext(what, readController.signal);
  } catch (error) {
    setRunning(false);
    if ((error as Error).name !== 'AbortError') showFormError({ title: 'The page could not be read.', detail: (error as Error).message });
    return;
  } finally {
    readController = undefined;
    reading.textContent = '';
    await access.release();
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

/** What to do when a resumed run's context was not kept (or the one read is not the run's). */
const CONTEXT_AGAIN = 'Open this panel from the page the run read (its toolbar button), choose what the run asked about under “Ask about”, then press Resume again: the panel reads it again.';

/** Runs found to need their context read again: their next Resume asks for the sites of all tabs too, if that is the source. */
const needsContext = new Set<string>();

/**
 * Continues a stored run that did not finish (History's Resume): its cells are replayed from
 * History, then the model takes the next turn. A context too large to have been kept is read
 * again from this panel's tab, as "Ask about" says.
 */
async function resumeRun(id: string): Promise<void> {
  if (busy()) return;
  const clickedAt = performance.now();
  formError.hidden = true;
  const ready = pane.prepare(settings, showFormError, 'Settings needed to resume.');
  if (!ready) return;
  const what = choice();
  const allSites = what === 'tabs' && needsContext.has(id);
  const access = await askAccess(endpointOrigin(ready.settings)!, allSites, 'Resume');
  if (!access) return;
  settings.panel.open = false;
  const context = async (signal: AbortSignal): Promise<ContextInput | undefined> => {
    needsContext.add(id);
    // Reading all tabs needs every site, asked for at the click: the next Resume does.
    if (what === 'tabs' && !allSites) return undefined;
    reading.textContent = `The run’s context was not saved: reading the ${SOURCE_LABEL[what]} again…`;
    try {
      return (await readContext(what, signal)).context;
    } finally {
      reading.textContent = '';
    }
  };
  try {
    await pane.resume({ ...ready, id, clickedAt, context, contextAgain: CONTEXT_AGAIN });
  } catch (error) {
    showFormError(explainError(error));
  } finally {
    await access.release();
  }
}
if (history) history.view.onResume = (id) => void resumeRun(id);

form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (!busy()) void run();
});
stopButton.addEventListener('click', () => {
  if (readController) readController.abort();
  else pane.stop();
});
question.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    form.requestSubmit();
  }
});

// ------------------------------------------------------------------ start

async function start(): Promise<void> {
  showBridge(undefined);
  await restrictStorage();
  const initial = await loadSettings();
  settings.write(initial);
  settings.panel.open = Boolean(validateSettings(initial));
  const preset = params.get('source');
  if (preset && (preset === 'tabs' || SOURCES.includes(preset as Source))) {
    const radio = form.querySelector<HTMLInputElement>(`input[name="source"][value="${preset}"]`);
    if (radio) radio.checked = true;
  }
  await describe();
  if (preset === 'selection') question.focus();
}

void start().catch((error: unknown) => showFormError({ title: 'The panel could not start.', detail: (error as Error).message }));
