/**
 * How cloud providers interrupt a cell: SIGINT sent by a one-line Python program run beside
 * the runtime. Every sandbox that runs our runtime has Python, while slim images have no
 * `kill` binary (Debian's procps is left out of them) and exec'd commands get no shell.
 */

const SEND_SIGINT = 'import os,signal,sys;os.kill(int(sys.argv[1]),signal.SIGINT)';

/** The argv that sends SIGINT to `pid`, run with `python` (the runtime's own interpreter). */
export function interruptArgv(python: string, pid: number): string[] {
  if (!Number.isSafeInteger(pid) || pid <= 1) throw new RangeError(`not a process id: ${pid}`);
  return [python, '-c', SEND_SIGINT, String(pid)];
}
