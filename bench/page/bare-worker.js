// Reference worker for the benchmarks: a bare loadPyodide(), a bare Comlink round trip,
// and a bare copy of bytes into the wasm heap — what rlm-web is compared against.
import * as Comlink from '/node_modules/comlink/dist/esm/comlink.mjs';
import { floorAPI } from './floor-api.js';

const state = { pyodide: undefined };

Comlink.expose({
  async boot(indexURL) {
    const started = performance.now();
    const { loadPyodide } = await import(`${indexURL}pyodide.mjs`);
    state.pyodide = await loadPyodide({ indexURL });
    return performance.now() - started;
  },
  ...floorAPI(state),
  /** Copies transferred bytes into the wasm heap; returns when done. */
  copyIn(bytes) {
    const m = state.pyodide._module;
    const ptr = m._malloc(bytes.byteLength);
    m.HEAPU8.set(bytes, ptr);
    m._free(ptr);
    return bytes.byteLength;
  },
});
