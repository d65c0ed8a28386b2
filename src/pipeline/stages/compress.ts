// Compressor: the fresh chunks of each batch go to the worker pool (or are compressed inline
// without one); batches come back in submit order through a bounded window.
import type { Batch, BuildState } from '../stage.js';
import { ordered, spansOf } from '../pool.js';
import { compressChunks, type CompressResult } from '../workers/chunks.js';

function apply(b: Batch, r: CompressResult): Batch {
  b.data = r.data;
  b.out = r.out.subarray(0, r.used);
  b.stored = Array.from(r.sizes, (s) => ({ size: Math.abs(s), compressed: s > 0 }));
  return b;
}

/** Identity "compression": the fresh chunks' raw bytes, without copying when all are fresh. */
function storeRaw(b: Batch): Batch {
  const fresh = b.chunks.filter((c) => c.fresh);
  if (fresh.length === b.chunks.length) {
    b.out = b.data;
  } else {
    const out = new Uint8Array(fresh.reduce((n, c) => n + c.size, 0));
    let off = 0;
    for (const c of fresh) {
      out.set(b.data.subarray(c.dataOffset, c.dataOffset + c.size), off);
      off += c.size;
    }
    b.out = out;
  }
  b.stored = fresh.map((c) => ({ size: c.size, compressed: false }));
  return b;
}

export function compressor(state: BuildState) {
  return async function* (batches: AsyncIterable<Batch>): AsyncGenerator<Batch> {
    const algo = state.compressor.name;
    if (algo === 'none') {
      for await (const b of batches) yield storeRaw(b);
      return;
    }
    const pool = state.pool;
    if (!pool) {
      for await (const b of batches) yield apply(b, compressChunks({ algo, data: b.data, out: state.buffers.acquire(), spans: spansOf(b.chunks.filter((c) => c.fresh)) }));
      return;
    }
    yield* ordered(batches, 2 * state.threads + 1, async (b) =>
      apply(b, await pool.run<CompressResult>('compress', { algo, data: b.data, out: state.buffers.acquire(), spans: spansOf(b.chunks.filter((c) => c.fresh)) })),
    );
  };
}
