// Buffers of one capacity, reused: the build's batch buffers, export's read buffers. A fresh
// large buffer per use costs a page fault per 4 KiB and an unmap when freed, and grows the heap.
// Its own module so that users without the worker pool do not load piscina.

/** True for a view of shared memory (a buffer the threads share instead of moving it back and forth). */
export const isShared = (view: Uint8Array): boolean => view.buffer instanceof SharedArrayBuffer;

/**
 * Batch buffers of one capacity, reused so the heap does not grow with the input. Shared buffers
 * are for buffers that go to other threads: a moved buffer comes back as a new young-generation
 * object holding megabytes off the heap, and V8 answers such "external memory pressure" with
 * extra scavenges of the main thread's heap (a dozen per build of 500 MB); a shared buffer is
 * sent as a reference, and the main thread keeps its own long-lived view of it.
 */
export class BufferPool {
  private readonly free: Uint8Array[] = [];
  constructor(readonly capacity: number, private readonly keep = 8, private readonly shared = false) {}

  /** Drops the idle buffers (the pipeline is done with them). */
  clear(): void {
    this.free.length = 0;
  }

  acquire(): Uint8Array {
    return this.free.pop() ?? new Uint8Array(this.shared ? new SharedArrayBuffer(this.capacity) : new ArrayBuffer(this.capacity));
  }

  /** Returns a batch's buffer (any view of it) for reuse. */
  release(view: Uint8Array): void {
    const buf = view.buffer;
    if (buf.byteLength !== this.capacity || this.free.length >= this.keep) return;
    this.free.push(new Uint8Array(buf));
  }
}
