// targz-ref's view of a .tar.gz (blob.md §4.3 "ZRAN context"): one pass inflates it for the tar
// parser while the native inflater (src/native/zran.c) reports every deflate block boundary.
// Files' data ranges are cut into chunks as the output passes them, and each chunk is assigned
// a ZRAN context, a place (a block boundary, its pending bits and the 32 KiB window before it)
// from which an inflate can restart and reach the chunk, with upstream's rules for when a new
// context starts (utils/src/compress/zlib_random.rs ZranGenerator: a new one at most every
// ~1 MiB of input or 2 MiB of output, and after each gzip member that ends between chunks).
// Memory stays bounded: output pieces, boundaries and positions are kept only as far back as
// a chunk not yet cut, or the window of the boundary the next context may start at, needs.
import * as fs from 'node:fs';
import { NydusError, fsError } from '../errors.js';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { native } from '../io/native.js';
import { setPipeSize } from '../io/xattr.js';
import type { FromWorker, ToWorker, ZranWorkerData } from './zran-worker.js';

/** Size of the inflate window a context carries. */
export const ZRAN_WINDOW = 32768;
/** A ZRAN context as stored in blob.meta (40 bytes, blob.md §4.3), with its window. */
export interface ZranContext {
  inOffset: number;
  outOffset: number;
  inLen: number;
  outLen: number;
  ctxByte: number;
  ctxBits: number;
  dict: Buffer;
}

/** One chunk of a file, as the index places it. */
export interface ZranChunk {
  /** Where the chunk's data begins in the uncompressed tar. */
  tarOffset: number;
  size: number;
  /** Compressed bytes in the .tar.gz that hold it (upstream's chunk compressed_offset/size). */
  inOffset: number;
  inLen: number;
  ctxIndex: number;
  /** Offset of the chunk inside its context's output. */
  ctxOffset: number;
  /** sha256 of the chunk's bytes. */
  digest: Buffer;
}

/** When a new context starts: upstream's ZranContextGenerator thresholds (storage/src/meta/zran.rs, with 1 MiB chunks). */
export interface ZranLimits {
  minComp: number;
  maxComp: number;
  maxUncomp: number;
}
export const ZRAN_LIMITS: ZranLimits = { minComp: 512 << 10, maxComp: 1 << 20, maxUncomp: 2 << 20 };
const MAX_CONTEXTS = 1 << 24;
const U32_MAX = 0xffff_ffff;
/** A chunk's compressed size has 24 bits in chunk-info v2. */
const MAX_CHUNK_IN = 0xff_ffff;
const PIECE = 1 << 20;
const READ_SIZE = 1 << 20;
/** Output pieces the worker may have out before the main thread gives some back. */
const CAP = 16;
const DIGEST_SLAB = 1024;

interface PendingFile {
  at: number;
  size: number;
  done: (chunks: ZranChunk[]) => void;
  chunks: ZranChunk[];
}

/** A growable array of numbers with a moving start (old entries are dropped from the front). */
class Column {
  data: number[] = [];
  head = 0;
  get length(): number {
    return this.data.length - this.head;
  }
  at(i: number): number {
    return this.data[this.head + i];
  }
  drop(n: number): void {
    this.head += n;
    if (this.head > 4096 && this.head * 2 > this.data.length) {
      this.data = this.data.slice(this.head);
      this.head = 0;
    }
  }
}

/** Reads a file, FIFO or stdin in 1 MiB pieces; a file's pieces reuse two buffers, so each must be used up before the next is asked for. */
/** The worker as compiled JavaScript; under a TypeScript test runner, its copy in dist/ (as pipeline/pool.ts does). */
function workerFile(): string {
  const here = fileURLToPath(new URL('./zran-worker.js', import.meta.url));
  return here.includes('/src/sources/') ? here.replace(/\/src\/sources\//, '/dist/sources/') : here;
}

/** The input as targz-ref and estargz-ref accept it: a regular file, a FIFO or a character device. */
function checkInputFile(source: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(source);
  } catch (e) {
    throw fsError('SOURCE', source, e);
  }
  if (!st.isFile() && !st.isFIFO() && !st.isCharacterDevice()) throw new NydusError('SOURCE', 'a ref build (targz-ref, estargz-ref) reads a regular file, a FIFO or a character device (or - for stdin)', { path: source });
}

/** Stdin ('-') or a stream, as non-empty Buffers (a path is read by the worker itself). */
async function* readInput(source: string | AsyncIterable<unknown>, name: string): AsyncGenerator<Buffer> {
  const it = typeof source === 'string' ? process.stdin : source;
  if (typeof source === 'string') setPipeSize(0, READ_SIZE);
  for await (const piece of it) {
    if (!(piece instanceof Uint8Array)) throw new NydusError('SOURCE', 'the input stream yields text, not bytes', { path: name });
    if (piece.length > 0) yield Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
  }
}

export class ZranIndexer {
  readonly contexts: ZranContext[] = [];
  /** Bytes of the .tar.gz read, and their sha256 (the blob id). */
  inBytes = 0;
  /** Bytes of the tar produced so far. */
  private produced = 0;

  // Output pieces still needed (for chunk digests and windows).
  private pieces: Array<{ start: number; buf: Buffer }> = [];
  private lastPieceStart = 0;
  // Positions the input and output were at together: every block boundary and member end.
  private readonly ptIn = new Column();
  private readonly ptOut = new Column();
  // Block boundaries: positions, pending bits and byte, and where their gzip member's output began.
  private readonly bIn = new Column();
  private readonly bOut = new Column();
  private readonly bCtx = new Column();
  private readonly bMember = new Column();
  /** Output offsets where a gzip member ended. */
  private readonly memberEnds = new Column();
  private memberStart = 0;

  private readonly pending: PendingFile[] = [];
  private pendingHead = 0;
  /** Next chunk of the first pending file. */
  private nextChunk = 0;
  // The context state (upstream's curr_ci_idx, curr_block_start) and where the last chunk ended.
  private cur = -1;
  private curBlockStart = -1;
  private prevEnd = 0;
  /** Bytes inflated, for callers that measure. */
  get outBytes(): number {
    return this.produced;
  }

  constructor(private readonly chunkSize: number, private readonly name: string, private readonly limits: ZranLimits = ZRAN_LIMITS) {}

  /**
   * The tar stream: the .tar.gz (a path: a file or FIFO; '-': stdin; or a stream of bytes)
   * inflated on a worker thread (zran-worker.ts), which also hashes it, while the index follows
   * here as the pieces arrive.
   */
  async *inflate(source: string | AsyncIterable<unknown>): AsyncGenerator<Buffer> {
    const file = typeof source === 'string' && source !== '-' ? source : undefined;
    if (file !== undefined) checkInputFile(file);
    const worker = new Worker(workerFile(), { workerData: { file, piece: PIECE, cap: CAP } satisfies ZranWorkerData });
    this.worker = worker;
    const queue: FromWorker[] = [];
    let failure: unknown;
    let wake: (() => void) | undefined;
    let acked: (() => void) | undefined;
    let stopped = false;
    const poke = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    worker.on('message', (m: FromWorker) => {
      if (m.t === 'digests') {
        m.ids.forEach((id, i) => {
          this.digestBufs.get(id)!.set(new Uint8Array(m.data, i * 32, 32));
          this.digestBufs.delete(id);
        });
      } else if (m.t === 'hashed') {
        this.hashed?.();
      } else if (m.t === 'inack') {
        const a = acked;
        acked = undefined;
        a?.();
      } else {
        queue.push(m);
        poke();
      }
    });
    worker.on('error', (e) => {
      failure ??= e;
      this.failure = e;
      poke();
      this.hashed?.();
    });
    worker.on('exit', (code) => {
      if (!stopped) failure ??= new Error(`the inflate worker exited (code ${code})`);
      poke();
      this.hashed?.();
    });
    // A stream (or stdin) is fed from here, one piece in flight: the worker says when it is used up.
    const feeding = file !== undefined ? undefined : (async () => {
      for await (const piece of readInput(source, this.name)) {
        if (stopped) return;
        const ab = new ArrayBuffer(piece.length);
        new Uint8Array(ab).set(piece);
        const used = new Promise<void>((resolve) => (acked = resolve));
        worker.postMessage({ t: 'in', buf: ab, len: piece.length } satisfies ToWorker, [ab]);
        await used;
      }
      if (!stopped) worker.postMessage({ t: 'end' } satisfies ToWorker);
    })().catch((e: unknown) => {
      failure ??= e;
      poke();
    });
    const next = async (): Promise<FromWorker> => {
      for (;;) {
        if (failure !== undefined) throw failure;
        const m = queue.shift();
        if (m) return m;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    };
    let granted = CAP;
    let complete = false;
    try {
      for (;;) {
        const m = await next();
        if (m.t === 'err') throw this.workerError(m);
        if (m.t === 'end') {
          this.inBytes = m.inBytes;
          this.hex = m.digest;
          if (m.head < 3) throw new NydusError('SOURCE', `input is ${m.inBytes} bytes, too short for a gzip stream`, { path: this.name });
          if (!m.between) throw new NydusError('SOURCE', `truncated gzip stream: the input ends inside a gzip member after ${m.inBytes} bytes`, { path: this.name });
          complete = true;
          break;
        }
        if (m.t !== 'out') continue;
        for (let k = 0; k < m.n; k++) this.point(m.pts[k * 4], m.pts[k * 4 + 1], m.pts[k * 4 + 2], m.pts[k * 4 + 3]);
        if (m.len === 0) {
          worker.postMessage({ t: 'free', buf: m.buf } satisfies ToWorker, [m.buf]);
          this.process();
          continue;
        }
        const start = this.produced;
        const buf = Buffer.from(m.buf, 0, m.len);
        this.produced += m.len;
        this.pieces.push({ start, buf });
        this.lastPieceStart = start;
        this.process();
        this.prune();
        // The index keeps what a chunk not cut yet needs: let the inflater run further ahead.
        if (this.pieces.length + 4 >= granted) {
          worker.postMessage({ t: 'grant', n: CAP } satisfies ToWorker);
          granted += CAP;
        }
        yield buf;
      }
    } finally {
      stopped = true;
      acked?.();
      // A complete stream keeps its worker until finish() has the last digests.
      if (!complete) {
        this.worker = undefined;
        await worker.terminate();
      }
      await feeding;
    }
    this.process();
  }

  /** After the stream: every chunk's digest (hashed on the worker as its pieces come back), then the worker ends. */
  async finish(): Promise<void> {
    const worker = this.worker;
    if (!worker) throw new Error('zran: finish() without a completed stream');
    try {
      for (const p of this.pieces.splice(0)) this.release(p);
      const done = new Promise<void>((resolve) => (this.hashed = resolve));
      worker.postMessage({ t: 'finish' } satisfies ToWorker);
      await done;
      if (this.failure !== undefined) throw this.failure;
      if (this.digestBufs.size > 0) throw new Error(`zran: ${this.digestBufs.size} chunks were not hashed`);
    } finally {
      this.worker = undefined;
      await worker.terminate();
    }
  }

  /** Gives a piece back to the worker with the parts of chunks it holds, which it hashes. */
  private release(p: { start: number; buf: Buffer }): void {
    const end = p.start + p.buf.length;
    const segs: number[] = [];
    while (this.hashHead < this.toHash.length) {
      const r = this.toHash[this.hashHead];
      if (r.from >= end) break;
      const a = Math.max(r.from, p.start);
      segs.push(r.id, a - p.start, Math.min(r.to, end) - a, r.to - r.from);
      if (r.to > end) break;
      this.hashHead++;
    }
    if (this.hashHead > 4096) {
      this.toHash = this.toHash.slice(this.hashHead);
      this.hashHead = 0;
    }
    const ab = p.buf.buffer as ArrayBuffer;
    const s = segs.length > 0 ? Float64Array.from(segs) : undefined;
    this.worker?.postMessage({ t: 'free', buf: ab, ...(s ? { segs: s } : {}) } satisfies ToWorker, s ? [ab, s.buffer] : [ab]);
  }

  /** Chunks cut and not hashed yet, in output order; each digest's buffer is filled when its digest comes back. */
  private toHash: Array<{ id: number; from: number; to: number }> = [];
  private hashHead = 0;
  private readonly digestBufs = new Map<number, Buffer>();
  private hashSeq = 0;
  private slab = Buffer.alloc(0);
  private slabUsed = DIGEST_SLAB;
  private hashed?: () => void;
  private failure: unknown;

  private worker?: Worker;
  private hex = '';

  private workerError(m: Extract<FromWorker, { t: 'err' }>): NydusError {
    if (m.kind === 'notgzip') return new NydusError('SOURCE', 'not a gzip stream (a ref build reads a .tar.gz or an eStargz layer: it must start with 1f 8b 08)', { path: this.name });
    if (m.kind === 'fs') return fsError('SOURCE', this.name, Object.assign(new Error(m.message), { code: m.code }));
    return new NydusError('SOURCE', `corrupt gzip data near byte ${m.at}: ${m.message}`, { path: this.name });
  }

  private point(kind: number, inPos: number, outPos: number, bits: number): void {
    if (kind === 2) {
      this.memberEnds.data.push(outPos);
      this.memberStart = outPos;
      this.ptIn.data.push(inPos);
      this.ptOut.data.push(outPos);
      return;
    }
    this.bIn.data.push(inPos);
    this.bOut.data.push(outPos);
    this.bCtx.data.push(bits);
    this.bMember.data.push(this.memberStart);
    this.ptIn.data.push(inPos);
    this.ptOut.data.push(outPos);
  }

  /** Registers a regular file's data at `at` in the tar; `done` gets its chunks once the output has passed them. */
  addFile(at: number, size: number, done: (chunks: ZranChunk[]) => void): void {
    if (size === 0) return done([]);
    this.pending.push({ at, size, done, chunks: [] });
    this.process();
  }

  /** The chunks whose bytes have all been produced, in order. */
  private process(): void {
    while (this.pendingHead < this.pending.length) {
      const f = this.pending[this.pendingHead];
      while (this.nextChunk * this.chunkSize < f.size) {
        const u = f.at + this.nextChunk * this.chunkSize;
        const len = Math.min(this.chunkSize, f.size - this.nextChunk * this.chunkSize);
        // Cut once a boundary at or past its end is known: the index then does not depend on
        // how the input arrived (only boundaries and member ends are positions it uses).
        const known = this.ptOut.length > 0 ? this.ptOut.at(this.ptOut.length - 1) : -1;
        if (u + len > this.produced || u + len > known) return;
        f.chunks.push(this.cut(u, len));
        this.nextChunk++;
      }
      this.pending[this.pendingHead++] = undefined as unknown as PendingFile;
      this.nextChunk = 0;
      f.done(f.chunks);
    }
    this.pending.length = 0;
    this.pendingHead = 0;
  }

  /** Index of the last entry of a sorted column <= pos (-1 when none). */
  private static floor(col: Column, pos: number): number {
    let lo = 0;
    let hi = col.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (col.at(mid) <= pos) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** Input position from which output position `pos` is reached: the last position known at or before it. */
  private inFloor(pos: number): number {
    const i = ZranIndexer.floor(this.ptOut, pos);
    if (i < 0) throw new Error(`zran: no position at or before output ${pos}`);
    return this.ptIn.at(i);
  }

  /** Input consumed once output position `pos` has been produced: the first position known at or after it. */
  private inCeil(pos: number): number {
    const i = ZranIndexer.floor(this.ptOut, pos - 1) + 1;
    if (i >= this.ptOut.length) throw new Error(`zran: no position at or after output ${pos}`);
    return this.ptIn.at(i);
  }

  private cut(u: number, len: number): ZranChunk {
    // begin_read: the context this chunk is read from.
    const inAt = this.inFloor(u);
    const b = ZranIndexer.floor(this.bOut, u);
    if (b < 0) throw new Error(`zran: no block boundary before output ${u}`);
    let idx = this.cur;
    if (idx < 0) {
      idx = this.newContext(b);
    } else {
      const ctx = this.contexts[idx];
      const comp = inAt - ctx.inOffset;
      const uncomp = u - ctx.outOffset;
      const first = this.bIn.at(b) === this.curBlockStart;
      const m = ZranIndexer.floor(this.memberEnds, u - 1);
      const switched = m >= 0 && this.memberEnds.at(m) >= this.prevEnd;
      const { minComp, maxComp, maxUncomp } = this.limits;
      const enough = !first && (comp >= maxComp / 2 || uncomp + this.chunkSize >= maxUncomp);
      if (switched || enough) idx = this.newContext(b);
      else if (!first && comp > 2 * ctx.inLen && ctx.inLen > minComp) idx = this.newContext(b);
    }
    this.cur = idx;
    // end_read: the context now reaches the end of this chunk.
    const end = u + len;
    const inEnd = this.inCeil(end);
    const ctx = this.contexts[idx];
    ctx.inLen = inEnd - ctx.inOffset;
    ctx.outLen = end - ctx.outOffset;
    if (ctx.inLen > U32_MAX || ctx.outLen > U32_MAX) {
      throw new NydusError('SOURCE', `a deflate block near byte ${ctx.inOffset} spans more than 4 GiB: the stream cannot be indexed for random access`, { path: this.name });
    }
    if (inEnd - inAt > MAX_CHUNK_IN) {
      throw new NydusError('SOURCE', `the chunk at tar offset ${u} lies in ${inEnd - inAt} bytes of gzip data (deflate blocks too large): more than chunk-info v2 can describe (${MAX_CHUNK_IN})`, { path: this.name });
    }
    this.prevEnd = end;
    // Digests live in slabs of 1024: one small buffer per chunk costs more than its 32 bytes.
    if (this.slabUsed === DIGEST_SLAB) {
      this.slab = Buffer.alloc(32 * DIGEST_SLAB);
      this.slabUsed = 0;
    }
    const digest = this.slab.subarray(32 * this.slabUsed, 32 * ++this.slabUsed);
    const id = this.hashSeq++;
    this.digestBufs.set(id, digest);
    this.toHash.push({ id, from: u, to: end });
    return { tarOffset: u, size: len, inOffset: inAt, inLen: inEnd - inAt, ctxIndex: idx, ctxOffset: u - ctx.outOffset, digest };
  }

  private newContext(b: number): number {
    if (this.contexts.length >= MAX_CONTEXTS) throw new NydusError('SOURCE', `more than ${MAX_CONTEXTS} ZRAN contexts`, { path: this.name });
    const outPos = this.bOut.at(b);
    const bits = this.bCtx.at(b);
    const from = Math.max(this.bMember.at(b), outPos - ZRAN_WINDOW);
    this.contexts.push({
      inOffset: this.bIn.at(b), outOffset: outPos, inLen: 0, outLen: 0,
      ctxBits: bits & 7, ctxByte: (bits >> 8) & 0xff, dict: this.bytes(from, outPos),
    });
    this.curBlockStart = this.bIn.at(b);
    return this.contexts.length - 1;
  }

  /** Output bytes [from, to), copied out of the kept pieces. */
  private bytes(from: number, to: number): Buffer {
    const out = Buffer.allocUnsafe(to - from);
    this.visit(from, to, (part, at) => out.set(part, at - from));
    return out;
  }

  private visit(from: number, to: number, fn: (part: Buffer, at: number) => void): void {
    let i = 0;
    while (i < this.pieces.length && this.pieces[i].start + this.pieces[i].buf.length <= from) i++;
    if (from < to && (i >= this.pieces.length || this.pieces[i].start > from)) throw new Error(`zran: output ${from} is no longer kept`);
    for (; i < this.pieces.length && this.pieces[i].start < to; i++) {
      const p = this.pieces[i];
      const a = Math.max(from, p.start);
      const z = Math.min(to, p.start + p.buf.length);
      fn(p.buf.subarray(a - p.start, z - p.start), a);
    }
  }

  /**
   * Drops what no later chunk can need. Later chunks start at or after the first pending one,
   * or (none pending) at or after the previous piece (the parser registers a file once its
   * header is read, before it asks for the piece after the one that holds the header). Such a
   * chunk's context starts at a boundary at or after the last one before that bound.
   */
  private prune(): void {
    const f = this.pendingHead < this.pending.length ? this.pending[this.pendingHead] : undefined;
    let bound = this.lastPieceStart;
    if (this.pieces.length > 1) bound = this.pieces[this.pieces.length - 2].start;
    if (f) bound = Math.min(bound, f.at + this.nextChunk * this.chunkSize);
    const b = ZranIndexer.floor(this.bOut, bound);
    if (b > 0) {
      for (const col of [this.bIn, this.bOut, this.bCtx, this.bMember]) col.drop(b);
    }
    const keepFrom = this.bOut.length > 0 ? Math.min(bound, Math.max(this.bMember.at(0), this.bOut.at(0) - ZRAN_WINDOW)) : bound;
    const p = ZranIndexer.floor(this.ptOut, Math.min(keepFrom, bound));
    if (p > 0) {
      this.ptIn.drop(p);
      this.ptOut.drop(p);
    }
    const m = ZranIndexer.floor(this.memberEnds, Math.min(keepFrom, this.prevEnd) - 1);
    if (m > 0) this.memberEnds.drop(m);
    let k = 0;
    while (k < this.pieces.length - 2 && this.pieces[k].start + this.pieces[k].buf.length <= keepFrom) k++;
    if (k > 0) {
      for (const p of this.pieces.splice(0, k)) this.release(p);
    }
  }

  /** sha256 of the whole input, once it has been read. */
  digest(): string {
    return this.hex;
  }

  /** Every registered file was cut (the tar parser reached the end, so their data was produced). */
  get idle(): boolean {
    return this.pendingHead >= this.pending.length;
  }
}

/**
 * The ZRAN contexts and their windows as blob.meta stores them after the chunk array (blob.md
 * §4.3), written after `head` (the chunk array) in one buffer: the windows are copied once.
 */
export function encodeContexts(contexts: ZranContext[], head: Buffer = Buffer.alloc(0)): Buffer {
  const dictBytes = contexts.reduce((n, c) => n + c.dict.length, 0);
  const whole = Buffer.alloc(head.length + contexts.length * 40 + dictBytes);
  head.copy(whole, 0);
  const out = whole.subarray(head.length);
  let dictOff = 0;
  contexts.forEach((c, i) => {
    const o = i * 40;
    out.writeBigUInt64LE(BigInt(c.inOffset), o);
    out.writeBigUInt64LE(BigInt(c.outOffset), o + 8);
    out.writeBigUInt64LE(BigInt(dictOff), o + 16);
    out.writeUInt32LE(c.inLen, o + 24);
    out.writeUInt32LE(c.outLen, o + 28);
    out.writeUInt32LE(c.dict.length, o + 32);
    out[o + 36] = c.ctxByte;
    out[o + 37] = c.ctxBits;
    c.dict.copy(out, contexts.length * 40 + dictOff);
    dictOff += c.dict.length;
  });
  return whole;
}

/** Parses the contexts of a blob.meta table: `data` is the table from the zran offset on. */
export function decodeContexts(data: Buffer, count: number, what: string): ZranContext[] {
  if (count * 40 > data.length) throw new NydusError('FORMAT', `${what}: ${count} ZRAN contexts need ${count * 40} bytes, the table has ${data.length}`);
  const dictBase = count * 40;
  const out: ZranContext[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * 40;
    const dictOff = Number(data.readBigUInt64LE(o + 16));
    const dictSize = data.readUInt32LE(o + 32);
    if (dictSize > ZRAN_WINDOW || dictBase + dictOff + dictSize > data.length) {
      throw new NydusError('FORMAT', `${what}: ZRAN context ${i} has a window of ${dictSize} bytes at ${dictOff}, outside the table`);
    }
    const bits = data[o + 37];
    if (bits > 7) throw new NydusError('FORMAT', `${what}: ZRAN context ${i} has ctx_bits ${bits} (at most 7)`);
    out.push({
      inOffset: Number(data.readBigUInt64LE(o)), outOffset: Number(data.readBigUInt64LE(o + 8)),
      inLen: data.readUInt32LE(o + 24), outLen: data.readUInt32LE(o + 28),
      ctxByte: data[o + 36], ctxBits: bits, dict: data.subarray(dictBase + dictOff, dictBase + dictOff + dictSize),
    });
  }
  return out;
}

/**
 * Inflates from a context's start up to `want` bytes of its output; `input` holds the .tar.gz
 * bytes from ctx.inOffset on. Returns the output and how many bytes were inflated.
 */
export function inflateFrom(ctx: ZranContext, input: Uint8Array, want: number): Buffer {
  const out = Buffer.allocUnsafe(want);
  const res = new Float64Array(2);
  native.zranExtract(input, ctx.ctxBits, ctx.ctxByte, ctx.dict, out, res);
  return out.subarray(0, res[1]);
}
