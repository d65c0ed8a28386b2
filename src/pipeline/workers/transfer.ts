// Marks a pool task's result buffers for transfer back to the main thread, as piscina's move()
// does, without loading piscina's pool module (its queues, histograms, balancers: some 40 ms of
// start-up in every worker and on the main thread) for one function: piscina's own worker
// script has already loaded the small module that marks values, and the two symbols are global.
import { createRequire } from 'node:module';
import * as path from 'node:path';

const require = createRequire(import.meta.url);
let mark: ((value: object) => void) | undefined;

function marker(): (value: object) => void {
  try {
    const common = require(path.join(path.dirname(require.resolve('piscina')), 'common.js')) as { markMovable?: unknown };
    if (typeof common.markMovable === 'function') return common.markMovable as (value: object) => void;
  } catch {
    // Another piscina layout: its public move() below.
  }
  const { move } = require('piscina') as { move: (value: object) => unknown };
  return (value) => void move(value);
}

/**
 * The result, with `buffers` moved (not copied) back to the main thread. A view of shared memory
 * (a buffer the main thread lent, and keeps its own view of) is left out of the result.
 */
export function moved<T extends object>(value: T, buffers: ArrayBufferLike[]): T {
  mark ??= marker();
  const fields = value as Record<string, unknown>;
  for (const k of Object.keys(fields)) {
    const f = fields[k];
    if (ArrayBuffer.isView(f) && f.buffer instanceof SharedArrayBuffer) fields[k] = undefined;
  }
  const own = buffers.filter((b) => !(b instanceof SharedArrayBuffer));
  const v = { [Symbol.for('Piscina.transferable')]: own, [Symbol.for('Piscina.valueOf')]: value };
  mark(v);
  return v as unknown as T;
}
