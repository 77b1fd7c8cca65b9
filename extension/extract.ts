/**
 * What the content script reads from a page, in its isolated world. Nothing here runs the
 * page's code: Readability works on a clone of the DOM, Turndown on the HTML string it
 * returns (parsed into an inert document), and the rest reads text the page already has.
 */
import { Readability } from '@mozilla/readability';
import TurndownService from 'turndown';
import type { PageFacts, Source } from './protocol';

/** A source that cannot be read here; the message says what to choose instead. */
export class ExtractError extends Error {
  override readonly name = 'ExtractError';
}

/** A text/plain document (a log, a dump): its text is the one <pre>'s, read without layout. */
function isPlainText(doc: Document): boolean {
  return doc.contentType === 'text/plain';
}

/** The page's title; a text/plain page has none, so its file name stands in. */
export function titleOf(doc: Document): string {
  const title = doc.title.trim() || decodeURIComponent(doc.location.pathname.split('/').pop() ?? '') || doc.location.host;
  return title.slice(0, 500);
}

export function describePage(doc: Document): PageFacts {
  return {
    title: titleOf(doc),
    url: doc.location.href.slice(0, 2000),
    contentType: doc.contentType.slice(0, 100),
    textChars: doc.body?.textContent?.length ?? 0,
    selectionChars: doc.getSelection()?.toString().length ?? 0,
  };
}

/** The page's content as text, for one source. */
export function extract(doc: Document, source: Source): string {
  switch (source) {
    case 'text':
      // innerText is the text as rendered (no scripts or hidden nodes); a text/plain page's
      // textContent is the same text without a layout pass over megabytes.
      return (isPlainText(doc) ? doc.body?.textContent : doc.body?.innerText) ?? '';
    case 'selection': {
      const text = doc.getSelection()?.toString() ?? '';
      if (!text.trim()) throw new ExtractError('Nothing is selected on the page. Select some text there, or choose another source.');
      return text;
    }
    case 'html':
      return (doc.doctype ? `<!DOCTYPE ${doc.doctype.name}>\n` : '') + doc.documentElement.outerHTML;
    case 'article':
      return articleMarkdown(doc);
  }
}

/** The readable article (Readability) as Markdown (Turndown), titled. */
export function articleMarkdown(doc: Document): string {
  if (isPlainText(doc)) return doc.body?.textContent ?? '';
  const article = new Readability(doc.cloneNode(true) as Document, { charThreshold: 200 }).parse();
  if (!article?.content) throw new ExtractError('No article was found on this page. Choose "Full text" or "Raw HTML" instead.');
  const turndown = new TurndownService({ headingStyle: 'atx', codeBlockStyle: 'fenced', bulletListMarker: '-' });
  const title = article.title?.trim();
  return `${title ? `# ${title}\n\n` : ''}${turndown.turndown(article.content)}`;
}
