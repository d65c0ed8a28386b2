// Blob sink: writes each batch's stored chunk bytes to the blob output in order and records
// where every fresh chunk landed. An optional raw-chunk hook serves the blob cache's .blob.data.
import type { Batch, BuildState, Sink } from '../stage.js';
import { CHUNK_COMPRESSED } from '../../read/model.js';

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
}

/** Bytes allowed to wait for the disk while the pipeline goes on. */
const WRITE_BEHIND = 4 << 20;

export function blobSink(out: ChunkOutput): Sink {
  return {
    async consume(batches: AsyncIterable<Batch>, state: BuildState): Promise<void> {
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
          pos += s.size;
          out.rawChunk?.(b.data.subarray(c.dataOffset, c.dataOffset + c.size), rec.uncompressedOffset);
        }
        state.blob.compressedEnd = pos;
        const stored = b.out!;
        if (stored.buffer !== b.data.buffer) state.buffers.release(b.data);
        // The written buffer goes back to the pool once the disk has it.
        out.write(stored, (back) => state.buffers.release(back));
        await out.drain(out.writeBehind ?? WRITE_BEHIND);
      }
    },
  };
}
