/**
 * Model output is untrusted: Markdown is rendered with raw HTML shown as text (not parsed),
 * then sanitized by DOMPurify as a second line of defence, with images and other
 * fetching elements removed (a model could leak the context through an image URL).
 */
import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import plaintext from 'highlight.js/lib/languages/plaintext';
import python from 'highlight.js/lib/languages/python';
import { Marked } from 'marked';

hljs.registerLanguage('python', python);
hljs.registerLanguage('javascript', javascript);
hljs.registerLanguage('json', json);
hljs.registerLanguage('bash', bash);
hljs.registerLanguage('plaintext', plaintext);
hljs.registerAliases(['repl', 'py'], { languageName: 'python' });
hljs.registerAliases(['js', 'ts', 'typescript'], { languageName: 'javascript' });
hljs.registerAliases(['sh', 'shell', 'console'], { languageName: 'bash' });
hljs.registerAliases(['text', 'txt'], { languageName: 'plaintext' });

function escapeHTML(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    // Raw HTML in model output is shown as the text it is.
    html({ text }) {
      return escapeHTML(text);
    },
    // Images would fetch a URL of the model's choosing: show them as links instead.
    image({ href, text }) {
      return `<a href="${escapeHTML(href)}">${escapeHTML(text || href)}</a>`;
    },
  },
});

const FORBID_TAGS = ['img', 'picture', 'source', 'video', 'audio', 'iframe', 'object', 'embed', 'form', 'input', 'button', 'style', 'link', 'meta', 'svg', 'math'];

let hooked = false;
function hookLinks(): void {
  if (hooked) return;
  hooked = true;
  DOMPurify.addHook('afterSanitizeAttributes', (node) => {
    if (node.tagName === 'A') {
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer nofollow');
    }
  });
}

/** Highlights `code` as HTML (escaped by highlight.js). */
export function highlight(code: string, language = 'python'): string {
  const lang = hljs.getLanguage(language) ? language : 'plaintext';
  return hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
}

/**
 * Longest model text rendered as Markdown (or highlighted as code). Parsing, sanitizing and
 * highlighting cost grows faster than the text: measured in headless Chromium on the 2-core
 * test machine (fastest of 5 renders, layout included), dense Markdown (GFM tables, lists of
 * links, fenced code) took 45–80 ms at 15 000–20 000 characters and 0.3–1.2 s at 80 000, prose
 * under 20 ms at 20 000; 5 MB froze the page for 11 s. Longer text is shown as plain text:
 * 20 000 characters of it lay out in under 5 ms.
 */
export const MARKDOWN_MAX_CHARS = 20_000;

/** Most characters of plain text put on screen at once (a text node of 200 000 lays out in a few ms). */
export const PLAIN_MAX_CHARS = 200_000;

/** The start of `text`, at most `max` characters, never ending on half a surrogate pair. */
function head(text: string, max: number): string {
  if (text.length <= max) return text;
  return text.slice(0, /[\uD800-\uDBFF]/.test(text.charAt(max - 1)) ? max - 1 : max);
}

/** Characters of the end of a long text kept on screen with its start: where a cut answer says it was cut. */
const PLAIN_TAIL_CHARS = 2_000;

/**
 * Plain text for text too long to render: a note, then the text in a `<pre>` (a text node,
 * never markup); past PLAIN_MAX_CHARS, its start and its end with the count left out between.
 */
function plainText(text: string, what: string): HTMLElement[] {
  const count = (n: number) => n.toLocaleString('en-US');
  const note = document.createElement('p');
  note.className = 'hint plain-note';
  note.textContent = `This ${what} is ${count(text.length)} characters long, so it is shown as plain text, not Markdown${text.length > PLAIN_MAX_CHARS ? `, with ${count(text.length - PLAIN_MAX_CHARS)} characters of its middle left out` : ''}.`;
  const pre = document.createElement('pre');
  pre.className = 'plain-text';
  if (text.length <= PLAIN_MAX_CHARS) {
    pre.textContent = text;
  } else {
    const start = head(text, PLAIN_MAX_CHARS - PLAIN_TAIL_CHARS);
    const end = text.slice(start.length + (text.length - PLAIN_MAX_CHARS));
    pre.textContent = `${start}\n\n… ${count(text.length - start.length - end.length)} characters not shown …\n\n${end}`;
  }
  return [note, pre];
}

/** A `<pre><code>` element with highlighted code; code over MARKDOWN_MAX_CHARS is plain, and shown up to PLAIN_MAX_CHARS. */
export function codeElement(code: string, language = 'python'): HTMLElement {
  const pre = document.createElement('pre');
  const el = document.createElement('code');
  el.className = `hljs language-${language}`;
  if (code.length <= MARKDOWN_MAX_CHARS) el.innerHTML = highlight(code, language);
  else el.textContent = code.length > PLAIN_MAX_CHARS ? `${head(code, PLAIN_MAX_CHARS)}\n… ${(code.length - PLAIN_MAX_CHARS).toLocaleString('en-US')} more characters` : code;
  pre.append(el);
  return pre;
}

/**
 * Renders untrusted model text into `target` (replacing its content): as sanitized Markdown
 * up to MARKDOWN_MAX_CHARS, else as plain text with a note saying so (`what` names the text
 * in it: 'answer', 'reply'), so that no text can block the page. Returns which way it went.
 */
export function renderMarkdown(target: HTMLElement, text: string, what = 'text'): 'markdown' | 'plain' {
  if (text.length > MARKDOWN_MAX_CHARS) {
    target.replaceChildren(...plainText(text, what));
    return 'plain';
  }
  hookLinks();
  const html = marked.parse(text, { async: false });
  target.innerHTML = DOMPurify.sanitize(html, { FORBID_TAGS, FORBID_ATTR: ['style', 'srcset'] });
  for (const block of target.querySelectorAll<HTMLElement>('pre code')) {
    const language = /language-([\w+-]+)/.exec(block.className)?.[1] ?? 'plaintext';
    block.innerHTML = highlight(block.textContent ?? '', language);
    block.classList.add('hljs');
  }
  return 'markdown';
}
