// http-proxy (spec §2.5, §4.4): read-only. Over a unix socket the server serves the one blob at
// "/" (the snapshotter's stream mode); over http(s) a blob is at "<addr><path>/<blob id>". Reads
// are GETs with a Range header; HEAD gives the size.
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { NydusError } from '../errors.js';
import { badBlobId } from '../format/limits.js';
import { str, type BackendConfig } from './config.js';
import { oneLine } from './multipart.js';
import type { Backend, BlobUpload } from './types.js';

export class HttpProxyBackend implements Backend {
  readonly type = 'http-proxy' as const;
  private readonly addr: string;
  private readonly base: string;
  private readonly socket: boolean;
  private readonly insecure: boolean;

  constructor(config: BackendConfig) {
    this.addr = str(config, 'addr');
    this.socket = this.addr.startsWith('/');
    this.base = str(config, 'path');
    this.insecure = config.skip_verify === true;
  }

  private url(id: string): string {
    if (this.socket) return '/';
    const bad = badBlobId(id);
    if (bad) throw new NydusError('FORMAT', `blob id: ${bad}`);
    return `${this.addr.replace(/\/+$/, '')}${path.posix.join('/', this.base, id)}`;
  }

  where(id: string): string {
    return this.socket ? `http+unix://${this.addr}/ (blob ${id})` : this.url(id);
  }

  private request(method: 'GET' | 'HEAD', id: string, range?: string): Promise<http.IncomingMessage> {
    const target = this.url(id);
    const headers: Record<string, string> = range ? { range } : {};
    return new Promise((resolve, reject) => {
      const done = (res: http.IncomingMessage) => resolve(res);
      const req = this.socket
        ? http.request({ socketPath: this.addr, path: target, method, headers }, done)
        : (target.startsWith('https:') ? https : http).request(target, { method, headers, ...(this.insecure ? { rejectUnauthorized: false } : {}) }, done);
      req.on('error', (e) => reject(new NydusError('SOURCE', `${this.where(id)}: ${method} failed: ${oneLine(e)}`, { cause: e })));
      req.end();
    });
  }

  async size(id: string): Promise<number | undefined> {
    const res = await this.request('HEAD', id);
    res.resume();
    if (res.statusCode === 404) return undefined;
    if (res.statusCode !== 200) throw new NydusError('SOURCE', `${this.where(id)}: HEAD answered ${res.statusCode}`);
    const n = Number(res.headers['content-length']);
    if (!Number.isSafeInteger(n) || n < 0) throw new NydusError('SOURCE', `${this.where(id)}: HEAD gave no usable Content-Length`);
    return n;
  }

  async exists(id: string): Promise<boolean> {
    return (await this.size(id)) !== undefined;
  }

  async get(id: string): Promise<Readable> {
    const res = await this.request('GET', id);
    if (res.statusCode !== 200) {
      res.resume();
      throw new NydusError('SOURCE', `${this.where(id)}: GET answered ${res.statusCode}`);
    }
    return res.pipe(new PassThrough());
  }

  async rangeGet(id: string, offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const res = await this.request('GET', id, `bytes=${offset}-${offset + length - 1}`);
    if (res.statusCode !== 206 && res.statusCode !== 200) {
      res.resume();
      throw new NydusError('SOURCE', `${this.where(id)}: GET bytes ${offset}+${length} answered ${res.statusCode}`);
    }
    // A server that ignores Range sends the whole blob: skip to the offset.
    let skip = res.statusCode === 200 ? offset : 0;
    const out = Buffer.alloc(length);
    let got = 0;
    for await (const c of res as AsyncIterable<Buffer>) {
      let chunk = c;
      if (skip > 0) {
        const n = Math.min(skip, chunk.length);
        skip -= n;
        chunk = chunk.subarray(n);
      }
      const n = Math.min(chunk.length, length - got);
      chunk.copy(out, got, 0, n);
      got += n;
      if (got === length) {
        res.destroy();
        break;
      }
    }
    if (got !== length) throw new NydusError('SOURCE', `${this.where(id)}: asked for ${length} bytes at ${offset}, got ${got}`);
    return out;
  }

  put(): BlobUpload {
    throw new NydusError('USAGE', 'the http-proxy backend is read-only');
  }

  async close(): Promise<void> {}
}
