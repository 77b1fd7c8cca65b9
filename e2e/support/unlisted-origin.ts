/**
 * A server on 127.0.0.2: this machine, but an origin no CSP of ours lists (they list
 * localhost and 127.0.0.1). It counts every TCP connection, so a test can tell a request the
 * CSP stopped (none) from one that went out and failed later (CORS: one).
 */
import { createServer } from 'node:http';

export interface UnlistedOrigin {
  /** `http://127.0.0.2:<port>/v1`. */
  url: string;
  /** One entry per TCP connection accepted. */
  connections: string[];
  close(): Promise<void>;
}

export async function startUnlistedOrigin(): Promise<UnlistedOrigin> {
  const server = createServer((_req, res) => void res.writeHead(200, { 'access-control-allow-origin': '*' }).end('reached'));
  const connections: string[] = [];
  server.on('connection', () => connections.push('connection'));
  await new Promise<void>((ok) => server.listen(0, '127.0.0.2', ok));
  return {
    url: `http://127.0.0.2:${(server.address() as { port: number }).port}/v1`,
    connections,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
