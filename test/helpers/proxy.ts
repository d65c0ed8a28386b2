// Proxies the tests put in front of a real registry to make faults happen where they want them:
// a reverse proxy whose rule decides, per request, to forward, answer a status, redirect, or
// cut the connection partway through the request or response body; and a forward proxy that
// only tunnels CONNECT, to show HTTP(S)_PROXY is used.
import * as http from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';

export type Fault =
  | 'forward'
  | { status: number; headers?: Record<string, string>; body?: string }
  /** Reads this many bytes of the request body, then destroys the connection. */
  | { resetRequestAfter: number }
  /** Forwards, passes this many bytes of the response body, then destroys the connection. */
  | { resetResponseAfter: number }
  /** Answers 307 to this URL. */
  | { redirect: string };

export interface FaultRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  /** How many requests came before this one. */
  index: number;
}

export interface FaultProxy {
  /** host:port to use as the registry. */
  host: string;
  /** Every request the proxy saw, in order, with what it did. */
  seen: Array<FaultRequest & { fault: string }>;
  stop(): Promise<void>;
}

/** A reverse proxy to `target` (host:port over plain HTTP) applying `rule` to each request. */
export async function startFaultProxy(target: string, rule: (r: FaultRequest) => Fault): Promise<FaultProxy> {
  const [thost, tport] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  const seen: FaultProxy['seen'] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const r: FaultRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, index: seen.length };
    const fault = rule(r);
    seen.push({ ...r, fault: typeof fault === 'string' ? fault : Object.keys(fault)[0]! });
    if (typeof fault === 'object' && 'status' in fault) {
      req.resume();
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers }).end(fault.body ?? '');
      return;
    }
    if (typeof fault === 'object' && 'redirect' in fault) {
      req.resume();
      res.writeHead(307, { location: fault.redirect }).end();
      return;
    }
    if (typeof fault === 'object' && 'resetRequestAfter' in fault) {
      let got = 0;
      req.on('data', (b: Buffer) => {
        got += b.length;
        if (got >= fault.resetRequestAfter) req.socket.destroy();
      });
      req.on('end', () => req.socket.destroy());
      return;
    }
    const up = http.request({ host: thost, port: tport, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      if (typeof fault === 'object' && 'resetResponseAfter' in fault) {
        let sent = 0;
        ur.on('data', (b: Buffer) => {
          if (sent >= fault.resetResponseAfter) return;
          const n = Math.min(b.length, fault.resetResponseAfter - sent);
          sent += n;
          res.write(b.subarray(0, n));
          if (sent >= fault.resetResponseAfter) {
            ur.destroy();
            // Give the bytes a moment to leave, then cut the connection mid-body.
            setTimeout(() => req.socket.destroy(), 20);
          }
        });
        return;
      }
      ur.pipe(res);
    });
    up.on('error', () => req.socket.destroy());
    req.pipe(up);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    seen,
    stop: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface ConnectProxy {
  /** http://127.0.0.1:port, for HTTP_PROXY / HTTPS_PROXY. */
  url: string;
  /** host:port of every CONNECT tunnel opened. */
  tunnels: string[];
  stop(): Promise<void>;
}

/** A forward proxy that tunnels CONNECT requests and refuses everything else. */
export async function startConnectProxy(): Promise<ConnectProxy> {
  const tunnels: string[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req: http.IncomingMessage, client: Socket, head: Buffer) => {
    const where = req.url ?? '';
    tunnels.push(where);
    const i = where.lastIndexOf(':');
    const up = connect(Number(where.slice(i + 1)), where.slice(0, i).replace(/^\[|\]$/g, ''), () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    for (const s of [up, client]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    tunnels,
    stop: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
