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

/** A `<pre><code>` element with highlighted code. */
export function codeElement(code: string, language = 'python'): HTMLElement {
  const pre = document.createElement('pre');
  const el = document.createElement('code');
  el.className = `hljs language-${language}`;
  el.innerHTML = highlight(code, language);
  pre.append(el);
  return pre;
}

/** Renders untrusted Markdown into `target` (replacing its content). */
export function renderMarkdown(target: HTMLElement, text: string): void {
  hookLinks();
  const html = marked.parse(text, { async: false });
  target.innerHTML = DOMPurify.sanitize(html, { FORBID_TAGS, FORBID_ATTR: ['style', 'srcset'] });
  for (const block of target.querySelectorAll<HTMLElement>('pre code')) {
    const language = /language-([\w+-]+)/.exec(block.className)?.[1] ?? 'plaintext';
    block.innerHTML = highlight(block.textContent ?? '', language);
    block.classList.add('hljs');
  }
}
