// Digester: the chunk digest over the uncompressed bytes, in the worker pool when there is one
// (the main thread is the pipeline's busiest: it walks, reads and writes).
import type { Batch, BuildState } from '../stage.js';
import { ordered, spansOf } from '../pool.js';
import type { DigestResult } from '../workers/chunks.js';

export function digester(state: BuildState) {
  return async function* (batches: AsyncIterable<Batch>): AsyncGenerator<Batch> {
    const pool = state.pool;
    if (!pool) {
      const digest = state.digester.digest;
      for await (const b of batches) {
        for (const c of b.chunks) c.digest = digest(b.data.subarray(c.dataOffset, c.dataOffset + c.size));
        yield b;
      }
      return;
    }
    yield* ordered(batches, 2 * state.threads + 1, async (b) => {
      const r = await pool.run<DigestResult>('digest', { algo: state.digester.name, data: b.data, spans: spansOf(b.chunks) });
      b.data = r.data;
      const all = Buffer.from(r.digests.buffer, r.digests.byteOffset, r.digests.byteLength);
      b.chunks.forEach((c, i) => (c.digest = all.subarray(32 * i, 32 * i + 32)));
      return b;
    });
  };
}
