// The worker pool and the batch buffers shared by the pooled stages.
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';

/** The worker as compiled JavaScript; under a TypeScript test runner, its copy in dist/. */
function workerFile(): string {
  const here = fileURLToPath(new URL('./workers/chunks.js', import.meta.url));
  return here.includes('/src/pipeline/') ? here.replace(/\/src\/pipeline\/workers\//, '/dist/pipeline/workers/') : here;
}

export class ChunkPool {
  private readonly pool: Piscina;

  constructor(threads: number) {
    this.pool = new Piscina({
      filename: workerFile(), minThreads: threads, maxThreads: threads, idleTimeout: 1000,
      // Workers hold one batch at a time: a small young generation keeps their footprint small.
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
      // Tasks wait in the worker's own queue: a worker finishing one starts the next without
      // waiting for the main thread, which is often busy reading files synchronously.
      concurrentTasksPerWorker: 3,
    });
  }

  /** Runs a task; its data buffer (and out buffer, if any) moves to the worker and back. */
  run<R>(name: 'read' | 'digest' | 'compress', task: { data: Uint8Array; out?: Uint8Array }): Promise<R> {
    const transferList = [task.data.buffer as ArrayBuffer];
    if (task.out) transferList.push(task.out.buffer as ArrayBuffer);
    return this.pool.run(task, { name, transferList });
  }

  destroy(): Promise<void> {
    return this.pool.destroy();
  }
}

export { BufferPool } from './buffers.js';

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
