/**
 * The side panel ("Ask this page"): the tab's title and size, what to ask about, the
 * question, Settings, and the demo's run view and History. The panel is an extension page:
 * the RLM, its LM clients and the key live here; Python runs in a worker inside the
 * extension's sandbox page (an opaque origin with no network), started from here. The page
 * being read only ever sends text (see page-source.ts).
 */
import { RLM, type ContextInput, type ReplInfo } from '../src/index';
import { explainError, type Explained } from '../ui/errors';
import { el, formatBytes, formatCount, formatDuration } from '../ui/format';
import { RunPane } from '../ui/run-pane';
import { endpointOrigin, toRLMOptions, validateSettings } from '../ui/settings';
import { SettingsForm } from '../ui/settings-form';
import { connectHistory } from '../ui/store';
import { describeTab, readAllTabs, readSource, type TabItem } from './page-source';
import { requestAccess } from './permissions';
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
  runButton.disabled = running;
  stopButton.disabled = !running;
  runButton.textContent = running ? 'Running…' : 'Run';
  form.setAttribute('aria-busy', String(running));
  if (running) stopButton.focus();
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

async function run(): Promise<void> {
  const clickedAt = performance.now();
  formError.hidden = true;
  const s = settings.read();
  const problem = validateSettings(s);
  if (problem) {
    showFormError({ title: 'Settings needed.', detail: problem });
    settings.focusProblem(s);
    return;
  }
  const origin = endpointOrigin(s)!;
  const what = choice();
  // First thing after the click: the permission prompt needs the user's gesture.
  const asking = requestAccess(origin, what === 'tabs');
  reading.textContent = `Asking for access to ${origin}${what === 'tabs' ? ' and your tabs’ sites' : ''} (answered at once if you allowed it before)…`;
  const access = await asking;
  reading.textContent = '';
  if (!access.granted) {
    showFormError({ title: 'The extension was not allowed to reach the model.', detail: `Run needs access to ${origin}${what === 'tabs' ? ' and, to read all tabs, to their sites' : ''}. Press Run again and allow it.` });
    return;
  }
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
  let rlm: RLM;
  try {
    rlm = pane.rlmFor(toRLMOptions(s));
  } catch (error) {
    setRunning(false);
    showFormError(explainError(error));
    return;
  }
  settings.panel.open = false;
  await pane.run({
    rlm,
    context: prepared.context,
    question: question.value.trim(),
    settings: s,
    contextLabel: prepared.label,
    clickedAt,
  });
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  if (!pane.running && !readController) void run();
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
