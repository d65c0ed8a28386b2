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
import { createHash } from 'node:crypto';
import { NydusError, fsError } from '../errors.js';
import { native } from '../io/native.js';
import { setPipeSize } from '../io/xattr.js';

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
const PIECE = 256 << 10;
const READ_SIZE = 1 << 20;
const MAX_POINTS = 4096;
const GZIP_MAGIC = [0x1f, 0x8b, 0x08];

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
export async function* readInput(source: string | AsyncIterable<unknown>, name: string): AsyncGenerator<Buffer> {
  if (typeof source !== 'string' || source === '-') {
    const it = typeof source === 'string' ? process.stdin : source;
    if (typeof source === 'string') setPipeSize(0, READ_SIZE);
    for await (const piece of it) {
      if (!(piece instanceof Uint8Array)) throw new NydusError('SOURCE', 'the input stream yields text, not bytes', { path: name });
      if (piece.length > 0) yield Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    }
    return;
  }
  let fh: fs.promises.FileHandle;
  try {
    const st = fs.statSync(source);
    if (!st.isFile() && !st.isFIFO() && !st.isCharacterDevice()) throw new NydusError('SOURCE', 'targz-ref reads a regular file, a FIFO or a character device (or - for stdin)', { path: source });
    fh = await fs.promises.open(source, 'r');
    if (st.isFIFO()) setPipeSize(fh.fd, READ_SIZE);
  } catch (e) {
    if (e instanceof NydusError) throw e;
    throw fsError('SOURCE', source, e);
  }
  try {
    // Two buffers in turn: the consumer is done with a piece (hashed, inflated) before it asks for the next.
    const ring = [Buffer.allocUnsafeSlow(READ_SIZE), Buffer.allocUnsafeSlow(READ_SIZE)];
    for (let k = 0; ; k++) {
      const buf = ring[k & 1];
      let n: number;
      try {
        n = (await fh.read(buf, 0, buf.length, null)).bytesRead;
      } catch (e) {
        throw fsError('SOURCE', source, e);
      }
      if (n === 0) return;
      yield buf.subarray(0, n);
    }
  } finally {
    await fh.close();
  }
}

export class ZranIndexer {
  readonly contexts: ZranContext[] = [];
  /** Bytes of the .tar.gz read, and their sha256 (the blob id). */
  inBytes = 0;
  private readonly hash = createHash('sha256');
  /** Bytes of the tar produced so far. */
  private produced = 0;
  private inTotal = 0;

  // Output pieces still needed (for chunk digests and windows).
  private pieces: Array<{ start: number; buf: Buffer }> = [];
  private free: Buffer[] = [];
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

  /** The tar stream: inflates `input`, hashing it, while the index follows. */
  async *inflate(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    const h = native.zranNew();
    const points = new Float64Array(MAX_POINTS * 4);
    const res = new Float64Array(4);
    let between = true;
    let head = 0;
    for await (const piece of input) {
      if (head < 3) {
        for (let i = 0; i < piece.length && head < 3; i++, head++) {
          if (piece[i] !== GZIP_MAGIC[head]) throw new NydusError('SOURCE', 'not a gzip stream (targz-ref reads a .tar.gz: it must start with 1f 8b 08)', { path: this.name });
        }
      }
      this.hash.update(piece);
      this.inBytes += piece.length;
      let used = 0;
      while (used < piece.length) {
        const out = this.free.pop() ?? Buffer.allocUnsafeSlow(PIECE);
        try {
          native.zranRun(h, piece.subarray(used), out, points, res);
        } catch (e) {
          throw new NydusError('SOURCE', `corrupt gzip data near byte ${this.inTotal}: ${(e as Error).message}`, { path: this.name });
        }
        const [inUsed, outUsed, n] = res;
        between = res[3] === 1;
        for (let k = 0; k < n; k++) this.point(points[k * 4], points[k * 4 + 1], points[k * 4 + 2], points[k * 4 + 3]);
        used += inUsed;
        this.inTotal += inUsed;
        if (outUsed > 0) {
          const start = this.produced;
          this.produced += outUsed;
          this.pieces.push({ start, buf: out.subarray(0, outUsed) });
          this.lastPieceStart = start;
          this.process();
          this.prune();
          yield out.subarray(0, outUsed);
        } else {
          this.free.push(out);
          if (inUsed === 0 && n === 0) throw new NydusError('SOURCE', `corrupt gzip data near byte ${this.inTotal}: the inflater makes no progress`, { path: this.name });
          if (n > 0) this.process();
        }
      }
    }
    if (head < 3) throw new NydusError('SOURCE', `input is ${this.inBytes} bytes, too short for a gzip stream`, { path: this.name });
    if (!between) throw new NydusError('SOURCE', `truncated gzip stream: the input ends inside a gzip member after ${this.inBytes} bytes`, { path: this.name });
    this.process();
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
    return { tarOffset: u, size: len, inOffset: inAt, inLen: inEnd - inAt, ctxIndex: idx, ctxOffset: u - ctx.outOffset, digest: this.digestOf(u, end) };
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

  private digestOf(from: number, to: number): Buffer {
    const h = createHash('sha256');
    this.visit(from, to, (part) => h.update(part));
    return h.digest();
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
      for (const p of this.pieces.splice(0, k)) if (this.free.length < 8) this.free.push(Buffer.from(p.buf.buffer, p.buf.byteOffset, PIECE));
    }
  }

  /** sha256 of the whole input, once it has been read. */
  digest(): string {
    return this.hash.digest('hex');
  }

  /** Every registered file was cut (the tar parser reached the end, so their data was produced). */
  get idle(): boolean {
    return this.pendingHead >= this.pending.length;
  }
}

/** The ZRAN contexts and their windows as blob.meta stores them after the chunk array (blob.md §4.3). */
export function encodeContexts(contexts: ZranContext[]): Buffer {
  const dictBytes = contexts.reduce((n, c) => n + c.dict.length, 0);
  const out = Buffer.alloc(contexts.length * 40 + dictBytes);
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
  return out;
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
