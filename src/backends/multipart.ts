// A multipart upload fed by a stream (S3 and OSS speak the same shape): parts are cut from the
// bytes as they come and sent a few at a time, under a temporary key; commit completes the upload
// and copies it to its final key (known only then), abort drops it. Nothing is ever readable under
// the final key until it is whole.
import { Writable } from 'node:stream';
import { NydusError } from '../errors.js';
import type { BlobUpload, PutResult } from './types.js';

export interface MultipartApi {
  /** For messages: "s3://bucket/key". */
  where(key: string): string;
  create(key: string): Promise<string>;
  part(key: string, uploadId: string, n: number, data: Buffer): Promise<PartDone>;
  complete(key: string, uploadId: string, parts: PartDone[]): Promise<void>;
  abort(key: string, uploadId: string): Promise<void>;
  size(key: string): Promise<number | undefined>;
  copy(from: string, to: string, size: number): Promise<void>;
  remove(key: string): Promise<void>;
}

export interface PartDone {
  n: number;
  etag: string;
  /** Extra fields the server wants back in the completion (checksums). */
  extra?: Record<string, string>;
}

export interface MultipartOptions {
  /** Where the parts go while the final name is unknown. */
  tempKey: string;
  /** The final key, when known before the bytes (then no copy is needed). */
  knownKey?: string;
  finalKey(id: string): string;
  partSize: number;
  concurrency: number;
  /** Delays between attempts to abort after a failure (the server may be back by then). */
  abortDelaysMs?: number[];
}

/** Bytes per part: parts are held in memory while they travel, `concurrency` at a time. */
export const PART_SIZE = 16 << 20;
export const PART_CONCURRENCY = 4;
/** S3 and OSS both allow at most 10000 parts per upload. */
const MAX_PARTS = 10000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function oneLine(e: unknown): string {
  const err = e as { message?: string; name?: string; code?: string; Code?: string };
  const msg = err?.message || err?.name || err?.Code || String(e);
  return msg.split('\n')[0]!;
}

/**
 * The upload's byte stream. Besides the Writable interface (for piping a source), bytes can be
 * handed over synchronously with take, which copies them at once into the part being filled, so
 * a caller that reuses its buffers (the build's blob sink) needs no copy of its own; room gives
 * the backpressure then.
 */
export class PartStream extends Writable {
  constructor(private readonly parts: { take(data: Uint8Array): void; room(): Promise<void>; end(): Promise<void> }) {
    super({ highWaterMark: 1 << 20 });
  }

  /** Copies data into the parts now: the caller may reuse it once this returns. Throws after a failure. */
  take(data: Uint8Array): void {
    this.parts.take(data);
  }

  /** Resolves once every full part is on its way (at most `concurrency` at a time); rejects after a failure. */
  room(): Promise<void> {
    return this.parts.room();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    try {
      this.take(chunk);
    } catch (e) {
      cb(e as Error);
      return;
    }
    this.room().then(() => cb(), cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.parts.end().then(() => cb(), cb);
  }
}

export function multipartUpload(api: MultipartApi, o: MultipartOptions): BlobUpload {
  const key = o.knownKey ?? o.tempKey;
  const started = api.create(key);
  started.catch(() => undefined);
  const parts: PartDone[] = [];
  /** Full parts not yet sent (each with the buffer it lives in, back to the pool once sent). */
  const pending: Array<{ n: number; data: Buffer; backing: Buffer }> = [];
  /** Part buffers whose upload is done: reused, so the parts cost no fresh memory. */
  const pool: Buffer[] = [];
  let inFlight = 0;
  let waiters: Array<() => void> = [];
  let failure: unknown;
  let buf: Buffer | undefined;
  let fill = 0;
  let total = 0;
  let n = 0;
  let ended = false;
  let finished = false;
  /** The server assembled the parts (under the temporary key): from then on there is no upload to abort. */
  let completed = false;
  let aborted: Promise<void> | undefined;

  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const fail = (e: unknown) => {
    failure ??= e;
    pending.length = 0;
    wake();
  };
  const pump = () => {
    while (!failure && inFlight < o.concurrency && pending.length > 0) {
      const p = pending.shift()!;
      inFlight++;
      (async () => {
        const id = await started;
        parts.push(await api.part(key, id, p.n, p.data));
      })().then(
        () => pool.push(p.backing),
        (e: unknown) => fail(e),
      ).finally(() => {
        inFlight--;
        pump();
        wake();
      });
    }
  };
  const queue = (data: Buffer, backing: Buffer) => {
    const num = ++n;
    if (num > MAX_PARTS) throw new NydusError('OUTPUT', `${api.where(key)}: the blob needs more than ${MAX_PARTS} parts of ${o.partSize} bytes`);
    pending.push({ n: num, data, backing });
    pump();
  };
  /** Resolves when `done()` holds or the upload failed (then rejects). */
  const until = async (done: () => boolean) => {
    while (!failure && !done()) await new Promise<void>((resolve) => waiters.push(resolve));
    if (failure) throw failure;
  };

  const core = {
    take(data: Uint8Array): void {
      if (failure) throw failure;
      if (ended) throw new NydusError('INTERNAL', 'bytes written to an upload after its end');
      let at = 0;
      while (at < data.byteLength) {
        buf ??= pool.pop() ?? Buffer.allocUnsafeSlow(o.partSize);
        const k = Math.min(data.byteLength - at, o.partSize - fill);
        buf.set(data.subarray(at, at + k), fill);
        fill += k;
        at += k;
        total += k;
        if (fill === o.partSize) {
          queue(buf, buf);
          buf = undefined;
          fill = 0;
        }
      }
    },
    room: () => until(() => pending.length === 0),
    async end(): Promise<void> {
      if (failure) throw failure;
      ended = true;
      // The last part may be short; an empty blob is one empty part.
      if (fill > 0 || n === 0) {
        const last = buf ?? Buffer.alloc(0);
        queue(last.subarray(0, fill), last);
        buf = undefined;
      }
      await until(() => pending.length === 0 && inFlight === 0);
      await started;
      finished = true;
    },
  };
  const stream = new PartStream(core);

  const abort = (reason?: unknown): Promise<void> => {
    fail(reason ?? new NydusError('OUTPUT', 'upload aborted'));
    aborted ??= (async () => {
      if (!stream.destroyed) stream.destroy();
      while (inFlight > 0) await new Promise<void>((resolve) => waiters.push(resolve));
      if (completed) return;
      let id: string;
      try {
        id = await started;
      } catch {
        return;
      }
      const delays = o.abortDelaysMs ?? [500, 1000, 2000, 4000, 8000];
      for (let attempt = 0; ; attempt++) {
        try {
          await api.abort(key, id);
          return;
        } catch (e) {
          if (attempt >= delays.length) throw new NydusError('OUTPUT', `${api.where(key)}: the multipart upload ${id} could not be aborted: ${oneLine(e)}`);
          await sleep(delays[attempt]!);
        }
      }
    })();
    return aborted;
  };

  return {
    stream,
    abort,
    async commit(id: string, force: boolean): Promise<PutResult> {
      if (!finished) throw new NydusError('INTERNAL', 'multipart upload committed before its stream ended');
      const finalKey = o.finalKey(id);
      if (o.knownKey !== undefined && o.knownKey !== finalKey) throw new NydusError('INTERNAL', `upload to ${o.knownKey} committed as ${finalKey}`);
      const uploadId = await started;
      if (!force && (await api.size(finalKey)) !== undefined) {
        await abort();
        return { size: total, skipped: true };
      }
      parts.sort((a, b) => a.n - b.n);
      await api.complete(key, uploadId, parts);
      completed = true;
      if (key !== finalKey) {
        try {
          await api.copy(key, finalKey, total);
        } finally {
          await api.remove(key).catch(() => undefined);
        }
      }
      return { size: total, skipped: false };
    },
  };
}
