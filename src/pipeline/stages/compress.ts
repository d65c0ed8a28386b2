// Compressor: hands each batch's fresh chunks to a piscina pool (or compresses inline when
// there is no pool) and yields batches back in submit order, keeping a bounded window in flight.
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { Batch, BuildState } from '../stage.js';
import compressInline, { type CompressResult, type CompressTask } from '../workers/compress.js';

/** The worker as compiled JavaScript; under a TypeScript test runner, its copy in dist/. */
function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  const js = here.endsWith('.ts') ? here.replace(/\/src\/(?!.*\/src\/)/, '/dist/').replace(/\.ts$/, '.js') : here;
  return js.replace(/stages\/compress\.js$/, 'workers/compress.js');
}

function task(state: BuildState, b: Batch): CompressTask {
  const fresh = b.chunks.filter((c) => c.fresh);
  const spans = new Uint32Array(fresh.length * 2);
  fresh.forEach((c, i) => {
    spans[2 * i] = c.dataOffset;
    spans[2 * i + 1] = c.size;
  });
  return { compressor: state.compressor.name, data: b.data, spans };
}

function apply(b: Batch, r: CompressResult): Batch {
  b.out = r.out;
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
    if (state.compressor.name === 'none') {
      for await (const b of batches) yield storeRaw(b);
      return;
    }
    if (state.threads <= 0) {
      for await (const b of batches) yield apply(b, compressInline(task(state, b)));
      return;
    }
    const pool = new Piscina({ filename: workerFile(), minThreads: state.threads, maxThreads: state.threads });
    const window = state.threads * 2;
    const inflight: Array<Promise<Batch>> = [];
    try {
      for await (const b of batches) {
        const t = task(state, b);
        inflight.push(pool.run(t, { transferList: [t.data.buffer as ArrayBuffer] }).then((r: CompressResult) => apply(b, r)));
        if (inflight.length >= window) yield await inflight.shift()!;
      }
      while (inflight.length > 0) yield await inflight.shift()!;
    } finally {
      // Settle what is still running before tearing the pool down (an error upstream).
      await Promise.allSettled(inflight);
      await pool.destroy();
    }
  };
}
