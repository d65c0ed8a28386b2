// Blob sink: writes each batch's stored chunk bytes to the blob output in order and records
// where every fresh chunk landed. An optional raw-chunk hook serves the blob cache's .blob.data.
import type { Batch, BlobState, BuildState, Sink } from '../stage.js';
import { CHUNK_COMPRESSED, type ChunkInfo } from '../../read/model.js';
import * as bci from '../../format/blob/chunk-info.js';
import type { BatchCompressor, ChunkPacker } from '../../builder/pack.js';
import type { CompressResult, CompressTask } from '../workers/chunks.js';
import { isShared } from '../buffers.js';

export interface ChunkOutput {
  /**
   * Appends bytes to the blob (and its hash). The buffer is lent until onWritten, which gets it
   * back (possibly as a new view of the same memory, when it went to another thread).
   */
  write(data: Uint8Array, onWritten?: (back: Uint8Array) => void): void;
  /** Waits until at most `limit` bytes are queued for writing. */
  drain(limit: number): Promise<void>;
  /** Bytes allowed to wait for the disk (default WRITE_BEHIND). */
  writeBehind?: number;
  /** Receives each fresh chunk's uncompressed bytes and its uncompressed offset. */
  rawChunk?(data: Uint8Array, uncompressedOffset: number): void;
  /** Batches small chunks and encrypts (`--batch-size`, `--encrypt`): the bytes written are its. */
  packer?: ChunkPacker;
}

/** Bytes allowed to wait for the disk while the pipeline goes on. */
const WRITE_BEHIND = 4 << 20;

export function blobSink(out: ChunkOutput): Sink {
  return {
    async consume(batches: AsyncIterable<Batch>, state: BuildState): Promise<void> {
      if (out.packer) return consumePacked(batches, state, out, out.packer);
      for await (const b of batches) {
        let pos = state.blob.compressedEnd;
        let k = 0;
        for (const c of b.chunks) {
          if (!c.fresh) continue;
          const rec = state.chunks[c.ref!];
          const s = b.stored![k++];
          rec.compressedOffset = pos;
          rec.compressedSize = s.size;
          rec.flags = s.compressed ? CHUNK_COMPRESSED : 0;
          if (state.blob.metaEntries) addMetaEntry(state.blob.metaEntries, rec);
          pos += s.size;
          out.rawChunk?.(b.data.subarray(c.dataOffset, c.dataOffset + c.size), rec.uncompressedOffset);
        }
        state.blob.compressedEnd = pos;
        const stored = b.out!;
        if (stored.buffer !== b.data.buffer) state.buffers.release(b.data);
        // The written buffer goes back to the pool once the disk has it (all of its spans). A
        // buffer that is not shared moves to the writer's thread at its first write: its spans
        // go in one copy.
        const spans = b.outSpans;
        if (spans && !isShared(stored)) {
          out.write(gathered(stored, spans));
          state.buffers.release(stored);
        } else if (spans) {
          let left = spans.length / 2;
          if (left === 0) state.buffers.release(stored);
          for (let i = 0; i < spans.length; i += 2) {
            out.write(stored.subarray(spans[i], spans[i] + spans[i + 1]), (back) => --left === 0 && state.buffers.release(back));
          }
        } else {
          out.write(stored, (back) => state.buffers.release(back));
        }
        await out.drain(out.writeBehind ?? WRITE_BEHIND);
      }
    },
  };
}

/** The sink with a packer: each batch's chunks are placed one by one, their bytes gathered and written at once. */
async function consumePacked(batches: AsyncIterable<Batch>, state: BuildState, out: ChunkOutput, packer: ChunkPacker): Promise<void> {
  // Batches are compressed by a worker when there is a pool (the main thread keeps the pipeline going).
  const pool = state.pool;
  const algo = state.compressor.name;
  const zip: BatchCompressor | undefined = pool && algo !== 'none'
    ? async (raw) => {
        const task: CompressTask = { algo, data: raw, out: new Uint8Array(raw.byteLength), spans: Uint32Array.of(0, raw.byteLength) };
        const r = await pool.run<CompressResult>('compress', task);
        return r.sizes[0] > 0 ? r.out.subarray(0, r.sizes[0]) : undefined;
      }
    : undefined;
  const write = async (pieces: Buffer[]) => {
    for (const p of pieces) state.blob.compressedEnd += p.length;
    if (pieces.length > 0) out.write(pieces.length === 1 ? pieces[0] : Buffer.concat(pieces));
    await out.drain(WRITE_BEHIND);
  };
  for await (const b of batches) {
    const pieces: Buffer[] = [];
    let pos = state.blob.compressedEnd;
    let from = 0;
    let k = 0;
    const stored = b.outSpans ? gathered(b.out!, b.outSpans) : b.out!;
    for (const c of b.chunks) {
      if (!c.fresh) continue;
      const raw = b.data.subarray(c.dataOffset, c.dataOffset + c.size);
      // A batched chunk was left out of the stored bytes (the compressor did not compress it alone).
      const batched = state.batched?.(c) ?? false;
      const s = batched ? { size: 0, compressed: false } : b.stored![k++];
      for (const p of await packer.add(c.ref!, state.chunks[c.ref!], raw, stored.subarray(from, from + s.size), s.compressed, batched, pos, zip)) {
        // Chunk bytes still in the pipeline's buffers are copied: those go back to the pool below.
        pieces.push(p.buffer === stored.buffer || p.buffer === b.data.buffer ? Buffer.from(p) : p);
        pos += p.length;
      }
      from += s.size;
      out.rawChunk?.(raw, state.chunks[c.ref!].uncompressedOffset);
    }
    if (stored.buffer !== b.data.buffer) state.buffers.release(stored);
    state.buffers.release(b.data);
    await write(pieces);
  }
  await write([await packer.flushBatch(zip)].filter((p) => p.length > 0));
}

/** Chunk c's blob.meta v1 entry, at its chunk index. */
function addMetaEntry(m: NonNullable<BlobState['metaEntries']>, c: ChunkInfo): void {
  const at = c.index * bci.V1_SIZE;
  if (at + bci.V1_SIZE > m.bytes.length) {
    const grown = Buffer.alloc(Math.max(64 * bci.V1_SIZE, 2 * m.bytes.length, at + bci.V1_SIZE));
    m.bytes.copy(grown);
    m.bytes = grown;
    m.view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
  }
  bci.encodeV1Into(m.bytes, m.view, at, c.compressedOffset, c.compressedSize, c.uncompressedOffset, c.uncompressedSize);
  m.count++;
}

/** The spans of data, one after another, in a buffer of their own. */
function gathered(data: Uint8Array, spans: number[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < spans.length; i += 2) parts.push(data.subarray(spans[i], spans[i] + spans[i + 1]));
  return Buffer.concat(parts);
}
