// Buffers of one capacity, reused: the build's batch buffers, export's read buffers. A fresh
// large buffer per use costs a page fault per 4 KiB and an unmap when freed, and grows the heap.
// Its own module so that users without the worker pool do not load piscina.

/** Batch buffers of one capacity, reused so the heap does not grow with the input. */
export class BufferPool {
  private readonly free: Uint8Array[] = [];
  constructor(readonly capacity: number, private readonly keep = 8) {}

  /** Drops the idle buffers (the pipeline is done with them). */
  clear(): void {
    this.free.length = 0;
  }

  acquire(): Uint8Array {
    return this.free.pop() ?? new Uint8Array(this.capacity);
  }

  /** Returns a batch's buffer (any view of it) for reuse. */
  release(view: Uint8Array): void {
    const buf = view.buffer;
    if (buf.byteLength !== this.capacity || this.free.length >= this.keep) return;
    this.free.push(new Uint8Array(buf as ArrayBuffer));
  }
}
