// Digester: the chunk digest over the uncompressed bytes, on the main thread (blake3 runs at
// several GB/s natively, so a worker round trip would cost more than it saves).
import type { Batch, BuildState } from '../stage.js';

export function digester(state: BuildState) {
  const digest = state.digester.digest;
  return async function* (batches: AsyncIterable<Batch>): AsyncGenerator<Batch> {
    for await (const b of batches) {
      for (const c of b.chunks) c.digest = digest(b.data.subarray(c.dataOffset, c.dataOffset + c.size));
      yield b;
    }
  };
}
