/// <reference lib="webworker" />
/**
 * Entry of the same-origin REPL worker (`isolation: 'none'`): serves the REPL on the
 * worker's own scope; Pyodide's files are fetched from indexURL.
 */
import { serve } from './worker';

serve(self);
