/**
 * The page side of the isolation frame: one hidden iframe per page (per sandboxURL),
 * sandboxed to an opaque origin, whose CSP allows no network. It hosts the REPL workers
 * of `isolation: 'sandbox'`. The page hands it Pyodide's files and each worker's code, and
 * talks to each worker over its own MessagePort (Comlink), never through the frame.
 */
import type * as Comlink from 'comlink';
import { HOST_PAGE, HOST_SCRIPT_HASH, WORKER_SOURCE } from 'virtual:rlm-web/isolated-sources';
import { ConfigurationError, ReplCrashedError } from '../core/errors';
import { isMessage, type FrameToPage, type PageToFrame } from '../protocol/frame';
import { pyodideFiles } from './pyodide-files';

/** How long the frame's host script may take to report ready. */
const FRAME_READY_MS = 20_000;

export interface IsolatedWorker {
  /** Comlink endpoint: a port straight to the worker. */
  endpoint: Comlink.Endpoint;
  /** Rejects when the worker fails to load or dies. */
  crashed: Promise<never>;
  /** Whether `interrupt()` raises KeyboardInterrupt (SharedArrayBuffer exists in the frame). */
  interruptible: boolean;
  /** Raises KeyboardInterrupt in `tenant`'s running cell. */
  interrupt(tenant: number): void;
  terminate(): void;
}

let workerCode: Blob | undefined;
let nextId = 1;

class IsolationFrame {
  readonly ready: Promise<{ interruptible: boolean }>;
  private readonly element: HTMLIFrameElement;
  private readonly sentFiles = new Map<string, Promise<void>>();
  private readonly failures = new Map<number, (message: string) => void>();

  constructor(private readonly sandboxURL: string | undefined) {
    const element = document.createElement('iframe');
    element.setAttribute('sandbox', 'allow-scripts');
    // Lets the frame be cross-origin isolated when the page is (SharedArrayBuffer: KeyboardInterrupt).
    element.allow = 'cross-origin-isolated';
    element.hidden = true;
    element.title = 'rlm-web Python sandbox';
    if (sandboxURL) element.src = sandboxURL;
    // The document carries its own CSP (no connections; see scripts/isolated-sources.ts).
    else element.srcdoc = HOST_PAGE;
    this.element = element;
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new ReplCrashedError(
            `The isolation frame did not start within ${FRAME_READY_MS / 1000} s. ${
              sandboxURL
                ? `Check that environmentOptions.sandboxURL (${sandboxURL}) serves rlm-web's sandbox.html, and that the page's frame-src allows it.`
                : `The page's Content-Security-Policy probably blocks it: it needs script-src '${HOST_SCRIPT_HASH}' blob: 'wasm-unsafe-eval' and worker-src blob: — or serve dist/sandbox.html and set environmentOptions.sandboxURL.`
            }`,
          ),
        );
      }, FRAME_READY_MS);
      window.addEventListener('message', (event: MessageEvent<unknown>) => {
        if (event.source !== element.contentWindow || !isMessage<FrameToPage>(event.data, ['ready', 'error'])) return;
        const message = event.data;
        if (message.type === 'ready') {
          clearTimeout(timer);
          resolve({ interruptible: message.interruptible === true });
        } else {
          this.failures.get(message.id)?.(String(message.message));
        }
      });
    });
    (document.body ?? document.documentElement).append(element);
  }

  private post(message: PageToFrame, transfer: Transferable[] = []): void {
    // The frame's origin is opaque ("null"): it cannot be named as a target.
    this.element.contentWindow?.postMessage(message, '*', transfer);
  }

  /** Starts a worker in the frame, with Pyodide's files from `indexURL` handed in; `answers` carries its shared-memory bridge. */
  async startWorker(indexURL: string, answers: MessagePort): Promise<IsolatedWorker> {
    const { interruptible } = await this.ready;
    let sent = this.sentFiles.get(indexURL);
    if (!sent) {
      sent = pyodideFiles(indexURL).then((files) => this.post({ type: 'files', key: indexURL, files }));
      this.sentFiles.set(indexURL, sent);
      sent.catch(() => this.sentFiles.delete(indexURL));
    }
    await sent;
    const id = nextId++;
    const channel = new MessageChannel();
    const crashed = new Promise<never>((_, reject) => {
      this.failures.set(id, (message) => reject(new ReplCrashedError(`The REPL worker failed: ${message}.`)));
    });
    crashed.catch(() => undefined);
    workerCode ??= new Blob([WORKER_SOURCE], { type: 'text/javascript' });
    this.post({ type: 'start', id, key: indexURL, code: workerCode, port: channel.port2, answers }, [channel.port2, answers]);
    return {
      endpoint: channel.port1,
      crashed,
      interruptible,
      interrupt: (tenant) => this.post({ type: 'interrupt', id, tenant }),
      terminate: () => {
        this.failures.delete(id);
        this.post({ type: 'terminate', id });
        channel.port1.close();
      },
    };
  }
}

const frames = new Map<string, IsolationFrame>();

/** The page's isolation frame for `sandboxURL` (default: an srcdoc frame), created on first use. */
export function isolationFrame(sandboxURL: string | undefined): IsolationFrame {
  if (typeof document === 'undefined') {
    throw new ConfigurationError("isolation: 'sandbox' needs a page to host its frame; in a worker or outside a browser use isolation: 'none'.");
  }
  const key = sandboxURL ?? '';
  let frame = frames.get(key);
  if (!frame) {
    frame = new IsolationFrame(sandboxURL);
    frames.set(key, frame);
    frame.ready.catch(() => frames.get(key) === frame && frames.delete(key));
  }
  return frame;
}
