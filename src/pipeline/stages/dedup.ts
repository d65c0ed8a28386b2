// Dedup: a chunk whose digest is already known (this build, a parent or a chunk dict) is
// referenced, not stored again; a new chunk gets its chunk index and uncompressed offset here.
import { useBlob, type Batch, type BuildState } from '../stage.js';
import { alignUp } from '../../format/util.js';
import type { ChunkInfo } from '../../read/model.js';
import type { ChunkRef } from '../../tree/node.js';

/**
 * A chunk this build stores. Its digest stays in the batch's digest buffer and becomes a view
 * only when read (a few times per chunk): a buffer object per record would be the biggest
 * single item of a 500,000-file build's heap.
 */
class StoredChunk implements ChunkInfo {
  flags = 0;
  compressedOffset = 0;
  compressedSize = 0;
  crc32 = 0;
  constructor(
    public blobIndex: number,
    public index: number,
    private readonly digestStore: ArrayBufferLike,
    private readonly digestAt: number,
    private readonly digestLength: number,
    public uncompressedOffset: number,
    public uncompressedSize: number,
    public fileOffset: number,
  ) {}

  get digest(): Buffer {
    return Buffer.from(this.digestStore, this.digestAt, this.digestLength);
  }

  digestInto(out: Uint8Array, at: number): void {
    const src = bytesOf(this.digestStore);
    const n = this.digestLength < 32 ? this.digestLength : 32;
    for (let i = 0, from = this.digestAt; i < n; i++) out[at + i] = src[from + i];
  }
}

// The bytes of the digest buffer read last: the records of one batch share one, and are read in order.
let lastStore: ArrayBufferLike | undefined;
let lastBytes: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
function bytesOf(store: ArrayBufferLike): Uint8Array {
  if (store !== lastStore) {
    lastStore = store;
    lastBytes = new Uint8Array(store);
  }
  return lastBytes;
}

/** A file's reference to a stored chunk: a class, not an object literal, for the reason chunk.ts's Pending gives. */
class Ref implements ChunkRef {
  constructor(public chunk: number, public fileOffset: number) {}
}

/**
 * Gives every chunk of a batch its record. Its own function, not the body of dedup's loop: a
 * generator that runs the whole build in one call is compiled on the stack (OSR), again at each
 * deoptimization, and this loop body compiled that way cost ~85 ms of the optimizing compiler's
 * time per /usr/share build; as a plain function called per batch it compiles in ~30-50 ms in all.
 */
function dedupBatch(state: BuildState, b: Batch): void {
  const blob = state.blob;
  for (const c of b.chunks) {
    const d = c.digest!;
    let ref = state.dict.get(d);
    if (ref !== undefined && state.chunks[ref].uncompressedSize !== c.size) ref = undefined;
    if (ref === undefined) {
      useBlob(state, blob.index);
      ref = state.chunks.length;
      state.chunks.push(new StoredChunk(blob.index, blob.chunkCount++, d.buffer, d.byteOffset, d.byteLength, blob.uncompressedEnd, c.size, c.fileOffset));
      blob.chunkRefs.push(ref);
      blob.uncompressedEnd += state.aligned ? alignUp(c.size, 4096) : c.size;
      state.dict.set(d, ref);
      c.fresh = true;
    } else {
      useBlob(state, state.chunks[ref].blobIndex);
      state.progress.dedupChunks++;
      state.progress.dedupBytes += c.size;
      c.fresh = false;
    }
    c.ref = ref;
    state.progress.chunks++;
    c.refs![Math.floor(c.fileOffset / state.chunkSize)] = new Ref(ref, c.fileOffset);
  }
}

export function dedup(state: BuildState) {
  return async function* (batches: AsyncIterable<Batch>): AsyncGenerator<Batch> {
    for await (const b of batches) {
      dedupBatch(state, b);
      yield b;
    }
  };
}
