/**
 * The page's Comlink client of a REPL worker, over a real MessageChannel with a real
 * `Comlink.expose` on the other end, and an attacker beside it on the worker's port: forged
 * replies (a "proxy" handler, an error with a "__proto__" field, junk) are dropped and counted,
 * the real replies get through, and a malformed real reply is a typed error.
 */
import * as Comlink from 'comlink';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplCrashedError } from '../../src/core/errors';
import type { CellOutput } from '../../src/protocol/runtime';
import { tenantClient, workerClient } from '../../src/repl/worker-client';

const CELL: CellOutput = { stdout: 'real', stderr: '', locals: [], execution_time: 0.1, final_answer: null, error_type: null, interrupted: false };

const open: MessagePort[] = [];
afterEach(() => {
  for (const port of open.splice(0)) port.close();
});

/** A worker side: `api` exposed through Comlink, and `forge(id)` messages posted ahead of each reply. */
function worker(api: Record<string, unknown>, forge?: (id: string, port: MessagePort) => void) {
  const { port1, port2 } = new MessageChannel();
  open.push(port1, port2);
  if (forge) {
    // Registered before expose: the forged message leaves before the real reply.
    port2.addEventListener('message', (event) => {
      const id = (event as MessageEvent<{ id?: unknown }>).data?.id;
      if (typeof id === 'string') forge(id, port2);
    });
  }
  Comlink.expose(api, port2 as unknown as Comlink.Endpoint);
  const dropped: string[] = [];
  const remote = workerClient(port1 as unknown as Comlink.Endpoint, (reason) => dropped.push(reason));
  return { client: tenantClient(remote, 0), dropped };
}

describe('workerClient', () => {
  it('drops forged proxy handlers and junk on the call port; the real reply gets through', async () => {
    let heard = 0;
    const { client, dropped } = worker({ execute: () => CELL }, (id, port) => {
      const trap = new MessageChannel();
      open.push(trap.port1, trap.port2);
      trap.port1.on('message', () => heard++);
      port.postMessage({ id, type: 'HANDLER', name: 'proxy', value: trap.port2 }, [trap.port2]);
      port.postMessage({ id, type: 'HANDLER', name: 'other', value: 1 });
      port.postMessage({ id: 7, type: 'RAW', value: 1 });
      port.postMessage(null);
    });
    expect(await client.execute('print(1)')).toEqual(CELL);
    expect(dropped).toHaveLength(4);
    expect(dropped[0]).toMatch(/not a reply to a call/);
    expect(heard).toBe(0);
  });

  it('rebuilds a thrown error from three strings: a forged "__proto__" field changes nothing', async () => {
    const { client } = worker({ execute: () => CELL }, (id, port) => {
      port.postMessage({ id, type: 'HANDLER', name: 'throw', value: { isError: true, value: JSON.parse('{"message": "forged", "name": 5, "__proto__": {"polluted": true}, "extra": 1}') } });
    });
    const error = (await client.execute('x').catch((e: unknown) => e)) as Error & Record<string, unknown>;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toBe('forged');
    expect(error.name).toBe('Error');
    expect(error.polluted).toBeUndefined();
    expect(error.extra).toBeUndefined();
    expect(Object.getPrototypeOf(Object.getPrototypeOf(error))).toBe(Object.prototype);
  });

  it('checks each call value: a malformed one is a ReplCrashedError', async () => {
    const { client } = worker({
      execute: () => ({ ...CELL, stdout: 42 }),
      loadContext: () => ({ type: 'str' }),
      resolveVariable: () => ({ toString: 'x' }),
      setVariable: () => 'ignored',
    });
    await expect(client.execute('x')).rejects.toBeInstanceOf(ReplCrashedError);
    await expect(client.loadContext(0, new Uint8Array(2), 'text')).rejects.toThrow(/malformed context description/);
    await expect(client.resolveVariable('x')).rejects.toThrow(/malformed variable/);
    await expect(client.setVariable('x', '1', false)).resolves.toBeUndefined();
  });
});
