declare module '*.py?raw' {
  const source: string;
  export default source;
}

/** The isolation frame's host script and the isolated worker, bundled at build time (scripts/isolated-sources.ts). */
declare module 'virtual:rlm-web/isolated-sources' {
  /** The frame's document: its CSP plus the host script inline (the srcdoc, and dist/sandbox.html). */
  export const HOST_PAGE: string;
  /** The host script's CSP source expression ('sha256-…'). */
  export const HOST_SCRIPT_HASH: string;
  /** The isolated REPL worker, an ES module with its dependencies inlined. */
  export const WORKER_SOURCE: string;
}
