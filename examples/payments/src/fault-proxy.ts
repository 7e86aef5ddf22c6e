// The retry storm's network: an HTTP proxy on loopback that, at random, resets a connection before
// forwarding, delays a request, or forwards it and then kills the client's connection once the
// upstream has answered. The last one is the case idempotency exists for: the server did the work,
// the client never heard, and its retry must not do it again.
import {
  Agent,
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** Probabilities per request; what is left over is forwarded untouched. */
export interface FaultRates {
  /** Reset the client connection (TCP RST) as soon as the request arrives; nothing is forwarded. */
  reset: number;
  /** Forward, wait for the whole upstream response, then destroy the client connection instead of answering. */
  dropAfterResponse: number;
  /** Wait a random time in `delayMs`, then forward normally. */
  delay: number;
}

export interface FaultProxyOptions {
  /** The server to forward to; must be on loopback. */
  upstream: string;
  rates: FaultRates;
  /** @default { min: 20, max: 300 } */
  delayMs?: { min: number; max: number };
  /** Decides the faults; inject a seeded one for a reproducible sequence. @default Math.random */
  random?: () => number;
}

export interface FaultProxyStats {
  requests: number;
  reset: number;
  dropAfterResponse: number;
  delayed: number;
  /** Answered to the client (delayed ones included). */
  answered: number;
  /** The upstream could not be reached: answered 502. */
  upstreamErrors: number;
}

export interface FaultProxy {
  url: string;
  readonly stats: Readonly<FaultProxyStats>;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
/** RFC 9110 §7.6.1: meaningful for one connection only; the proxy sets its own framing. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'content-length',
]);

function endToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

async function readAll(stream: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Start the proxy on 127.0.0.1 (a random port).
 * @example
 * const proxy = await startFaultProxy({ upstream: demo.url, rates: { reset: 0.1, dropAfterResponse: 0.15, delay: 0.1 } });
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(options.upstream);
  if (upstream.protocol !== 'http:' || !LOOPBACK.has(upstream.hostname)) {
    throw new Error(`the fault proxy only forwards to http on loopback, not ${upstream.origin}`);
  }
  const { reset, dropAfterResponse, delay } = options.rates;
  if ([reset, dropAfterResponse, delay].some((p) => !(p >= 0)) || reset + dropAfterResponse + delay > 1) {
    throw new Error('fault rates must be >= 0 and add up to at most 1');
  }
  const delayMs = options.delayMs ?? { min: 20, max: 300 };
  const random = options.random ?? Math.random;
  const agent = new Agent({ keepAlive: true });
  const stats: FaultProxyStats = {
    requests: 0,
    reset: 0,
    dropAfterResponse: 0,
    delayed: 0,
    answered: 0,
    upstreamErrors: 0,
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    stats.requests++;
    const draw = random();
    if (draw < reset) {
      stats.reset++;
      req.socket.resetAndDestroy();
      return;
    }
    const dropAfter = draw < reset + dropAfterResponse;
    if (!dropAfter && draw < reset + dropAfterResponse + delay) {
      stats.delayed++;
      await sleep(delayMs.min + random() * (delayMs.max - delayMs.min));
    }
    const body = await readAll(req);
    let answer: { status: number; headers: IncomingHttpHeaders; body: Buffer };
    try {
      answer = await new Promise((resolve, reject) => {
        const forwarded = request(
          {
            agent,
            host: upstream.hostname.replace(/^\[|\]$/g, ''),
            port: upstream.port,
            method: req.method,
            path: req.url,
            headers: { ...endToEnd(req.headers), 'content-length': String(body.length) },
          },
          (upstreamRes) => {
            readAll(upstreamRes).then(
              (bytes) =>
                resolve({ status: upstreamRes.statusCode ?? 502, headers: upstreamRes.headers, body: bytes }),
              reject,
            );
          },
        );
        forwarded.once('error', reject);
        forwarded.end(body);
      });
    } catch {
      stats.upstreamErrors++;
      if (!res.destroyed) res.writeHead(502).end();
      return;
    }
    if (dropAfter) {
      // The upstream did the work and answered; the client hears nothing.
      stats.dropAfterResponse++;
      req.socket.destroy();
      return;
    }
    stats.answered++;
    if (res.destroyed) return;
    res.writeHead(answer.status, {
      ...endToEnd(answer.headers),
      'content-length': String(answer.body.length),
    });
    res.end(answer.body);
  };
  // A client that gives up (its attempt timed out, the storm hit its time limit) aborts the request
  // being read: that ends this exchange, not the proxy.
  const server = createServer((req, res) => void handle(req, res).catch(() => req.socket.destroy()));

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
