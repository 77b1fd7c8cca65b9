// Reference worker for the benchmarks: a bare loadPyodide(), a bare Comlink round trip,
// and a bare copy of bytes into the wasm heap — what rlm-web is compared against.
import * as Comlink from '/node_modules/comlink/dist/esm/comlink.mjs';

let pyodide;

Comlink.expose({
  async boot(indexURL) {
    const started = performance.now();
    const { loadPyodide } = await import(`${indexURL}pyodide.mjs`);
    pyodide = await loadPyodide({ indexURL });
    return performance.now() - started;
  },
  /** Mean ms per round trip of `payload` to the page and back. */
  async echoLoop(host, payload, n) {
    await host.echo(payload);
    const started = performance.now();
    for (let i = 0; i < n; i++) await host.echo(payload);
    return (performance.now() - started) / n;
  },
  /**
   * Mean ms per round trip from Python, through pyodide.ffi.run_sync and Comlink, with no
   * rlm-web code at all: the floor of the JSPI bridge.
   */
  async pyEchoLoop(host, payload, n) {
    const loop = pyodide.runPython(`
import time
from pyodide.ffi import run_sync
def loop(call, p, n):
    run_sync(call(p))
    t = time.perf_counter()
    for _ in range(n):
        run_sync(call(p))
    return (time.perf_counter() - t) / n * 1000
loop`);
    return await loop.callPromising((p) => host.echo(p), payload, n);
  },
  /** Copies transferred bytes into the wasm heap; returns when done. */
  copyIn(bytes) {
    const m = pyodide._module;
    const ptr = m._malloc(bytes.byteLength);
    m.HEAPU8.set(bytes, ptr);
    m._free(ptr);
    return bytes.byteLength;
  },
});
