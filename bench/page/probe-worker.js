import * as Comlink from '/node_modules/comlink/dist/esm/comlink.mjs';
let pyodide;
Comlink.expose({
  async boot(indexURL) { const { loadPyodide } = await import(`${indexURL}pyodide.mjs`); pyodide = await loadPyodide({ indexURL, convertNullToNone: true }); },
  run(code) { return pyodide.runPython(code); },
  setFn(name, fn) { pyodide.globals.set(name, fn); },
});
