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

export function multipartUpload(api: MultipartApi, o: MultipartOptions): BlobUpload {
  const key = o.knownKey ?? o.tempKey;
  const started = api.create(key);
  started.catch(() => undefined);
  const parts: PartDone[] = [];
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  let buf = Buffer.allocUnsafe(o.partSize);
  let fill = 0;
  let total = 0;
  let n = 0;
  let finished = false;
  /** The server assembled the parts (under the temporary key): from then on there is no upload to abort. */
  let completed = false;
  let aborted: Promise<void> | undefined;

  const send = (data: Buffer): Promise<void> => {
    const num = ++n;
    if (num > MAX_PARTS) throw new NydusError('OUTPUT', `${api.where(key)}: the blob needs more than ${MAX_PARTS} parts of ${o.partSize} bytes`);
    const p = (async () => {
      const id = await started;
      parts.push(await api.part(key, id, num, data));
    })().catch((e: unknown) => {
      failure ??= e;
    });
    const tracked = p.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
    return tracked;
  };
  const room = async () => {
    while (inFlight.size >= o.concurrency) await Promise.race(inFlight);
    if (failure) throw failure;
  };

  const stream = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _enc, cb) {
      (async () => {
        if (failure) throw failure;
        let at = 0;
        while (at < chunk.length) {
          const k = Math.min(chunk.length - at, o.partSize - fill);
          chunk.copy(buf, fill, at, at + k);
          fill += k;
          at += k;
          total += k;
          if (fill === o.partSize) {
            await room();
            void send(buf);
            buf = Buffer.allocUnsafe(o.partSize);
            fill = 0;
          }
        }
      })().then(() => cb(), (e: unknown) => cb(e as Error));
    },
    final(cb) {
      (async () => {
        // The last part may be short; an empty blob is one empty part.
        if (fill > 0 || n === 0) {
          await room();
          void send(buf.subarray(0, fill));
        }
        await Promise.all(inFlight);
        if (failure) throw failure;
        await started;
        finished = true;
      })().then(() => cb(), (e: unknown) => cb(e as Error));
    },
  });

  const abort = (reason?: unknown): Promise<void> => {
    failure ??= reason ?? new NydusError('OUTPUT', 'upload aborted');
    aborted ??= (async () => {
      if (!stream.destroyed) stream.destroy();
      await Promise.allSettled(inFlight);
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
