/**
 * The wire between the side panel and the content script, one port per read
 * (`chrome.tabs.connect(tabId, { name: PORT_NAME })`). The panel pulls: it asks for the next
 * chunk only after storing the last one, so at most one chunk is in flight and a 50 MB page
 * never sits whole in a message queue. Everything the content script sends comes from a page
 * nobody vetted, through a renderer that may be compromised: the panel checks each message
 * with `parseReply` and stops at the caps below.
 */

export const PORT_NAME = 'rlm-web:page';

/** What can be read from a tab. */
export type Source = 'article' | 'text' | 'selection' | 'html';

export const SOURCES: readonly Source[] = ['article', 'text', 'selection', 'html'];

/** Characters per chunk: well under Chrome's 64 MiB message cap, even for JSON-escaped text. */
export const CHUNK_CHARS = 4 * 1024 * 1024;

/** The most characters the panel accepts from one source (wasm32 Python holds at most ≈2 GB of text). */
export const MAX_SOURCE_CHARS = 1024 * 1024 * 1024;

/** The panel gives up on a silent content script after this long (per message). */
export const REPLY_TIMEOUT_MS = 60_000;

export type PageRequest = { type: 'describe' } | { type: 'extract'; source: Source } | { type: 'next' };

export interface PageFacts {
  title: string;
  url: string;
  /** The document's MIME type, e.g. text/html or text/plain. */
  contentType: string;
  /** Characters of the page's text (textContent: no layout needed). */
  textChars: number;
  /** Characters currently selected. */
  selectionChars: number;
}

export type PageReply =
  | ({ type: 'described' } & PageFacts)
  | { type: 'start'; chars: number; title: string }
  | { type: 'chunk'; text: string }
  | { type: 'end' }
  | { type: 'error'; message: string };

const MAX_META_CHARS = 4096;

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function shortText(s: unknown): s is string {
  return typeof s === 'string' && s.length <= MAX_META_CHARS;
}

/** A message from the content script, checked; undefined for anything malformed or oversized. */
export function parseReply(message: unknown): PageReply | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const m = message as Record<string, unknown>;
  switch (m.type) {
    case 'described':
      if (!shortText(m.title) || !shortText(m.url) || !shortText(m.contentType) || !isCount(m.textChars) || !isCount(m.selectionChars)) return undefined;
      return { type: 'described', title: m.title, url: m.url, contentType: m.contentType, textChars: m.textChars, selectionChars: m.selectionChars };
    case 'start':
      if (!isCount(m.chars) || m.chars > MAX_SOURCE_CHARS || !shortText(m.title)) return undefined;
      return { type: 'start', chars: m.chars, title: m.title };
    case 'chunk':
      if (typeof m.text !== 'string' || m.text.length > CHUNK_CHARS) return undefined;
      return { type: 'chunk', text: m.text };
    case 'end':
      return { type: 'end' };
    case 'error':
      return shortText(m.message) ? { type: 'error', message: m.message } : undefined;
    default:
      return undefined;
  }
}

/** A request from the panel, checked by the content script. */
export function parseRequest(message: unknown): PageRequest | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const m = message as Record<string, unknown>;
  if (m.type === 'describe' || m.type === 'next') return { type: m.type };
  if (m.type === 'extract' && SOURCES.includes(m.source as Source)) return { type: 'extract', source: m.source as Source };
  return undefined;
}
