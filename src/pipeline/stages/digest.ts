// Digester: one pool task per batch reads the files the chunker only planned, digests every
// chunk over its uncompressed bytes and, when no batch stage needs the raw chunks between dedup
// and compression, compresses them too (dedup then only drops the stored bytes of duplicates).
// Without a pool the same function runs on the main thread.
import type { Batch, BuildState } from '../stage.js';
import { ordered, poolWindow, spansOf } from '../window.js';
import { readChunks, type ReadResult, type ReadTask } from '../workers/chunks.js';
import { readsInto } from './chunk.js';
import { NydusError, fileShrank, fsError, showPath } from '../../errors.js';

/** The user's error for a read that failed in the worker, naming the file as the source would. */
function readError(b: Batch, f: NonNullable<ReadResult['failure']>): NydusError {
  const { reads, nodes } = b.files!;
  const node = nodes[f.read];
  if (f.shrank) return fileShrank(node.path, node.size);
  const start = f.read > 0 ? reads.pathEnds[f.read - 1] : 0;
  const abs = Buffer.from(reads.paths.buffer, reads.paths.byteOffset + start, reads.pathEnds[f.read] - start);
  return fsError('SOURCE', showPath(abs), Object.assign(new Error(f.message), { code: f.code }));
}

/** @param compress whether the workers compress every chunk before dedup (no batch stage in between). */
export function digester(state: BuildState, compress: boolean) {
  const algo = compress && state.compressor.name !== 'none' ? state.compressor.name : undefined;
  const task = (b: Batch): ReadTask => ({
    digester: state.digester.name, compressor: algo, data: readsInto(b, state.buffers), out: algo ? state.buffers.acquire() : undefined,
    spans: spansOf(b.chunks), reads: b.files?.reads,
  });
  const apply = (b: Batch, r: ReadResult): Batch => {
    if (r.failure) throw readError(b, r.failure);
    b.data = r.data;
    const all = Buffer.from(r.digests.buffer, r.digests.byteOffset, r.digests.byteLength);
    b.chunks.forEach((c, i) => (c.digest = all.subarray(32 * i, 32 * i + 32)));
    if (r.sizes && r.out) b.pre = { out: r.out, sizes: r.sizes, used: r.used };
    b.files = undefined;
    return b;
  };
  return async function* (batches: AsyncIterable<Batch>): AsyncGenerator<Batch> {
    const pool = state.pool;
    if (!pool) {
      for await (const b of batches) yield apply(b, readChunks(task(b)));
      return;
    }
    yield* ordered(batches, poolWindow(state.threads), async (b) => apply(b, await pool.run<ReadResult>('read', task(b))));
  };
}
