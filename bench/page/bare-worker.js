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
  /** Copies transferred bytes into the wasm heap; returns when done. */
  copyIn(bytes) {
    const m = pyodide._module;
    const ptr = m._malloc(bytes.byteLength);
    m.HEAPU8.set(bytes, ptr);
    m._free(ptr);
    return bytes.byteLength;
  },
});
