// Synchronous reads from a backend, for the readers (check, unpack, export), which read blobs with
// positioned reads: a worker thread does the ranged GETs while the caller waits on a shared word.
// What is fetched lands in a local cache file per blob (unlinked at once, like nydusd's blob
// cache), by units of 1 MiB, so readers walking a blob out of order fetch each byte once; a GET
// reads ahead over up to 8 MiB of units not fetched yet.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { NydusError, fsError } from '../errors.js';
import type { BackendSpec } from './config.js';

const UNIT = 1 << 20;
/** Bytes fetched per GET at most when reading ahead. */
const WINDOW = 8 << 20;

interface CacheFile {
  fd: number;
  size: number;
  /** One byte per unit: 1 once fetched. */
  have: Uint8Array;
}
/** How long one request may take before the reader gives up. */
const TIMEOUT_MS = 10 * 60_000;

export class SyncBlobReader {
  private readonly worker: Worker;
  private readonly control = new SharedArrayBuffer(8);
  private data = new SharedArrayBuffer(WINDOW);
  private readonly files = new Map<string, CacheFile>();

  constructor(private readonly spec: BackendSpec) {
    this.worker = new Worker(new URL('./read-worker.js', import.meta.url), { workerData: spec, stdout: false, stderr: false });
    // The worker must not keep the process alive once the readers are done.
    this.worker.unref();
  }

  private call(op: 'size' | 'read' | 'where', id: string, offset = 0, length = 0): number {
    if (length > this.data.byteLength) this.data = new SharedArrayBuffer(length);
    const ctrl = new Int32Array(this.control);
    Atomics.store(ctrl, 0, 0);
    this.worker.postMessage({ op, id, offset, length, control: this.control, data: this.data });
    if (Atomics.wait(ctrl, 0, 0, TIMEOUT_MS) === 'timed-out') throw new NydusError('SOURCE', `${this.spec.type} backend: no answer for blob ${id} in ${TIMEOUT_MS / 1000} s`);
    const status = Atomics.load(ctrl, 0);
    const value = Atomics.load(ctrl, 1);
    if (status === 2) throw new NydusError('SOURCE', Buffer.from(this.data, 0, value).toString());
    return value;
  }

  /** Where the backend keeps the blob (a URL, bucket and key, or file), for messages. */
  where(id: string): string {
    const n = this.call('where', id);
    return Buffer.from(this.data, 0, n).toString();
  }

  /** One line for a blob the backend does not have, naming where it was looked for. */
  missing(id: string): NydusError {
    return new NydusError('SOURCE', `blob ${id} is not in the backend: ${this.where(id)} does not exist`);
  }

  /** The blob's size, or undefined when the backend has no such blob. */
  size(id: string): number | undefined {
    const n = this.call('size', id);
    return n < 0 ? undefined : n;
  }

  private cacheFile(id: string, size: number): CacheFile {
    let f = this.files.get(id);
    if (!f) {
      const dir = os.tmpdir();
      const file = path.join(dir, `.nydus-blob-cache.${process.pid}.${this.files.size}.${Date.now()}`);
      try {
        const fd = fs.openSync(file, 'wx+', 0o600);
        fs.unlinkSync(file);
        f = { fd, size, have: new Uint8Array(Math.ceil(size / UNIT)) };
      } catch (e) {
        throw fsError('OUTPUT', file, e);
      }
      this.files.set(id, f);
    }
    return f;
  }

  /** Fetches units [first, last] that are missing, reading ahead over missing units up to WINDOW. */
  private fill(id: string, f: CacheFile, first: number, last: number): void {
    for (let u = first; u <= last; u++) {
      if (f.have[u]) continue;
      let end = u;
      while (end + 1 < f.have.length && !f.have[end + 1] && (end + 1 - u + 1) * UNIT <= Math.max(WINDOW, (last - u + 1) * UNIT)) end++;
      const offset = u * UNIT;
      const length = Math.min(f.size, (end + 1) * UNIT) - offset;
      const n = this.call('read', id, offset, length);
      if (n !== length) throw new NydusError('SOURCE', `${this.spec.type} backend: blob ${id}: asked for ${length} bytes at ${offset}, got ${n}`);
      const bytes = Buffer.from(this.data, 0, n);
      for (let w = 0; w < n; ) w += fs.writeSync(f.fd, bytes, w, n - w, offset + w);
      f.have.fill(1, u, end + 1);
      u = end;
    }
  }

  /** Reads `out.length` bytes at `position` of blob `id`, whose size is `blobSize`. */
  read(id: string, out: Uint8Array, position: number, blobSize: number): void {
    if (out.length === 0) return;
    if (position + out.length > blobSize) throw new NydusError('SOURCE', `${this.spec.type} backend: blob ${id} ends at ${blobSize}, a read needs bytes up to ${position + out.length}`);
    const f = this.cacheFile(id, blobSize);
    this.fill(id, f, Math.floor(position / UNIT), Math.floor((position + out.length - 1) / UNIT));
    for (let done = 0; done < out.length; ) {
      const n = fs.readSync(f.fd, out, done, out.length - done, position + done);
      if (n === 0) throw new NydusError('INTERNAL', `blob cache of ${id} ended early`);
      done += n;
    }
  }

  close(): void {
    for (const f of this.files.values()) fs.closeSync(f.fd);
    this.files.clear();
    void this.worker.terminate();
  }
}
