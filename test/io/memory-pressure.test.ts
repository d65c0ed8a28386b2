// The addon's memoryPressure (src/native/heap.cc): a build asks V8 for a full collection between
// the walk and the bootstrap's layout without stopping the main thread for all of it. Asked, V8
// runs a full (mark-compact) collection on its own.
import { describe, expect, it } from 'vitest';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { native } from '../../src/io/native.js';

describe('memory pressure', () => {
  it('starts a full collection that V8 then finishes', async () => {
    const majors: number[] = [];
    const seen = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if ((e as unknown as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors.push(e.startTime);
    });
    seen.observe({ entryTypes: ['gc'] });
    const asked = performance.now();
    native.memoryPressure();
    // Marking runs on the helper threads and in steps on this one; allocation and a few turns of
    // the event loop give it the chance to finish.
    const keep: unknown[] = [];
    for (let round = 0; round < 200 && !majors.some((t) => t >= asked); round++) {
      for (let i = 0; i < 10_000; i++) keep.push({ i, s: `x${i}` });
      keep.length = 0;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    seen.disconnect();
    expect(majors.some((t) => t >= asked)).toBe(true);
  });
});
