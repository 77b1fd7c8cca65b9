/// <reference types="node" />
/**
 * The host's view of a local sandbox's processes. Inside bubblewrap a cell sees only its own
 * PID namespace (its pids are not the host's), so a test asks the cell for that namespace
 * (`os.readlink('/proc/self/ns/pid')`, the same 'pid:[inode]' on both sides) and looks it up
 * in the host's /proc.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Python that prints the cell's PID namespace, e.g. 'pid:[4026532181]'. */
export const PRINT_NAMESPACE = "import os\nprint(os.readlink('/proc/self/ns/pid'))";

/**
 * Host pids of the processes in PID namespace `ns` that still run. Zombies are left out: when
 * a sandbox's Python exits on its own, bwrap exits without reaping the namespace's init, which
 * stays a zombie (no code, no memory; the kernel had emptied the namespace before it died)
 * until the host's pid 1 reaps it, and some containers' pid 1 does that slowly.
 */
export function processesIn(ns: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/pid`) !== ns) continue;
      if (/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${entry}/stat`, 'utf8'))) continue;
      out.push(Number(entry));
    } catch {
      // gone meanwhile, or a kernel thread
    }
  }
  return out;
}

/** The host pid of the process that is `nsPid` inside namespace `ns`. */
export function hostPid(ns: string, nsPid: number): number | undefined {
  for (const pid of processesIn(ns)) {
    try {
      const ids = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.trim().split(/\s+/).map(Number) ?? [];
      if (ids[ids.length - 1] === nsPid) return pid;
    } catch {
      // exited
    }
  }
  return undefined;
}
