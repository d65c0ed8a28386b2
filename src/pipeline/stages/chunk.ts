// Chunker: attaches each entry to the tree and cuts regular files into fixed-size chunks, a
// batch buffer of several MiB per pool task. A file the source tagged with its path is only
// planned here (its chunks' places in the buffer): the worker reads it. A tar member's chunks
// are lent in place from the source's read block, which becomes the batch's data (BlockReader).
// Any other content (a sparse member, a stage's own reader) is read here, into the batch buffer.
import { ENTRY_GROUPS, READ_PATH, type Batch, type BuildState, type ContentReader, type GroupedSource, type PendingChunk, type SourceEntry } from '../stage.js';
import type { BufferPool } from '../buffers.js';
import type { ChunkRef, TreeNode } from '../../tree/node.js';
import type { FileReads } from '../workers/chunks.js';
import { TreeAssembler } from '../../tree/assemble.js';
import { isRegNode } from '../../tree/node.js';
import { NydusError, fileShrank } from '../../errors.js';

/** A batch closes when its buffer (BATCH_BYTES, or one chunk if chunks are larger) is full or at this many chunks. */
export const BATCH_BYTES = 2 << 20;
const BATCH_CHUNKS = 512;

/**
 * A chunk as the chunker cuts it, with the fields the later stages fill already in place: the
 * object keeps one shape, its properties inside it (adding three later costs a second
 * allocation per chunk and a shape change). A class, not an object literal: V8 moves a literal's
 * allocations to the old generation once they survive, and throws away the optimized code that
 * makes them (bench/README.md).
 */
class Pending implements PendingChunk {
  digest?: Buffer = undefined;
  ref?: number = undefined;
  fresh?: boolean = undefined;
  constructor(
    public node: TreeNode,
    public refs: ChunkRef[],
    public fileOffset: number,
    public size: number,
    public dataOffset: number,
  ) {}
}

/** The reads of one batch, gathered as plain numbers and packed into typed arrays at the end. */
class ReadList {
  private spans: number[] = [];
  private paths: Buffer[] = [];
  private pathBytes = 0;
  nodes: TreeNode[] = [];

  /** Extends the last read when it is the same file and continues it, else starts one. */
  add(node: TreeNode, path: Buffer, at: number, len: number, pos: number): void {
    const k = this.nodes.length - 1;
    const s = this.spans;
    if (k >= 0 && this.nodes[k] === node && s[3 * k] + s[3 * k + 1] === at && s[3 * k + 2] + s[3 * k + 1] === pos) {
      s[3 * k + 1] += len;
      return;
    }
    s.push(at, len, pos);
    this.paths.push(path);
    this.pathBytes += path.length;
    this.nodes.push(node);
  }

  take(): { reads: FileReads; nodes: TreeNode[] } | undefined {
    const n = this.nodes.length;
    if (n === 0) return undefined;
    const paths = new Uint8Array(this.pathBytes);
    const pathEnds = new Uint32Array(n);
    let end = 0;
    this.paths.forEach((p, i) => {
      paths.set(p, end);
      end += p.length;
      pathEnds[i] = end;
    });
    const out = { reads: { spans: Float64Array.from(this.spans), paths, pathEnds, fds: new Int32Array(n).fill(-1) }, nodes: this.nodes };
    this.spans = [];
    this.paths = [];
    this.pathBytes = 0;
    this.nodes = [];
    return out;
  }
}

/**
 * A reader whose bytes already sit in buffers of the batch pool's capacity (the tar source's
 * read blocks): view() lends the next length bytes in place, and the buffer becomes the batch's
 * data with no copy. The chunker sends it to the workers once a view comes from another buffer
 * (the reader has moved on) or after release() (the reader stops writing into it).
 */
export interface BlockReader extends ContentReader {
  view(length: number, pool: BufferPool): Uint8Array | Promise<Uint8Array>;
  release(buffer: ArrayBufferLike): void;
}

/** The data of a batch whose bytes the workers read: no buffer yet (see readsInto). */
export const UNREAD = new Uint8Array(0);

/** The buffer a batch's reads go into: its own, or (UNREAD) one from the pool, as long as its chunks. */
export function readsInto(b: Batch, buffers: BufferPool): Uint8Array {
  if (b.data !== UNREAD) return b.data;
  const last = b.chunks[b.chunks.length - 1];
  return buffers.acquire().subarray(0, last ? last.dataOffset + last.size : 0);
}

/**
 * The entries a group at a time: a grouped source's own groups, taken synchronously (no
 * asynchronous step per entry), else one entry at a time, in a reused array of one.
 */
function entryGroups(entries: AsyncIterable<SourceEntry>): { next(): SourceEntry[] | undefined | Promise<SourceEntry[] | undefined>; close(): unknown } {
  const groups = (entries as Partial<GroupedSource>)[ENTRY_GROUPS];
  if (groups) {
    const it = groups.call(entries)[Symbol.iterator]();
    return { next: () => it.next().value, close: () => it.return?.() };
  }
  const it = entries[Symbol.asyncIterator]();
  const one: SourceEntry[] = [];
  return {
    next: async () => {
      const r = await it.next();
      if (r.done) return undefined;
      one[0] = r.value;
      return one;
    },
    close: () => it.return?.(),
  };
}

/**
 * The batch being filled, and the batches filled since the chunker last yielded. The entries of
 * a group are planned here in one synchronous call (planGroup), not in the chunker's generator:
 * a generator that runs the whole walk in one call is compiled on the stack (OSR), again after
 * each deoptimization, and with the per-entry work inlined that cost ~135 ms of the optimizing
 * compiler's time per /usr/share build; this method, called per group, compiles as an ordinary
 * function (still a few times, after deoptimizations: ~70-85 ms in all).
 */
class Planner {
  // Taken only when the main thread puts bytes in it: a batch of files the workers read is a
  // plan of reads and gets its buffer when it goes to them (readsInto), so batches can wait.
  data: Uint8Array | undefined = undefined;
  used = 0;
  /** While data is a reader's block (see BlockReader): that reader, to release it before it goes. */
  lender: BlockReader | undefined = undefined;
  chunks: PendingChunk[] = [];
  readonly reads = new ReadList();
  /** Batches filled, in order, for the chunker to yield. */
  readonly ready: Batch[] = [];

  constructor(readonly state: BuildState, private readonly assembler: TreeAssembler) {}

  flush(): Batch {
    if (this.data) this.lender?.release(this.data.buffer);
    this.lender = undefined;
    const b: Batch = { data: this.data ? this.data.subarray(0, this.used) : UNREAD, chunks: this.chunks, files: this.reads.take() };
    this.data = undefined;
    this.used = 0;
    this.chunks = [];
    return b;
  }

  /** Whether the next chunk, of want bytes, starts a new batch. */
  full(want: number): boolean {
    return this.lender !== undefined || this.used + want > this.state.buffers.capacity || this.chunks.length >= BATCH_CHUNKS;
  }

  /**
   * Plans the entries of group from index from on, until one has content only a reader gives
   * (returned, with its node's chunk refs sized, for the chunker to read) or the group ends (-1).
   */
  planGroup(group: SourceEntry[], from: number): number {
    const state = this.state;
    for (let k = from; k < group.length; k++) {
      const e = group[k];
      if (!this.assembler.attach(e.node, e.parent, e.replaces)) continue;
      state.progress.files++;
      const node = e.node;
      if (!isRegNode(node) || node.linkTo) continue;
      // Sized now: the bootstrap is laid out (by chunk counts) before dedup fills the last refs.
      const refs: ChunkRef[] = (node.chunks = new Array(Math.ceil(node.size / state.chunkSize)));
      if (node.size === 0) continue;
      if (!e.open) throw new NydusError('INTERNAL', 'regular file without content', { path: node.path.toString() });
      const path = e.open[READ_PATH];
      if (!path) return k;
      for (let fileOffset = 0; fileOffset < node.size; fileOffset += state.chunkSize) {
        const want = Math.min(state.chunkSize, node.size - fileOffset);
        if (this.full(want)) this.ready.push(this.flush());
        this.reads.add(node, path, this.used, want, fileOffset);
        this.chunks.push(new Pending(node, refs, fileOffset, want, this.used));
        this.used += want;
        state.progress.bytes += want;
      }
    }
    return -1;
  }
}

/** @param onWalkEnd called once every entry has passed, after the last batch went. */
export function chunker(state: BuildState, assembler: TreeAssembler, onWalkEnd?: () => void) {
  return async function* (entries: AsyncIterable<SourceEntry>): AsyncGenerator<Batch> {
    const p = new Planner(state, assembler);
    const source = entryGroups(entries);
    let done = false;
    try {
      for (;;) {
        const next = source.next();
        const group = next instanceof Promise ? await next : next;
        if (!group) break;
        for (let k = p.planGroup(group, 0); ; k = p.planGroup(group, k + 1)) {
          if (p.ready.length > 0) {
            yield* p.ready;
            p.ready.length = 0;
          }
          if (k < 0) break;
          // Content only a reader gives (a tar member, a stage's own reader): read here.
          const node = group[k].node;
          const refs = node.chunks!;
          const reader = group[k].open!();
          try {
            const lends = 'view' in reader ? (reader as BlockReader) : undefined;
            for (let fileOffset = 0; fileOffset < node.size; fileOffset += state.chunkSize) {
              const want = Math.min(state.chunkSize, node.size - fileOffset);
              if (lends) {
                const r = lends.view(want, state.buffers);
                const v = r instanceof Promise ? await r : r;
                if (v.buffer !== p.data?.buffer) {
                  if (p.chunks.length > 0) yield p.flush();
                  if (p.data) state.buffers.release(p.data);
                  p.data = new Uint8Array(v.buffer);
                  p.lender = lends;
                }
                p.chunks.push(new Pending(node, refs, fileOffset, want, v.byteOffset));
                p.used = v.byteOffset + want;
                state.progress.bytes += want;
                continue;
              }
              if (p.full(want)) yield p.flush();
              p.data ??= state.buffers.acquire();
              let got = 0;
              while (got < want) {
                const r = reader.read(p.data, p.used + got, want - got);
                const n = typeof r === 'number' ? r : await r;
                if (n === 0) throw fileShrank(node.path, node.size);
                got += n;
              }
              p.chunks.push(new Pending(node, refs, fileOffset, want, p.used));
              p.used += want;
              state.progress.bytes += want;
            }
          } finally {
            reader.close();
          }
        }
      }
      done = true;
    } finally {
      // A walk stopped early (an error downstream) closes the source as a for-await would.
      if (!done) await source.close();
    }
    // The last batch goes to the workers before the tree is laid out, so they compress it meanwhile.
    if (p.chunks.length > 0) yield p.flush();
    else if (p.data) state.buffers.release(p.data);
    onWalkEnd?.();
  };
}
