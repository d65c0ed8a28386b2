// What the pooled stages share: chunk spans for a task, and the window that restores submit order.
export function spansOf(chunks: Array<{ dataOffset: number; size: number }>): Uint32Array {
  const spans = new Uint32Array(chunks.length * 2);
  chunks.forEach((c, i) => {
    spans[2 * i] = c.dataOffset;
    spans[2 * i + 1] = c.size;
  });
  return spans;
}

/**
 * Pool tasks a pooled stage keeps in flight: four per thread, and one. Results come back in submit
 * order, and the stages after them (dedup, the sink, the blob's writer thread) share the cores with
 * the workers: whenever one of them is not scheduled for a few milliseconds, no new task goes out,
 * and a worker whose queue runs dry sits idle. With two per thread, a 2-core build's cores were
 * idle ~10% of the time between its first and last chunk (perf record -a), with four ~5%.
 */
export const poolWindow = (threads: number): number => 4 * threads + 1;

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

/**
 * Pulls from `input` ahead of the consumer, keeping up to `max` items queued, but only while the
 * items pulled are `cheap` (a batch of planned reads, with no buffer yet): the walk can then run
 * ahead of the workers, so that it ends, and the bootstrap is laid out, while they still have
 * batches to take. An item that is not cheap (bytes already in a buffer) stops the pulling until
 * the consumer has taken it, so memory stays as without the queue.
 */
export async function* ahead<T>(input: AsyncIterable<T>, max: number, cheap: (item: T) => boolean): AsyncGenerator<T> {
  const it = input[Symbol.asyncIterator]();
  const queue: T[] = [];
  let done = false;
  let failure: { error: unknown } | undefined;
  let stopped = false;
  /** Wakes the consumer (an item or the end arrived) or the pump (room in the queue). */
  let wakeConsumer: (() => void) | undefined;
  let wakePump: (() => void) | undefined;
  const pump = (async () => {
    try {
      while (!stopped) {
        const r = await it.next();
        if (r.done) break;
        queue.push(r.value);
        wakeConsumer?.();
        // A turn of the event loop per item: a walk that never waits (the directory source reads
        // synchronously) must not hold back the workers' results while it runs ahead.
        await new Promise<void>((resolve) => setImmediate(resolve));
        while (!stopped && (queue.length >= max || (queue.length > 0 && !cheap(queue[queue.length - 1])))) {
          await new Promise<void>((resolve) => (wakePump = resolve));
          wakePump = undefined;
        }
      }
    } catch (e) {
      failure = { error: e };
    } finally {
      done = true;
      wakeConsumer?.();
    }
  })();
  try {
    for (;;) {
      if (queue.length > 0) {
        const item = queue.shift()!;
        wakePump?.();
        yield item;
        continue;
      }
      if (failure) throw failure.error;
      if (done) return;
      await new Promise<void>((resolve) => (wakeConsumer = resolve));
      wakeConsumer = undefined;
    }
  } finally {
    stopped = true;
    wakePump?.();
    // The input is closed once the pump's step is over. Awaited only when that has happened: a
    // consumer that stops early (an error) must not wait on a source waiting on a stalled stream.
    const closing = pump.then(() => it.return?.());
    closing.catch(() => undefined);
    if (done) await closing;
  }
}
