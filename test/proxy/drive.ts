/// <reference types="node" />
import { request } from 'node:http';
/**
 * Drives a proxy over HTTP the way RemoteRepl does: create a sandbox, upload a context,
 * run a cell reading its event stream (with the protocol's one parser) and answering
 * sub-calls, delete.
 */
import { CellEventParser, LIVE_OUTPUT_EVENT_COST, sandboxPath } from '../../src/protocol/proxy.js';

export interface Driver {
  create(provider: string): Promise<{ id: string; python: string }>;
  upload(id: string, index: number, text: string): Promise<unknown>;
  /** Runs a cell; `answer` gets each sub-call request. Returns the result (or the error event). */
  cell(id: string, code: string, answer?: (request: { op: string; prompts: string[] }) => unknown): Promise<{ event: string; data: Record<string, unknown>; requests: number; live: number }>;
  post(id: string, action: string, body?: unknown): Promise<Response>;
  remove(id: string): Promise<Response>;
}

export function driver(url: string, token: string): Driver {
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  return {
    async create(provider) {
      const response = await fetch(`${url}/v1/sandboxes`, { method: 'POST', headers, body: JSON.stringify({ provider }) });
      if (response.status !== 201) throw new Error(`create: ${response.status} ${await response.text()}`);
      return (await response.json()) as { id: string; python: string };
    },
    async upload(id, index, text) {
      const response = await fetch(`${url}/v1/sandboxes/${id}/contexts/${index}?kind=text`, { method: 'PUT', headers: { authorization: headers.authorization }, body: text });
      return response.json();
    },
    async cell(id, code, answer) {
      const response = await fetch(`${url}/v1/sandboxes/${id}/cells`, { method: 'POST', headers, body: JSON.stringify({ code }) });
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      const parser = new CellEventParser();
      let requests = 0;
      let live = 0;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error('the cell stream ended without a result');
        for (const event of parser.push(value)) {
          if (event.type === 'output') live += event.data.text.length + LIVE_OUTPUT_EVENT_COST;
          else if (event.type === 'request') {
            requests++;
            const reply = answer ? answer(event.data.request as { op: string; prompts: string[] }) : { error: 'no answers' };
            await fetch(`${url}${sandboxPath(id, 'answers')}`, { method: 'POST', headers, body: JSON.stringify({ seq: event.data.seq, reply }) });
          } else {
            await reader.cancel();
            return { event: event.type, data: event.data as unknown as Record<string, unknown>, requests, live };
          }
        }
      }
    },
    post(id, action, body = {}) {
      return fetch(`${url}/v1/sandboxes/${id}/${action}`, { method: 'POST', headers, body: JSON.stringify(body) });
    },
    remove(id) {
      return fetch(`${url}/v1/sandboxes/${id}`, { method: 'DELETE', headers });
    },
  };
}

/**
 * A PUT with chunked transfer encoding (no content-length), one chunk written after another:
 * only the proxy's streaming count can stop it. node:http rather than fetch, which reports
 * a reset instead of the 413 when the server answers before the body is all sent.
 */
export function chunkedPut(url: string, token: string, chunks: Uint8Array[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'transfer-encoding': 'chunked' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    const write = (i: number) => {
      if (i === chunks.length) return req.end();
      req.write(chunks[i], () => write(i + 1));
    };
    write(0);
  });
}
