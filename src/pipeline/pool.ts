// The worker pool: piscina is loaded (required) only when a build starts its workers.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Piscina } from 'piscina';
import { isShared } from './buffers.js';

const require = createRequire(import.meta.url);

/** The worker entry as compiled JavaScript (chunks-entry.cts); under a TypeScript test runner, its copy in dist/. */
function workerFile(): string {
  const here = fileURLToPath(new URL('./workers/chunks-entry.cjs', import.meta.url));
  return here.includes('/src/pipeline/') ? here.replace(/\/src\/pipeline\/workers\//, '/dist/pipeline/workers/') : here;
}

export class ChunkPool {
  private pool?: Piscina;

  /**
   * The threads start with the first task, not here: a build with nothing to read (an empty
   * directory, a tree of empty files) never pays for starting and ending them, and a real one
   * hands its first batch over a few milliseconds into the walk.
   */
  constructor(readonly threads: number) {}

  /**
   * Piscina is required (CommonJS, synchronously) here, not imported: an import's resolution
   * takes several turns of the event loop, and the walk, which runs ahead a directory per turn,
   * held a large build's workers back by 40-60 ms that way.
   */
  private start(): Piscina {
    const { Piscina: Pool } = require('piscina') as typeof import('piscina');
    return (this.pool = new Pool({
      filename: workerFile(), minThreads: this.threads, maxThreads: this.threads, idleTimeout: 1000,
      // Workers hold one batch at a time: a small young generation keeps their footprint small.
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
      // Tasks wait in the worker's own queue: a worker finishing one starts the next without
      // waiting for the main thread, which is often busy reading files synchronously.
      concurrentTasksPerWorker: 3,
      // Nothing reads its run and wait histograms.
      recordTiming: false,
    }));
  }

  /**
   * Runs a task; its data buffer (and out buffer, if any) moves to the worker and back, or, when
   * shared, is lent: the worker leaves it out of the result (workers/transfer.ts), and the result
   * gets this thread's own view back.
   */
  async run<R extends { data: Uint8Array; out?: Uint8Array }>(name: 'read' | 'digest' | 'compress', task: { data: Uint8Array; out?: Uint8Array }): Promise<R> {
    const transferList: ArrayBuffer[] = [];
    for (const b of [task.data, task.out]) if (b && !isShared(b)) transferList.push(b.buffer as ArrayBuffer);
    const r = (await (this.pool ?? this.start()).run(task, { name, transferList })) as R;
    if (isShared(task.data)) r.data = task.data;
    if (task.out && isShared(task.out)) r.out = task.out;
    return r;
  }

  destroy(): Promise<void> {
    return this.pool ? this.pool.destroy() : Promise.resolve();
  }
}

export { BufferPool } from './buffers.js';
