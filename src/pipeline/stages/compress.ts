// Compressor: the fresh chunks of each batch go to the worker pool (or are compressed inline
// without one); batches come back in submit order through a bounded window. A batch the workers
// already compressed (before dedup) only sheds the stored bytes of its duplicates here.
import type { Batch, BuildState } from '../stage.js';
import { ordered, poolWindow, spansOf } from '../window.js';
import { compressChunks, type CompressResult } from '../workers/chunks.js';

function apply(b: Batch, r: CompressResult): Batch {
  b.data = r.data;
  b.out = r.out.subarray(0, r.used);
  b.stored = Array.from(r.sizes, (s) => ({ size: Math.abs(s), compressed: s > 0 }));
  return b;
}

/**
 * The fresh chunks' stored bytes out of what the workers compressed: the whole buffer when every
 * chunk is fresh, else moved down in place over the duplicates'. Undefined when a fresh chunk was
 * not compressed (a repeat within the batch that dedup nonetheless kept).
 */
function fromPre(b: Batch, state: BuildState): Batch | undefined {
  const { out, sizes } = b.pre!;
  b.pre = undefined;
  const stored: Array<{ size: number; compressed: boolean }> = [];
  let from = 0;
  let to = 0;
  b.chunks.forEach((c, i) => {
    const s = sizes[i];
    const n = Math.abs(s);
    if (c.fresh) {
      if (s === 0) return;
      if (to !== from) out.copyWithin(to, from, from + n);
      to += n;
      stored.push({ size: n, compressed: s > 0 });
    }
    from += n;
  });
  if (stored.length !== b.chunks.filter((c) => c.fresh).length) {
    state.buffers.release(out);
    return undefined;
  }
  b.out = out.subarray(0, to);
  b.stored = stored;
  return b;
}

/** The chunks a batch stores on their own: the fresh ones, but those the sink batches. */
export const storedAlone = (b: Batch, state: BuildState) => b.chunks.filter((c) => c.fresh && !state.batched?.(c));

/** Whether the chunks' bytes are all of data, back to back (not chunks lent in place from a tar's read block). */
function backToBack(b: Batch): boolean {
  let end = 0;
  for (const c of b.chunks) {
    if (c.dataOffset !== end) return false;
    end += c.size;
  }
  return end === b.data.length;
}

/**
 * Identity "compression": the fresh chunks' raw bytes where they are in data, as one view when
 * all are fresh and back to back, else as spans of it (runs of adjacent fresh chunks); nothing is
 * copied.
 */
function storeRaw(b: Batch, state: BuildState): Batch {
  const fresh = storedAlone(b, state);
  b.out = b.data;
  if (fresh.length !== b.chunks.length || !backToBack(b)) {
    const spans: number[] = [];
    let start = 0;
    let end = -1;
    for (const c of fresh) {
      if (c.dataOffset !== end) {
        if (end >= 0) spans.push(start, end - start);
        start = c.dataOffset;
      }
      end = c.dataOffset + c.size;
    }
    if (end >= 0) spans.push(start, end - start);
    b.outSpans = spans;
  }
  b.stored = fresh.map((c) => ({ size: c.size, compressed: false }));
  return b;
}

/** @param precompressed whether the workers compressed every batch already (no window is kept then). */
export function compressor(state: BuildState, precompressed: boolean) {
  return async function* (batches: AsyncIterable<Batch>): AsyncGenerator<Batch> {
    const algo = state.compressor.name;
    if (algo === 'none') {
      for await (const b of batches) yield storeRaw(b, state);
      return;
    }
    const task = (b: Batch) => ({ algo, data: b.data, out: state.buffers.acquire(), spans: spansOf(storedAlone(b, state)) });
    const pool = state.pool;
    if (!pool || precompressed) {
      for await (const b of batches) yield (b.pre && fromPre(b, state)) || apply(b, compressChunks(task(b)));
      return;
    }
    yield* ordered(batches, poolWindow(state.threads), async (b) => apply(b, await pool.run<CompressResult>('compress', task(b))));
  };
}
