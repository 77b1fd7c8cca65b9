/// <reference types="node" />
import { request } from 'node:http';
/**
 * Drives a proxy over HTTP the way RemoteRepl does: create a sandbox, upload a context,
 * run a cell reading its event stream and answering sub-calls, delete.
 */
export interface Driver {
  create(provider: string): Promise<{ id: string; python: string }>;
  upload(id: string, index: number, text: string): Promise<unknown>;
  /** Runs a cell; `answer` gets each sub-call request. Returns the result (or the error event). */
  cell(id: string, code: string, answer?: (request: { op: string; prompts: string[] }) => unknown): Promise<{ event: string; data: Record<string, unknown>; requests: number }>;
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
      let buffer = '';
      let requests = 0;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error('the cell stream ended without a result');
        buffer += value;
        let i: number;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (!event || !data) continue;
          const payload = JSON.parse(data) as Record<string, unknown>;
          if (event === 'request') {
            requests++;
            const reply = answer ? answer(payload.request as { op: string; prompts: string[] }) : { error: 'no answers' };
            await fetch(`${url}/v1/sandboxes/${id}/answers`, { method: 'POST', headers, body: JSON.stringify({ seq: payload.seq, reply }) });
          } else {
            await reader.cancel();
            return { event, data: payload, requests };
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
