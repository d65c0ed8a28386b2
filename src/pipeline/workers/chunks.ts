// Piscina worker: digests or compresses the chunks of one batch. Tiny and self-contained: algo
// only. Buffers travel both ways by transfer, so the batch buffer goes back to be reused.
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { compressorByName, digesterByName } from '../../algo/index.js';

export interface ChunkTask {
  /** Compressor or digester name. */
  algo: string;
  data: Uint8Array;
  /** [offset, length] pairs into data. */
  spans: Uint32Array;
}

export interface DigestResult {
  /** 32 bytes per span. */
  digests: Uint8Array;
  data: Uint8Array;
}

export interface CompressTask extends ChunkTask {
  /** Receives the stored bytes of every span back to back; as large as data. */
  out: Uint8Array;
}

export interface CompressResult {
  out: Uint8Array;
  /** Bytes of out used. */
  used: number;
  /** Stored size per span; negative marks a chunk stored raw (compression did not shrink it). */
  sizes: Int32Array;
  data: Uint8Array;
}

const slice = (t: ChunkTask, i: number) => t.data.subarray(t.spans[2 * i], t.spans[2 * i] + t.spans[2 * i + 1]);

/** Marks the result's buffers for transfer back to the main thread. */
function moved<T extends object>(value: T, buffers: ArrayBufferLike[]): T {
  return move({ [transferableSymbol]: buffers, [valueSymbol]: value } as never) as unknown as T;
}

export function digest(t: ChunkTask): DigestResult {
  const d = digesterByName(t.algo)!;
  const n = t.spans.length / 2;
  const digests = new Uint8Array(32 * n);
  for (let i = 0; i < n; i++) digests.set(d.digest(slice(t, i)), 32 * i);
  return moved({ digests, data: t.data }, [digests.buffer, t.data.buffer]);
}

export function compressChunks(t: CompressTask): CompressResult {
  const c = compressorByName(t.algo)!;
  const n = t.spans.length / 2;
  const sizes = new Int32Array(n);
  let used = 0;
  for (let i = 0; i < n; i++) {
    const raw = slice(t, i);
    // Keep the compressed form only when it is strictly smaller (blob.md §3).
    const z = raw.byteLength > 1 ? c.compressInto(t.out.subarray(used, used + raw.byteLength - 1), raw) : -1;
    if (z < 0) {
      t.out.set(raw, used);
      sizes[i] = -raw.byteLength;
      used += raw.byteLength;
    } else {
      sizes[i] = z;
      used += z;
    }
  }
  return { out: t.out, used, sizes, data: t.data };
}

/** As a pool task: the same, with buffers transferred back. */
export function compress(t: CompressTask): CompressResult {
  const r = compressChunks(t);
  return moved(r, [r.out.buffer, r.data.buffer]);
}
