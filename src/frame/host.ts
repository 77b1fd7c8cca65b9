/**
 * The isolation frame's host script. It runs in an iframe sandboxed to an opaque origin
 * (`sandbox="allow-scripts"`, no `allow-same-origin`) under a CSP with `connect-src 'none'`,
 * and does three things for the page: compiles Pyodide's wasm once, starts REPL workers
 * from blob: URLs (inheriting the frame's origin and CSP: no network, no storage), and
 * terminates or interrupts them. It listens to the page, and to one port of each worker:
 * the SharedArrayBuffer bridge's, whose messages it parses as hostile input before relaying
 * them (the page parses them again).
 */
import { makeInterruptBuffer, parseSharedCall, raiseInterrupt, writeSharedReply, type SharedPayload } from '../protocol/worker';
import { isMessage, type FrameToPage, type HandedFiles, type PageToFrame, type RelayedCall, type RelayedReply, type WorkerInit } from '../protocol/frame';

/**
 * A worker's first script: wait for the init message, then import the REPL module the
 * page handed in. Classic, because a module worker from a blob: URL does not start in an
 * opaque-origin frame (Chromium 150–156, probed).
 */
const BOOTSTRAP = [
  'self.onmessage = (event) => {',
  '  self.onmessage = null;',
  '  const init = event.data;',
  '  import(URL.createObjectURL(init.code)).then((m) => m.start(init), (error) => setTimeout(() => { throw error; }));',
  '};',
].join('\n');

interface Running {
  worker: Worker;
  interruptBuffer: Uint8Array | undefined;
  answers: MessagePort;
}

const interruptible = typeof SharedArrayBuffer === 'function' && self.crossOriginIsolated;
const files = new Map<string, Promise<HandedFiles>>();
const workers = new Map<number, Running>();
const bootstrapURL = URL.createObjectURL(new Blob([BOOTSTRAP], { type: 'text/javascript' }));

function post(message: FrameToPage): void {
  // The page's origin is not known here (and this frame's is "null"); it only receives errors.
  window.parent.postMessage(message, '*');
}

/**
 * The SharedArrayBuffer bridge across the frame: the worker's calls go to the page as
 * RelayedCall (without the buffer, which the page cannot share), and the page's encoded
 * replies are written into the worker's buffer here. Returns the worker's end.
 */
function relaySharedCalls(answers: MessagePort): MessagePort {
  const channel = new MessageChannel();
  let current: { seq: number; buffer: SharedArrayBuffer } | undefined;
  let pending: { seq: number; payload: SharedPayload } | undefined;
  channel.port1.onmessage = ({ data }: MessageEvent<unknown>) => {
    const message = parseSharedCall(data);
    if (message.type === 'dropped') return;
    if (message.type === 'resume') {
      if (pending?.seq !== message.seq) return;
      const { payload } = pending;
      pending = undefined;
      current = { seq: message.seq, buffer: message.buffer };
      writeSharedReply(message.buffer, message.seq, payload);
      return;
    }
    current = { seq: message.seq, buffer: message.buffer };
    pending = undefined;
    answers.postMessage(
      (message.type === 'call' ? { type: 'call', request: message.request, seq: message.seq } : { type: 'refused', reason: message.reason, seq: message.seq }) satisfies RelayedCall,
    );
  };
  answers.onmessage = ({ data }: MessageEvent<RelayedReply>) => {
    if (data?.type !== 'reply' || !current || current.seq !== data.seq || !(data.payload instanceof Uint8Array)) return;
    if (writeSharedReply(current.buffer, data.seq, data.payload) === 'too-small') pending = { seq: data.seq, payload: data.payload };
  };
  return channel.port2;
}

async function start(id: number, key: string, code: Blob, port: MessagePort, answers: MessagePort): Promise<void> {
  const handed = files.get(key);
  if (!handed) throw new Error(`no Pyodide files under '${key}' were handed to the frame`);
  const ready = await handed;
  const worker = new Worker(bootstrapURL, { name: 'rlm-web-repl' });
  const interruptBuffer = interruptible ? makeInterruptBuffer() : undefined;
  const sharedPort = interruptible ? relaySharedCalls(answers) : undefined;
  if (!sharedPort) answers.close();
  workers.set(id, { worker, interruptBuffer, answers });
  worker.addEventListener('error', (event) => {
    event.preventDefault();
    post({ type: 'error', id, message: event.message || 'the REPL worker could not start' });
  });
  const init: WorkerInit & { code: Blob } = { code, port, files: ready, interruptBuffer, sharedPort };
  worker.postMessage(init, sharedPort ? [port, sharedPort] : [port]);
}

window.addEventListener('message', (event: MessageEvent<unknown>) => {
  if (event.source !== window.parent) return;
  const types: PageToFrame['type'][] = ['files', 'start', 'interrupt', 'terminate'];
  if (!isMessage<PageToFrame>(event.data, types)) return;
  const message = event.data;
  switch (message.type) {
    case 'files': {
      const { wasm, ...rest } = message.files;
      const compiled = wasm.arrayBuffer().then((bytes) => WebAssembly.compile(bytes));
      const handed = compiled.then((module): HandedFiles => ({ ...rest, wasm: module }));
      handed.catch(() => undefined);
      files.set(message.key, handed);
      break;
    }
    case 'start':
      start(message.id, message.key, message.code, message.port, message.answers).catch((error: unknown) => {
        post({ type: 'error', id: message.id, message: error instanceof Error ? error.message : String(error) });
      });
      break;
    case 'interrupt': {
      const buffer = workers.get(message.id)?.interruptBuffer;
      if (buffer && Number.isInteger(message.tenant)) raiseInterrupt(buffer, message.tenant);
      break;
    }
    case 'terminate':
      workers.get(message.id)?.worker.terminate();
      workers.get(message.id)?.answers.close();
      workers.delete(message.id);
      break;
  }
});

post({ type: 'ready', interruptible });
