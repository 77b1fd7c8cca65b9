/**
 * The content script, injected on demand into the tab the user asked about
 * (`chrome.scripting.executeScript`, with activeTab or a granted host permission). It answers
 * the panel's port: describes the page, or sends one source's text in chunks the panel pulls.
 * It never receives settings or keys, and it keeps nothing once the port closes.
 */
import { describePage, extract, titleOf } from './extract';
import { CHUNK_CHARS, parseRequest, PORT_NAME, type PageReply } from './protocol';

const INSTALLED = Symbol.for('rlm-web:content-script');

function serve(port: chrome.runtime.Port): void {
  let text: string | undefined;
  let offset = 0;
  const send = (reply: PageReply) => port.postMessage(reply);
  port.onMessage.addListener((message: unknown) => {
    const request = parseRequest(message);
    if (!request) return send({ type: 'error', message: 'The page reader got a request it does not know.' });
    try {
      if (request.type === 'describe') return send({ type: 'described', ...describePage(document) });
      if (request.type === 'extract') {
        text = extract(document, request.source);
        offset = 0;
        return send({ type: 'start', chars: text.length, title: titleOf(document) });
      }
      if (text === undefined) return send({ type: 'error', message: 'Nothing is being read: ask for a source first.' });
      if (offset >= text.length) {
        text = undefined;
        return send({ type: 'end' });
      }
      // A chunk must not end between the two halves of a surrogate pair.
      let end = Math.min(offset + CHUNK_CHARS, text.length);
      const last = text.charCodeAt(end - 1);
      if (end < text.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
      const chunk = text.slice(offset, end);
      offset = end;
      send({ type: 'chunk', text: chunk });
    } catch (error) {
      text = undefined;
      send({ type: 'error', message: error instanceof Error ? error.message.slice(0, 1000) : 'The page could not be read.' });
    }
  });
  port.onDisconnect.addListener(() => {
    text = undefined;
  });
}

const world = globalThis as unknown as Record<symbol, boolean>;
if (!world[INSTALLED]) {
  world[INSTALLED] = true;
  chrome.runtime.onConnect.addListener((port) => {
    if (port.name === PORT_NAME && port.sender?.id === chrome.runtime.id) serve(port);
  });
}
