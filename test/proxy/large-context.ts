/// <reference types="node" />
/**
 * The 100 MB context check the cloud provider tests share: upload it through the proxy,
 * read it back in the sandbox, print the upload time and the sandbox Python's peak memory.
 */
import { expect } from 'vitest';
import type { Driver } from './drive.js';

const BYTES = 100 * 1000 * 1000;

export async function uploadLargeContext(url: string, token: string, drive: Driver, id: string, label: string): Promise<void> {
  const body = Buffer.alloc(BYTES, 'a');
  const started = performance.now();
  const response = await fetch(`${url}/v1/sandboxes/${id}/contexts/0?kind=text`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body });
  const seconds = (performance.now() - started) / 1000;
  expect(response.status).toBe(200);
  expect(await response.json()).toEqual({ type: 'str', length: BYTES });
  const check = await drive.cell(id, 'import resource\nprint(len(context), context[:3], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)');
  const [length, head, peakKiB] = String(check.data.stdout).trim().split(' ');
  expect([length, head]).toEqual([String(BYTES), 'aaa']);
  console.log(`[measure] ${label}: 100 MB context in ${seconds.toFixed(2)} s; sandbox Python peak RSS ${(Number(peakKiB) / 1024).toFixed(0)} MiB`);
}
