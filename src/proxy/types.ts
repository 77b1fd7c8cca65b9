/**
 * The provider interface: a provider starts one long-lived process running our Python
 * runtime (in a cloud sandbox or on this host), writes to its stdin, reports its stdout
 * and stderr as they come, and kills it (deleting the sandbox). Nothing else.
 */

/** Where a start is: building or pulling the image, waiting for the service to place the sandbox, starting Python. */
export type StartPhase = 'image' | 'scheduling' | 'process';

export interface StartOptions {
  /** The command to run: python3 with the bootstrap that receives the runtime on stdin. */
  argv: string[];
  /** Stdout text as it arrives (the proxy splits it into lines). */
  onStdout(chunk: string): void;
  /** Stderr text as it arrives (kept as a short tail for crash reports and logs). */
  onStderr(chunk: string): void;
  /** The process ended (exited, was killed, or its sandbox went away). Called at most once. */
  onExit(code: number | null, detail: string): void;
  /** The sandbox's maximum lifetime; cloud providers pass it on as their own timeout. */
  lifetimeMs: number;
  /** Reports each phase as the start enters it, so that a start that takes too long can say where it is. */
  onPhase?(phase: StartPhase): void;
  /** Aborted when the proxy gives up on the start: the provider deletes whatever it created. */
  signal?: AbortSignal;
}

export interface SandboxProcess {
  /** The provider's id of the sandbox or process, for logs. */
  readonly providerId: string;
  /** Writes text to the process's stdin. The proxy never overlaps two writes. */
  write(text: string): Promise<void>;
  /** The largest write the service takes, in UTF-8 bytes; the proxy splits longer text. Default: no limit. */
  readonly maxWriteBytes?: number;
  /**
   * Streams `body` into the sandbox as the file `path` (or as numbered parts of it), through the
   * service's file API; resolves with the files written, in order. Absent: contexts go through stdin.
   */
  writeFile?(path: string, body: AsyncIterable<Uint8Array>): Promise<string[]>;
  /** Sends SIGINT to the process (pid as the process itself reported it). False if unsupported. */
  interrupt(pid: number): Promise<boolean>;
  /** Kills the process and deletes its sandbox. Idempotent; never rejects. */
  kill(): Promise<void>;
}

export interface SandboxProvider {
  /** 'local' | 'e2b' | 'modal' | your own. */
  readonly name: string;
  /**
   * True when the provider's processes are not isolated from the proxy's host (the local
   * provider without bubblewrap): the proxy then refuses to listen on a non-loopback address.
   * Default: false.
   */
  readonly unsafe?: boolean;
  start(options: StartOptions): Promise<SandboxProcess>;
}
