// Chunker: attaches each entry to the tree and cuts regular files into fixed-size chunks,
// reading them straight into a batch buffer so the pool gets several MiB per task.
import type { Batch, BuildState, PendingChunk, SourceEntry } from '../stage.js';
import { TreeAssembler } from '../../tree/assemble.js';
import { isRegNode } from '../../tree/node.js';
import { NydusError } from '../../errors.js';

/** A batch closes when its buffer (BATCH_BYTES, or one chunk if chunks are larger) is full or at this many chunks. */
export const BATCH_BYTES = 2 << 20;
const BATCH_CHUNKS = 512;

export function chunker(state: BuildState, assembler: TreeAssembler) {
  const capacity = state.buffers.capacity;
  return async function* (entries: AsyncIterable<SourceEntry>): AsyncGenerator<Batch> {
    let data = state.buffers.acquire();
    let used = 0;
    let chunks: PendingChunk[] = [];
    const flush = (): Batch => {
      const b: Batch = { data: data.subarray(0, used), chunks };
      data = state.buffers.acquire();
      used = 0;
      chunks = [];
      return b;
    };
    for await (const e of entries) {
      if (!assembler.attach(e.node, e.parent, e.replaces)) continue;
      state.progress.files++;
      const node = e.node;
      if (!isRegNode(node) || node.linkTo) continue;
      node.chunks = [];
      if (node.size === 0) continue;
      if (!e.open) throw new NydusError('INTERNAL', 'regular file without content', { path: node.path.toString() });
      const reader = e.open();
      try {
        for (let fileOffset = 0; fileOffset < node.size; fileOffset += state.chunkSize) {
          const want = Math.min(state.chunkSize, node.size - fileOffset);
          if (used + want > capacity || chunks.length >= BATCH_CHUNKS) yield flush();
          let got = 0;
          while (got < want) {
            const r = reader.read(data, used + got, want - got);
            const n = typeof r === 'number' ? r : await r;
            if (n === 0) throw new NydusError('SOURCE', `file shrank while reading (expected ${node.size} bytes)`, { path: node.path.toString() });
            got += n;
          }
          chunks.push({ node, fileOffset, size: want, dataOffset: used });
          used += want;
          state.progress.bytes += want;
        }
      } finally {
        reader.close();
      }
    }
    if (chunks.length > 0) yield flush();
  };
}
