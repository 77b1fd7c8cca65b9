declare module '*.py?raw' {
  const source: string;
  export default source;
}

/** The isolation frame's host script and the isolated worker, bundled at build time (scripts/isolated-sources.ts). */
declare module 'virtual:rlm-web/isolated-sources' {
  /** The frame host, a classic script. */
  export const HOST_SOURCE: string;
  /** Its CSP source expression ('sha256-…'), for the srcdoc frame's policy. */
  export const HOST_SCRIPT_HASH: string;
  /** The isolated REPL worker, an ES module with its dependencies inlined. */
  export const WORKER_SOURCE: string;
}
