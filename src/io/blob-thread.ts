// Main-thread side of the blob's writer thread (workers/blob-writer.ts): the blob's sha256 and,
// for a file, its writes run there, in order. A write either lends its buffer (moved to the
// thread, handed back to onWritten once written) or is copied (small headers and tables).
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { fsError } from '../errors.js';
import type { WriterReply, WriterRequest } from './workers/blob-writer.js';

/** The worker as compiled JavaScript; under a TypeScript test runner, its copy in dist/. */
function workerFile(): string {
  const here = fileURLToPath(new URL('./workers/blob-writer.js', import.meta.url));
  return here.includes('/src/io/') ? here.replace(/\/src\/io\/workers\//, '/dist/io/workers/') : here;
}

export class BlobThread {
  /** Started by the first write: a build that writes no blob bytes never starts it. */
  private worker?: Worker;
  private nextId = 0;
  private readonly replies = new Map<number, (r: WriterReply) => void>();
  /** Bytes sent that the thread has not yet written. */
  private queued = 0;
  private failure?: Error;
  private waiters: Array<{ limit: number; resolve: () => void }> = [];

  /** @param fd where the thread writes (-1: hash only); label names the output in errors. */
  constructor(private readonly fd: number, private readonly label: string) {}

  private start(): Worker {
    const worker = new Worker(workerFile(), { workerData: { fd: this.fd }, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    this.worker = worker;
    worker.on('message', (r: WriterReply) => {
      if (r.failure && !this.failure) this.failure = fsError('OUTPUT', this.label, Object.assign(new Error(r.failure.message), { code: r.failure.code }));
      const done = this.replies.get(r.id);
      this.replies.delete(r.id);
      done?.(r);
    });
    worker.on('error', (e) => {
      this.failure ??= e;
      this.settleAll();
    });
    worker.on('exit', () => {
      if (this.replies.size > 0) this.failure ??= new Error('the blob writer thread ended early');
      this.settleAll();
    });
    return worker;
  }

  private settleAll(): void {
    for (const done of this.replies.values()) done({ id: -1 });
    this.replies.clear();
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }

  private send(m: WriterRequest, transfer: ArrayBuffer[], done: (r: WriterReply) => void): void {
    this.replies.set(m.id, done);
    (this.worker ?? this.start()).postMessage(m, transfer);
  }

  /**
   * Appends data (hashed unless hashed is false). With onWritten the buffer is lent: it leaves
   * this thread now and comes back, whole, to onWritten; without, data is copied.
   */
  write(data: Uint8Array, hashed: boolean, onWritten?: (back: Uint8Array) => void): void {
    if (this.failure) throw this.failure;
    const len = data.byteLength;
    const lend = !!onWritten;
    // Shared memory is lent by reference: nothing moves, and the caller's view is what comes back.
    const shared = lend && data.buffer instanceof SharedArrayBuffer;
    let buf = data.buffer as ArrayBuffer | SharedArrayBuffer;
    if (!lend) {
      // The copy is shared memory too, not a buffer moved to the thread: the first ArrayBuffer
      // this thread detaches invalidates one of V8's protectors, and every optimized function
      // that touches a typed array (the bootstrap's writers among them) is thrown away.
      const copy = new Uint8Array(new SharedArrayBuffer(len));
      copy.set(data);
      buf = copy.buffer;
    }
    const off = lend ? data.byteOffset : 0;
    const moves = lend && !shared;
    this.queued += len;
    this.send({ t: 'write', id: this.nextId++, buf, off, len, hashed, back: moves }, moves ? [buf as ArrayBuffer] : [], (r) => {
      this.queued -= len;
      if (shared && r.id >= 0) onWritten!(data);
      else if (lend && r.buf) onWritten!(new Uint8Array(r.buf));
      this.waiters = this.waiters.filter((w) => (this.queued <= w.limit ? (w.resolve(), false) : true));
    });
  }

  /** Waits until at most `limit` bytes are still queued; rethrows a write error. */
  async drain(limit = 0): Promise<void> {
    if (this.queued > limit && !this.failure) await new Promise<void>((resolve) => this.waiters.push({ limit, resolve }));
    if (this.failure) throw this.failure;
  }

  /** The sha256 of everything hashed so far (final: and no more writes follow); rethrows a write error. */
  async digest(final: boolean): Promise<Buffer> {
    if (this.failure) throw this.failure;
    // Nothing was written: the digest of no bytes, without starting the thread for it.
    if (!this.worker) return createHash('sha256').digest();
    const r = await new Promise<WriterReply>((resolve) => this.send({ t: 'digest', id: this.nextId++, final }, [], resolve));
    if (this.failure) throw this.failure;
    return Buffer.from(r.digest!);
  }

  /** Ends the thread (after digest(true), every write is done). */
  async close(): Promise<void> {
    await this.worker?.terminate();
  }
}
