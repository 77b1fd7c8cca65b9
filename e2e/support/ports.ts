/**
 * Where the e2e and bench static servers listen. RLM_E2E_PORT moves both (the isolated one
 * is the next port), so that two checkouts can run their suites side by side.
 */
export const PLAIN_PORT = Number(process.env.RLM_E2E_PORT ?? 4173);
export const ISOLATED_PORT = PLAIN_PORT + 1;
export const PLAIN_ORIGIN = `http://127.0.0.1:${PLAIN_PORT}`;
export const ISOLATED_ORIGIN = `http://127.0.0.1:${ISOLATED_PORT}`;
