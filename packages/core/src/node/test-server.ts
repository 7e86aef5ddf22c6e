// Test helper: a real node:http server on 127.0.0.1 for the edge's tests, and a raw client that
// writes exactly the bytes given (chunked uploads, aborts, two header lines) and reads the reply.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo, connect } from 'node:net';

export interface TestServer {
  port: number;
  close(): Promise<void>;
}

/** A server that hands every request to `handler`; errors thrown there become a 500. */
export async function testServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>,
): Promise<TestServer> {
  const server = createServer((req, res) => {
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500).end(String(error));
        else res.destroy();
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Write `request` (a whole HTTP/1.1 message or its start; several parts are written 20 ms apart)
 * to the server; resolve with everything the server sent until it closed the connection, or until
 * `waitMs` passed. `abortAfterMs` destroys the connection instead (an upload cut off).
 */
export function rawExchange(
  port: number,
  request: string | readonly string[],
  options: { abortAfterMs?: number; waitMs?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const received: Buffer[] = [];
    const finish = (): void => resolve(Buffer.concat(received).toString('latin1'));
    socket.on('data', (chunk) => received.push(chunk));
    socket.on('close', finish);
    socket.on('error', reject);
    const parts = typeof request === 'string' ? [request] : request;
    parts.forEach((part, i) => {
      setTimeout(() => socket.write(part), i * 20);
    });
    if (options.abortAfterMs !== undefined) setTimeout(() => socket.destroy(), options.abortAfterMs);
    else setTimeout(() => socket.end(), parts.length * 20 + (options.waitMs ?? 300));
  });
}
