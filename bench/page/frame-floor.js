// The bridge's floors measured inside rlm-web's isolation frame (an opaque-origin iframe in
// its own process): a bare worker started by the frame exactly as rlm-web's REPL worker is
// (same host page, same handed-in Pyodide files), but running no rlm-web code — Pyodide,
// Comlink and floor-api.js only. What rlm-web pays for the frame's process hop, it pays here too.
import * as Comlink from '/node_modules/comlink/dist/esm/comlink.mjs';

// Runs in the frame's worker, after Comlink's and floor-api.js's source (one module: the
// opaque frame can import blob: URLs only). Boots Pyodide from the handed files the way
// rlm-web's isolated worker does, then serves the floors on the port to the page.
const START = `
const HANDED = 'https://bench.invalid/pyodide/';
async function importBlob(blob) {
  const url = URL.createObjectURL(blob);
  try { return await import(url); } finally { URL.revokeObjectURL(url); }
}
export function start(init) {
  const state = { pyodide: undefined };
  const booted = boot(init.files, state);
  booted.catch(() => undefined);
  expose({ ...floorAPI(state), ...sabFloors(state, init.sharedPort), ready: () => booted.then(() => true) }, init.port);
}

// The SharedArrayBuffer bridge as rlm-web builds it in the frame, with no rlm-web code in the
// worker: post the call on the frame's relay port, block in Atomics.wait until the frame has
// written the page's reply (status, length, seq, padding, then the bytes), copy it out.
function sabFloors(state, port) {
  const buffer = port && new SharedArrayBuffer(1 << 20);
  const header = buffer && new Int32Array(buffer, 0, 4);
  let seq = 0;
  const call = (payload) => {
    seq++;
    Atomics.store(header, 0, 0);
    Atomics.store(header, 2, seq);
    port.postMessage({ type: 'call', request: { op: 'llm_query', prompts: [payload], model: null }, buffer, seq });
    Atomics.wait(header, 0, 0);
    return new Uint8Array(buffer, 16, Atomics.load(header, 1)).slice();
  };
  const decoder = new TextDecoder();
  return {
    /** Mean ms per round trip of a JS string through the relay (decoded back to a string). */
    sabEchoLoop(payload, n) {
      decoder.decode(call(payload));
      const started = performance.now();
      for (let i = 0; i < n; i++) decoder.decode(call(payload));
      return (performance.now() - started) / n;
    },
    /** The same from Python: the reply's bytes decoded by Python, as rlm-web does. */
    sabPyEchoLoop(payload, n) {
      const loop = state.pyodide.runPython([
        'import time',
        'def loop(call, p, n):',
        '    call(p).to_bytes().decode()',
        '    t = time.perf_counter()',
        '    for _ in range(n):',
        '        call(p).to_bytes().decode()',
        '    return (time.perf_counter() - t) / n * 1000',
        'loop',
      ].join('\\n'));
      return loop(call, payload, n);
    },
  };
}
async function boot(files, state) {
  const { loadPyodide } = await importBlob(files.loader);
  const asm = await importBlob(files.asm);
  const realFetch = self.fetch;
  const realInstantiate = WebAssembly.instantiateStreaming;
  self.fetch = async (input) => {
    const url = String(input instanceof Request ? input.url : input);
    if (url === HANDED + 'python_stdlib.zip') return new Response(files.stdlib);
    if (url === HANDED + 'pyodide.asm.wasm') return new Response(null, { headers: { 'content-type': 'application/wasm' } });
    throw new TypeError(url + ' was not handed in');
  };
  WebAssembly.instantiateStreaming = async (_source, imports) => ({ module: files.wasm, instance: await WebAssembly.instantiate(files.wasm, imports) });
  try {
    state.pyodide = await loadPyodide({ indexURL: HANDED, packageBaseUrl: HANDED, lockFileContents: files.lock, createPyodideModule: asm.default });
  } finally {
    self.fetch = realFetch;
    WebAssembly.instantiateStreaming = realInstantiate;
  }
}
`;

async function text(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.text();
}

/**
 * Starts the bare worker in a frame of rlm-web's sandbox.html; resolves with its Comlink
 * remote once Pyodide is up, and a function that removes the frame. The SharedArrayBuffer
 * floors (sabEchoLoop, sabPyEchoLoop) exist when the page is cross-origin isolated.
 */
export async function startFrameFloor(indexURL) {
  const frame = document.createElement('iframe');
  frame.setAttribute('sandbox', 'allow-scripts');
  frame.allow = 'cross-origin-isolated';
  frame.hidden = true;
  frame.src = '/dist/sandbox.html';
  const ready = new Promise((resolve) => {
    window.addEventListener('message', function onReady(event) {
      if (event.source === frame.contentWindow && event.data?.type === 'ready') {
        window.removeEventListener('message', onReady);
        resolve();
      }
    });
  });
  document.body.append(frame);
  await ready;
  const blob = async (name) => (await fetch(new URL(name, indexURL))).blob();
  const files = { loader: await blob('pyodide.mjs'), asm: await blob('pyodide.asm.mjs'), wasm: await blob('pyodide.asm.wasm'), stdlib: await blob('python_stdlib.zip'), lock: await text(new URL('pyodide-lock.json', indexURL)) };
  const comlink = (await text('/node_modules/comlink/dist/esm/comlink.mjs')).replace(/^\/\/# sourceMappingURL=.*$/m, '');
  const api = await text('/bench/page/floor-api.js');
  const code = new Blob([comlink, '\n', api, '\n', START], { type: 'text/javascript' });
  frame.contentWindow.postMessage({ type: 'files', key: 'floor', files }, '*');
  const channel = new MessageChannel();
  // The page's side of the relay: answer each call with the prompt's UTF-8 bytes.
  const answers = new MessageChannel();
  const encoder = new TextEncoder();
  answers.port1.onmessage = ({ data }) => {
    const payload = encoder.encode(data.request.prompts[0]);
    answers.port1.postMessage({ type: 'reply', seq: data.seq, payload }, [payload.buffer]);
  };
  frame.contentWindow.postMessage({ type: 'start', id: 1, key: 'floor', code, port: channel.port2, answers: answers.port2 }, '*', [channel.port2, answers.port2]);
  const remote = Comlink.wrap(channel.port1);
  await remote.ready();
  return { remote, close: () => frame.remove() };
}
