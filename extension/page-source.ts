/**
 * The panel's side of reading a tab: inject the content script, describe the page, and pull
 * a source into a Blob chunk by chunk. Each chunk becomes a small Blob at once (Chrome keeps
 * blob data outside the panel's JS heap) and is dropped, so the panel holds one chunk at a
 * time; the RLM then streams the Blob into Python without making it a JS string again.
 */
import contentScript from './content.ts?iife';
import { MAX_SOURCE_CHARS, parseReply, PORT_NAME, REPLY_TIMEOUT_MS, type PageFacts, type PageReply, type PageRequest, type Source } from './protocol';

/** A tab that cannot be read (a browser page, no access, a page reader that misbehaves). */
export class PageReadError extends Error {
  override readonly name = 'PageReadError';
}

/** Injects the content script (it installs itself once per page). */
export async function injectReader(tabId: number): Promise<void> {
  try {
    await chrome.scripting.executeScript({ target: { tabId }, files: [contentScript] });
  } catch (error) {
    const message = (error as Error).message ?? String(error);
    if (/cannot access|cannot be scripted|must request permission|chrome:\/\/|extensions gallery/i.test(message)) {
      throw new PageReadError('This page cannot be read by extensions (a browser page, the web store, or access was not given). Open the page you want to ask about and press the toolbar button (or Alt+Shift+A) there.');
    }
    throw new PageReadError(`The page could not be read: ${message}`);
  }
}

/** One port conversation: requests go out, checked replies come back one at a time. */
class Conversation {
  private readonly port: chrome.runtime.Port;
  private queue: PageReply[] = [];
  private waiting: ((reply: PageReply) => void) | undefined;
  private closed = false;

  constructor(tabId: number) {
    this.port = chrome.tabs.connect(tabId, { name: PORT_NAME });
    this.port.onMessage.addListener((message: unknown) => {
      const reply = parseReply(message) ?? { type: 'error', message: 'The page reader sent something malformed (or too large).' };
      if (this.waiting) {
        const deliver = this.waiting;
        this.waiting = undefined;
        deliver(reply);
      } else this.queue.push(reply);
    });
    this.port.onDisconnect.addListener(() => {
      this.closed = true;
      this.waiting?.({ type: 'error', message: 'The page went away while it was being read (reloaded, navigated or closed).' });
      this.waiting = undefined;
    });
  }

  async ask(request: PageRequest, signal?: AbortSignal): Promise<PageReply> {
    if (this.closed) throw new PageReadError('The page went away while it was being read (reloaded, navigated or closed).');
    this.port.postMessage(request);
    const queued = this.queue.shift();
    if (queued) return queued;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    try {
      return await new Promise<PageReply>((resolve, reject) => {
        this.waiting = resolve;
        timer = setTimeout(() => reject(new PageReadError(`The page did not answer within ${REPLY_TIMEOUT_MS / 1000} s. Reload it and try again.`)), REPLY_TIMEOUT_MS);
        onAbort = () => reject(new DOMException('Reading the page was stopped.', 'AbortError'));
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
      this.waiting = undefined;
    }
  }

  close(): void {
    this.closed = true;
    this.port.disconnect();
  }
}

function failed(reply: PageReply, expected: string): never {
  throw new PageReadError(reply.type === 'error' ? reply.message : `The page reader answered '${reply.type}' where '${expected}' was expected.`);
}

/** The tab's title, URL, type and sizes. */
export async function describeTab(tabId: number): Promise<PageFacts> {
  await injectReader(tabId);
  const talk = new Conversation(tabId);
  try {
    const reply = await talk.ask({ type: 'describe' });
    if (reply.type !== 'described') failed(reply, 'described');
    const { type: _, ...facts } = reply;
    return facts;
  } finally {
    talk.close();
  }
}

export interface ReadSource {
  /** The text, as UTF-8 in a Blob. */
  blob: Blob;
  /** Characters read. */
  chars: number;
  title: string;
}

/** Reads one source of a tab into a Blob, pulling one chunk at a time. */
export async function readSource(tabId: number, source: Source, signal?: AbortSignal): Promise<ReadSource> {
  await injectReader(tabId);
  const talk = new Conversation(tabId);
  try {
    const start = await talk.ask({ type: 'extract', source }, signal);
    if (start.type !== 'start') failed(start, 'start');
    const parts: Blob[] = [];
    let chars = 0;
    for (;;) {
      const reply = await talk.ask({ type: 'next' }, signal);
      if (reply.type === 'end') break;
      if (reply.type !== 'chunk') failed(reply, 'chunk');
      chars += reply.text.length;
      if (chars > start.chars || chars > MAX_SOURCE_CHARS) throw new PageReadError('The page sent more text than it announced: it changed while it was read, or it is not to be trusted. Try again.');
      parts.push(new Blob([reply.text]));
    }
    if (chars !== start.chars) throw new PageReadError('The page changed while it was being read. Try again.');
    return { blob: new Blob(parts, { type: 'text/plain;charset=utf-8' }), chars, title: start.title };
  } finally {
    talk.close();
  }
}

/** One tab of the window, as the context's list item. */
export interface TabItem {
  url: string;
  title: string;
  content: string;
}

/** All tabs together must fit in this many characters: a list is one JSON string for Python. */
export const MAX_TABS_CHARS = 200 * 1024 * 1024;

/**
 * The full text of every readable tab of a window (needs host access to their sites: see
 * requestAccess). Browser pages and other tabs that cannot be read are listed in `skipped`.
 */
export async function readAllTabs(windowId: number, signal?: AbortSignal): Promise<{ items: TabItem[]; skipped: string[] }> {
  const tabs = await chrome.tabs.query({ windowId });
  const items: TabItem[] = [];
  const skipped: string[] = [];
  let total = 0;
  for (const tab of tabs) {
    const url = tab.url ?? '';
    if (tab.id === undefined || !/^(https?|file):/.test(url)) {
      skipped.push(url || tab.title || `tab ${tab.id ?? '?'}`);
      continue;
    }
    let read: ReadSource;
    try {
      read = await readSource(tab.id, 'text', signal);
    } catch (error) {
      if ((error as Error).name === 'AbortError') throw error;
      skipped.push(url);
      continue;
    }
    total += read.chars;
    if (total > MAX_TABS_CHARS) {
      throw new PageReadError(`The tabs of this window hold more than ${MAX_TABS_CHARS / 1024 / 1024} M characters of text; as a list they must fit in that. Ask about the largest tab on its own (any size works).`);
    }
    items.push({ url, title: tab.title ?? read.title, content: await read.blob.text() });
  }
  return { items, skipped };
}
