// Dedup: a chunk whose digest is already known (this build, a parent or a chunk dict) is
// referenced, not stored again; a new chunk gets its chunk index and uncompressed offset here.
import { useBlob, type Batch, type BuildState } from '../stage.js';
import { alignUp } from '../../format/util.js';


export function dedup(state: BuildState) {
  return async function* (batches: AsyncIterable<Batch>): AsyncGenerator<Batch> {
    const blob = state.blob;
    for await (const b of batches) {
      for (const c of b.chunks) {
        const key = c.digest!.toString('latin1');
        let ref = state.dict.get(key);
        if (ref !== undefined && state.chunks[ref].uncompressedSize !== c.size) ref = undefined;
        if (ref === undefined) {
          useBlob(state, blob.index);
          ref = state.chunks.length;
          state.chunks.push({
            blobIndex: blob.index, index: blob.chunkCount++, digest: c.digest!, flags: 0,
            compressedOffset: 0, compressedSize: 0,
            uncompressedOffset: blob.uncompressedEnd, uncompressedSize: c.size,
            fileOffset: c.fileOffset, crc32: 0,
          });
          blob.chunkRefs.push(ref);
          blob.uncompressedEnd += state.aligned ? alignUp(c.size, 4096) : c.size;
          state.dict.set(key, ref);
          c.fresh = true;
        } else {
          useBlob(state, state.chunks[ref].blobIndex);
          state.progress.dedupChunks++;
          state.progress.dedupBytes += c.size;
          c.fresh = false;
        }
        c.ref = ref;
        state.progress.chunks++;
        c.refs![Math.floor(c.fileOffset / state.chunkSize)] = { chunk: ref, fileOffset: c.fileOffset };
      }
      yield b;
    }
  };
}
