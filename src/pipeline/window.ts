// What the pooled stages share: chunk spans for a task, and the window that restores submit order.
export function spansOf(chunks: Array<{ dataOffset: number; size: number }>): Uint32Array {
  const spans = new Uint32Array(chunks.length * 2);
  chunks.forEach((c, i) => {
    spans[2 * i] = c.dataOffset;
    spans[2 * i + 1] = c.size;
  });
  return spans;
}

/** Runs `submit` on each item with up to `window` in flight, yielding results in submit order. */
export async function* ordered<I, O>(input: AsyncIterable<I>, window: number, submit: (item: I) => Promise<O>): AsyncGenerator<O> {
  const inflight: Array<Promise<O>> = [];
  try {
    for await (const item of input) {
      const p = submit(item);
      // Avoid an unhandled rejection while it waits its turn; the await below rethrows.
      p.catch(() => undefined);
      inflight.push(p);
      if (inflight.length >= window) yield await inflight.shift()!;
    }
    while (inflight.length > 0) yield await inflight.shift()!;
  } finally {
    await Promise.allSettled(inflight);
  }
}
