// Piscina worker: compresses the fresh chunks of one batch. Tiny and self-contained: algo only.
import { compressorByName } from '../../algo/index.js';

export interface CompressTask {
  compressor: string;
  data: Uint8Array;
  /** [offset, length] pairs into data. */
  spans: Uint32Array;
}

export interface CompressResult {
  out: Uint8Array;
  /** Stored size per span; the sign bit set (negative) marks a chunk stored raw. */
  sizes: Int32Array;
}

export default function compress(task: CompressTask): CompressResult {
  const c = compressorByName(task.compressor)!;
  const n = task.spans.length / 2;
  const parts: Uint8Array[] = [];
  const sizes = new Int32Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const raw = task.data.subarray(task.spans[2 * i], task.spans[2 * i] + task.spans[2 * i + 1]);
    const z = c.compress(raw);
    // Keep the compressed form only when it is strictly smaller (blob.md §3).
    const keep = z.byteLength < raw.byteLength ? z : raw;
    sizes[i] = keep === raw ? -raw.byteLength : z.byteLength;
    parts.push(keep);
    total += keep.byteLength;
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return { out, sizes };
}
