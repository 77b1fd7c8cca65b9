// The floors the bridge is measured against, served by a bare worker (bare-worker.js, a
// same-origin worker) and by one inside rlm-web's isolation frame (frame-floor.js). No
// imports: frame-floor.js concatenates this file into one module for the opaque frame.

/** The floor API over a booted Pyodide (`state.pyodide`). */
export function floorAPI(state) {
  return {
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
      const loop = state.pyodide.runPython(`
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
  };
}
