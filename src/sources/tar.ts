// Tar source for tar-rafs / targz-rafs: one pass over a file, FIFO, stdin or stream (gunzipped
// when it starts with 1f 8b 08), yielding the synthetic root, implied parents and one entry per
// member in stream order. A regular file's bytes are read from the stream while its entry is
// current; whatever the consumer leaves is skipped when it asks for the next entry.
// Our own parser, not tar-stream: PAX values must stay raw bytes (binary xattrs, non-UTF-8 paths)
// and upstream's errors need the headers tar-stream hides (PAX global, GNU sparse, v7 'L'/'K'/'x').
// Sparse members (old GNU 'S' headers; PAX sparse formats 0.0, 0.1 and 1.0), which upstream
// refuses or stores as written, are expanded to regular files whose holes read as zeros.
// The tar is hostile: what a header only claims (sparse holes, sizes, map counts) is bounded by
// format/limits.ts before any work follows it, paths by PATH_MAX, DEPTH_MAX and NAME_MAX, and a
// member that upstream would drop silently (under a symlink or file) or a dangling extension
// header is refused, naming the member.
import * as fs from 'node:fs';
import { setPipeSize } from '../io/xattr.js';
import * as zlib from 'node:zlib';
import { Readable, pipeline } from 'node:stream';
import { NydusError, fsError } from '../errors.js';
import { encodeDev } from '../format/erofs/inode.js';
import { areaSize } from '../format/erofs/xattr.js';
import { LIMITS, badName, limitError } from '../format/limits.js';
import { BLOCK, decode, decodeGnuSparse, decodePax, decodeSparseExtension, isZeroBlock, padding } from '../format/tar/header.js';
import type { PaxRecord, SparseRegion, TarHeader } from '../format/tar/header.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG } from '../format/mode.js';
import { ChildNode, smi, type TreeNode } from '../tree/node.js';
import type { ContentReader, SourceEntry } from '../pipeline/stage.js';
import type { BufferPool } from '../pipeline/buffers.js';
import type { BlockReader } from '../pipeline/stages/chunk.js';

export interface TarSourceOptions {
  /** 'auto' (default): gunzip when the first 3 bytes are 1f 8b 08, whatever the type's name. 'never': plain tar only (tarfs). */
  gzip?: 'auto' | 'never';
  /**
   * Upstream checks uid/gid <= 2^32-1 only when it keeps owners; false (--repeatable, whose
   * bootstrap stores 0s) skips the check. Default true.
   */
  explicitUidGid?: boolean;
  /** What messages call the input when it is a stream (default '<tar stream>'). */
  name?: string;
  /**
   * Sparse members (GNU 'S' headers, PAX GNU.sparse.*): 'expand' reads them as regular files of
   * their real size with zeros in the holes (such entries have no dataOffset, their bytes not
   * being one run of the tar); 'refuse' does as upstream: an error for 'S', PAX sparse members
   * stored as written under the name they carry. Default: 'refuse' with gzip 'never' (tarfs,
   * whose chunks point into the tar), else 'expand'.
   */
  sparse?: 'expand' | 'refuse';
}

/** A source entry; a regular file's own data (not a hardlink's) also says where it sits in the tar. */
export interface TarEntry extends SourceEntry {
  /** Offset of the member's data in the (decompressed) tar stream: tarfs points chunks there. */
  dataOffset?: number;
}

const EMPTY = Buffer.alloc(0);
const SLASH = 0x2f;
const DOT = 0x2e;
/** PAX and GNU long-name data are held in memory; more than this is a corrupt header, not a name. */
const MAX_EXTENSION = 16 << 20;
/** Reads up to this size get one buffer at once; larger ones grow as the bytes arrive. */
const EXACT_AT_ONCE = 64 << 10;
/** Regions of one sparse member's map held in memory; more is a corrupt map. */
const MAX_SPARSE_REGIONS = 1 << 20;
const GNU_SPARSE = Buffer.from('GNU.sparse.');
/** Names skipped at the root after normalisation for every tar type, as upstream does. */
const SKIPPED = new Set(['stargz.index.json', '.prefetch.landmark', '.no.prefetch.landmark']);
const XATTR_PREFIXES = ['user.', 'security.', 'trusted.', 'system.posix_acl_access', 'system.posix_acl_default'].map((p) => Buffer.from(p));
const SCHILY = Buffer.from('SCHILY.xattr.');
/** The xattrs of every node that has none (most members have no PAX records). */
const NO_XATTR_LIST: TreeNode['xattrs'] = Object.freeze([]) as unknown as TreeNode['xattrs'];

const T = (c: string) => c.charCodeAt(0);
const TYPE_OF: Record<number, number> = {
  0: S_IFREG, [T('0')]: S_IFREG, [T('1')]: S_IFREG, [T('2')]: S_IFLNK,
  [T('3')]: S_IFCHR, [T('4')]: S_IFBLK, [T('5')]: S_IFDIR, [T('6')]: S_IFIFO,
};
const UNSUPPORTED: Record<number, string> = {
  [T('L')]: 'gnu_longname', [T('K')]: 'gnu_longlink', [T('x')]: 'pax_local_extensions',
  [T('g')]: 'pax_global_extensions', [T('7')]: 'contiguous entry type', [T('S')]: 'gnu sparse file extension',
};

/** Reads up to length bytes into into at offset; 0 at the end of the input. */
type Fill = (into: Uint8Array, offset: number, length: number) => number | Promise<number>;

/** Size of the parser's blocks until the chunker's buffer pool says otherwise (the pool's default). */
const BLOCK_SIZE = 2 << 20;
/** A block with less free room than this after its bytes is compacted before the next read. */
const MIN_ROOM = 64 << 10;

/** Buffers the chunker lends the parser: blocks of the pool's capacity go to the workers as batch data. */
interface BlockPool {
  readonly capacity: number;
  acquire(): Uint8Array;
}

/**
 * The input read in large blocks: one read per block (of a regular file: a sync read; of a FIFO
 * or pipe: through libuv's thread pool, as it may wait for its writer), headers parsed in place. A
 * member's chunk can be lent in place (view): the block then belongs to the chunker, which
 * sends it to the workers as the batch's data once the parser has moved to the next block, so
 * member bytes are not copied on the main thread; only the unread tail of a lent block is
 * copied to the start of the next one (a chunk never straddles two blocks).
 */
class Pull {
  private buf: Uint8Array;
  /** buf as a Buffer, for header views. */
  private bytes: Buffer;
  /** A DataView of buf's whole ArrayBuffer, for the header checksum. */
  words: DataView;
  private pos = 0;
  private end = 0;
  private eof = false;
  /** Whether a view into buf was lent: the parser then never reuses buf once it moves past it. */
  private lent = false;
  private pool: BlockPool | undefined;
  /** Offset in the (decompressed) tar stream of the next unread byte. */
  offset = 0;

  constructor(private readonly read: Fill) {
    this.buf = this.bytes = Buffer.allocUnsafeSlow(BLOCK_SIZE);
    this.words = new DataView(this.buf.buffer);
  }

  get buffered(): number {
    return this.end - this.pos;
  }

  private use(block: Uint8Array): void {
    const tail = this.end - this.pos;
    block.set(this.buf.subarray(this.pos, this.end), 0);
    this.buf = block;
    this.bytes = Buffer.isBuffer(block) ? block : Buffer.from(block.buffer, block.byteOffset, block.byteLength);
    this.words = new DataView(block.buffer);
    this.pos = 0;
    this.end = tail;
    this.lent = false;
  }

  /** Room for min bytes from pos, and for a read of some size after end. */
  private makeRoom(min: number): void {
    const len = this.buf.length;
    if (this.pos + min <= len && len - this.end >= MIN_ROOM) return;
    if (this.lent) {
      this.use(this.pool ? this.pool.acquire() : Buffer.allocUnsafeSlow(len));
    } else if (this.pos > 0) {
      this.buf.copyWithin(0, this.pos, this.end);
      this.end -= this.pos;
      this.pos = 0;
    }
  }

  /**
   * Makes at least min (at most a block) bytes available, or all that is left at the end of the
   * input; returns how many are. Sync unless a read is.
   */
  ensure(min: number): number | Promise<number> {
    if (this.end - this.pos >= min || this.eof) return this.end - this.pos;
    this.makeRoom(min);
    while (this.end - this.pos < min && !this.eof) {
      const r = this.read(this.buf, this.end, this.buf.length - this.end);
      if (typeof r !== 'number') return r.then((n) => (this.got(n), this.ensure(min)));
      this.got(r);
    }
    return this.end - this.pos;
  }

  private got(n: number): void {
    if (n === 0) this.eof = true;
    else this.end += n;
  }

  /** Makes at least one byte available; false at the end of the input. */
  async fill(): Promise<boolean> {
    return (await this.ensure(1)) > 0;
  }

  /** Whether the unread bytes start with these. */
  startsWith(prefix: Uint8Array): boolean {
    if (this.end - this.pos < prefix.length) return false;
    for (let i = 0; i < prefix.length; i++) if (this.buf[this.pos + i] !== prefix[i]) return false;
    return true;
  }

  /** The next header block, in place: valid only until the next call that reads (the caller has checked buffered >= BLOCK). */
  header(): Buffer {
    const b = this.bytes.subarray(this.pos, this.pos + BLOCK);
    this.pos += BLOCK;
    this.offset += BLOCK;
    return b;
  }

  copyTo(into: Uint8Array, offset: number, length: number): number {
    const n = Math.min(length, this.end - this.pos);
    if (n > 0) {
      into.set(this.buf.subarray(this.pos, this.pos + n), offset);
      this.pos += n;
      this.offset += n;
    }
    return n;
  }

  /**
   * The next n bytes in place, in a block of the pool's capacity that is the caller's to send
   * away once the parser has moved to another block (or after release); fewer bytes only at the
   * end of the input (then nothing is consumed and the result is undefined).
   */
  view(n: number, pool: BlockPool): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    if (this.pool !== pool) {
      // The batch pool's buffers hold a chunk and a block's unread bytes.
      if (pool.capacity < Math.max(n, this.end - this.pos)) throw new NydusError('INTERNAL', `a pool of ${pool.capacity}-byte buffers cannot take the tar's blocks`);
      this.pool = pool;
      // From the first view on, blocks are the pool's (its size, and shared memory if its buffers are).
      this.use(pool.acquire());
    }
    const r = this.end - this.pos >= n ? n : this.ensure(n);
    if (typeof r !== 'number') return r.then((k) => this.lend(n, k));
    return this.lend(n, r);
  }

  private lend(n: number, have: number): Uint8Array | undefined {
    if (have < n) return undefined;
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.offset += n;
    this.lent = true;
    return v;
  }

  /** The parser stops using the block of buffer (moving its unread bytes to a new block), so it can be sent away now. */
  release(buffer: ArrayBufferLike): void {
    if (!this.lent || this.buf.buffer !== buffer) return;
    if (this.eof && this.end === this.pos) {
      // Nothing more will be read: no new block for it.
      this.buf = this.bytes = EMPTY;
      this.words = new DataView(EMPTY.buffer);
      this.pos = this.end = 0;
      this.lent = false;
    } else {
      this.use(this.pool ? this.pool.acquire() : Buffer.allocUnsafeSlow(this.buf.length));
    }
  }

  /**
   * n bytes in a buffer of their own, or fewer only when the input ends. A large n is what a
   * header claims, so memory follows the bytes that really arrive, not the claim.
   */
  async exact(n: number): Promise<Buffer> {
    if (n <= EXACT_AT_ONCE) {
      const out = Buffer.allocUnsafe(n);
      let got = 0;
      while (got < n && (this.buffered > 0 || (await this.fill()))) got += this.copyTo(out, got, n - got);
      return got === n ? out : out.subarray(0, got);
    }
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n && (this.buffered > 0 || (await this.fill()))) {
      const part = Buffer.allocUnsafe(Math.min(n - got, this.buffered));
      got += this.copyTo(part, 0, part.length);
      parts.push(part);
    }
    return Buffer.concat(parts, got);
  }

  /** Discards n bytes if they are buffered (true), else nothing. */
  skipNow(n: number): boolean {
    if (this.end - this.pos < n) return false;
    this.pos += n;
    this.offset += n;
    return true;
  }

  /** Discards n bytes; returns how many there were. */
  async skip(n: number): Promise<number> {
    let done = 0;
    while (done < n && (this.buffered > 0 || (await this.fill()))) {
      const k = Math.min(n - done, this.buffered);
      this.pos += k;
      this.offset += k;
      done += k;
    }
    return done;
  }
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new NydusError('SOURCE', 'the tar stream yields text, not bytes (was setEncoding called on it?)');
}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b, 0x08]);
/**
 * A FIFO's pipe buffer: the writer runs this far ahead, and one read takes up to this much. Above
 * /proc/sys/fs/pipe-max-size (1 MiB by default) only a process with CAP_SYS_RESOURCE may go.
 */
const PIPE_SIZES = [4 << 20, 1 << 20];
const growPipe = (fd: number) => PIPE_SIZES.some((size) => setPipeSize(fd, size) >= size);
/** Pieces read from a file into a gzip stream. */
const READ_SIZE = 1 << 20;

/**
 * Output pieces of a gunzip. Each is a round trip through libuv's thread pool and a pass of the
 * stream machinery on the main thread: zlib's 16 KiB took ~1 CPU-s of each per 500 MB converted,
 * and 64 KiB left a .tar.gz build 8-15% slower than this.
 */
export const GUNZIP_CHUNK = 256 << 10;

/** Reads of an fd: sync for a regular file (page cache), async for a FIFO or pipe (it may wait for its writer). */
function fdFill(fd: number, sync: boolean, wrap: (e: unknown) => NydusError): Fill {
  if (sync) {
    return (into, offset, length) => {
      try {
        return fs.readSync(fd, into, offset, length, null);
      } catch (e) {
        throw wrap(e);
      }
    };
  }
  return (into, offset, length) =>
    new Promise<number>((resolve, reject) => {
      const go = () =>
        fs.read(fd, into, offset, length, null, (e, n) => {
          // A pipe inherited in non-blocking mode: wait for its writer a little.
          if (e?.code === 'EAGAIN') setTimeout(go, 1);
          else if (e) reject(wrap(e));
          else resolve(n);
        });
      go();
    });
}

/** Pieces of an async iterator, copied into the caller's block. */
function iterFill(it: AsyncIterator<unknown>, wrap: (e: unknown) => NydusError): Fill {
  let piece: Buffer = EMPTY;
  let at = 0;
  let done = false;
  const copy = (into: Uint8Array, offset: number, length: number) => {
    const n = Math.min(length, piece.length - at);
    into.set(piece.subarray(at, at + n), offset);
    at += n;
    return n;
  };
  const more = async (): Promise<boolean> => {
    try {
      while (!done) {
        const r = await it.next();
        if (r.done) done = true;
        else {
          piece = toBuffer(r.value);
          at = 0;
          if (piece.length > 0) return true;
        }
      }
      return false;
    } catch (e) {
      throw wrap(e);
    }
  };
  return (into, offset, length) => {
    if (at < piece.length) return copy(into, offset, length);
    return more().then((ok) => (ok ? copy(into, offset, length) : 0));
  };
}

/** The plain input: how to read it, and how to stop (closing what was opened here). */
async function openRaw(input: string | NodeJS.ReadableStream, wrap: (e: unknown) => NydusError): Promise<{ fill: Fill; stop: () => Promise<void> }> {
  if (typeof input !== 'string') {
    const it = input[Symbol.asyncIterator]();
    return { fill: iterFill(it, wrap), stop: async () => void (await it.return?.()) };
  }
  if (input === '-' || input === '/dev/stdin') {
    // A pipe or file on fd 0 is read directly; a terminal or socket through process.stdin.
    let st: fs.Stats | undefined;
    try {
      st = fs.fstatSync(0);
    } catch {
      st = undefined;
    }
    if (st?.isFile() || st?.isFIFO()) {
      if (st.isFIFO()) growPipe(0);
      return { fill: fdFill(0, st.isFile(), wrap), stop: async () => {} };
    }
    const it = process.stdin[Symbol.asyncIterator]();
    return { fill: iterFill(it, wrap), stop: async () => void (await it.return?.()) };
  }
  let fh: fs.promises.FileHandle;
  try {
    // Async: opening a FIFO waits for its writer.
    fh = await fs.promises.open(input, 'r');
  } catch (e) {
    throw wrap(e);
  }
  let regular: boolean;
  try {
    const st = await fh.stat();
    regular = st.isFile();
    if (st.isFIFO()) growPipe(fh.fd);
  } catch (e) {
    await fh.close();
    throw wrap(e);
  }
  return { fill: fdFill(fh.fd, regular, wrap), stop: () => fh.close() };
}

/** The decompressed (or plain) input as a Pull, and a way to stop reading early. */
async function openInput(input: string | NodeJS.ReadableStream, name: string, gzip: 'auto' | 'never') {
  const wrap = (e: unknown): NydusError => {
    if (e instanceof NydusError) return e;
    const code = (e as NodeJS.ErrnoException)?.code;
    if (typeof code === 'string' && code.startsWith('Z_')) {
      return new NydusError('SOURCE', `corrupt gzip data: ${(e as Error).message}`, { path: name, cause: e });
    }
    return fsError('SOURCE', name, e);
  };
  const raw = await openRaw(input, wrap);
  const pull = new Pull(raw.fill);
  if (gzip === 'never') return { pull, stop: raw.stop };
  let have: number;
  try {
    have = await pull.ensure(3);
  } catch (e) {
    await raw.stop().catch(() => {});
    throw wrap(e);
  }
  if (have < 3) {
    await raw.stop().catch(() => {});
    throw new NydusError('SOURCE', `input is ${have} bytes, too short to tell tar from gzip (upstream reads 3 bytes first)`, { path: name });
  }
  if (!pull.startsWith(GZIP_MAGIC)) return { pull, stop: raw.stop };
  const head = Buffer.allocUnsafe(have);
  pull.copyTo(head, 0, have);
  // Node's gunzip reads concatenated members, as upstream's multi-member decoder does.
  const compressed = async function* (): AsyncGenerator<Buffer> {
    try {
      yield head;
      for (;;) {
        const b = Buffer.allocUnsafe(READ_SIZE);
        const r = raw.fill(b, 0, b.length);
        const n = typeof r === 'number' ? r : await r;
        if (n === 0) return;
        yield b.subarray(0, n);
      }
    } finally {
      await raw.stop();
    }
  };
  const gz = zlib.createGunzip({ chunkSize: GUNZIP_CHUNK });
  pipeline(Readable.from(compressed()), gz, () => {});
  return {
    pull: new Pull(iterFill(gz[Symbol.asyncIterator](), wrap)),
    stop: async () => {
      gz.destroy();
    },
  };
}

const CONTROL = /[\x00-\x1f\x7f]/;

/** Text for a message: control bytes escaped so it stays one line, a long one shown by its two ends. */
function shown(text: string): string {
  if (text.length <= 300 && !CONTROL.test(text)) return text;
  const t = text.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return t.length > 300 ? `${t.slice(0, 150)}…${t.slice(-150)}` : t;
}

/** A normalised path for messages. */
const display = (path: Buffer) => shown(path.toString('utf8'));

/**
 * A path as upstream (Rust Path after joining onto "/") sees it: its bytes "/a/b", and where its
 * components (no empty or "." ones; ".." kept) start and end in those bytes. One per parser,
 * reused: only the path's bytes are new for each member (its node's name is a view of them).
 */
class Normalised {
  path: Buffer = EMPTY;
  /** Number of components. */
  count = 0;
  /** Start and end of component i in path at [2i] and [2i + 1]. */
  spans = new Int32Array(256);
  /** Whether some component is "..". */
  dotDot = false;
  /** Whether some component is longer than NAME_MAX or holds a NUL byte (badName then has something to say). */
  odd = false;

  /** End of component i in path: the path of its directory is path.subarray(0, end(i)). */
  end(i: number): number {
    return this.spans[2 * i + 1]!;
  }

  /** Component i as a view of path. */
  comp(i: number): Buffer {
    return this.path.subarray(this.spans[2 * i]!, this.spans[2 * i + 1]!);
  }

  /** Component i as a map key. */
  key(i: number): string {
    return this.path.toString('latin1', this.spans[2 * i]!, this.spans[2 * i + 1]!);
  }
}

const NAME_MAX = LIMITS.NAME_MAX.value;

/** Splits a tar path into components with no empty or "." ones (".." kept): into `into`, whose path it returns. */
function normalise(raw: Buffer, into: Normalised): Buffer {
  let spans = into.spans;
  let k = 0;
  let bytes = 0;
  let start = 0;
  const len = raw.length;
  for (let i = 0; i <= len; i++) {
    if (i < len && raw[i] !== SLASH) continue;
    const n = i - start;
    if (n > 0 && !(n === 1 && raw[start] === DOT)) {
      if (k + 2 > spans.length) {
        const grown = new Int32Array(2 * spans.length);
        grown.set(spans);
        spans = into.spans = grown;
      }
      spans[k++] = start;
      spans[k++] = i;
      bytes += 1 + n;
    }
    start = i + 1;
  }
  const path = Buffer.allocUnsafe(Math.max(bytes, 1));
  path[0] = SLASH;
  let at = 0;
  let dotDot = false;
  let odd = false;
  for (let j = 0; j < k; j += 2) {
    path[at++] = SLASH;
    // Names are short: a loop beats a Buffer.copy call per component.
    const from = spans[j]!;
    const to = spans[j + 1]!;
    const n = to - from;
    if (n === 2 && raw[from] === DOT && raw[from + 1] === DOT) dotDot = true;
    if (n > NAME_MAX) odd = true;
    spans[j] = at;
    for (let i = from; i < to; i++) {
      const c = raw[i]!;
      if (c === 0) odd = true;
      path[at++] = c;
    }
    spans[j + 1] = at;
  }
  into.path = path;
  into.count = k >> 1;
  into.dotDot = dotDot;
  into.odd = odd;
  return path;
}

/** Whether a and b agree in their first len bytes (both hold at least len). */
function samePrefix(a: Buffer, b: Buffer, len: number): boolean {
  // From the end: sibling directories differ there.
  for (let i = len - 1; i >= 0; i--) if (a[i] !== b[i]) return false;
  return true;
}

/** A directory with the synthetic root's attributes: upstream gives the root and every implied parent these. */
function syntheticDir(up: ChildNode | undefined, name: Buffer): ChildNode {
  return new ChildNode(up, name, S_IFDIR | 0o755, 0, 0, 0, 0, []);
}

/**
 * One path met so far: the node there now, and, while that is a directory, the paths below it
 * by name. A directory replaced by a directory keeps them (upstream's tree keeps the children);
 * replaced by anything else, they are gone with it.
 */
class Slot {
  /**
   * By the hash of their names (nameHash): the slots whose names hash alike, chained by `next`,
   * or, once more than CHAIN_MAX do (names crafted to collide), a map of them by name.
   */
  kids: Map<number, Slot | Map<string, Slot>> | undefined;
  /** The next slot of the same directory whose name has the same hash. */
  next: Slot | undefined = undefined;

  constructor(
    public node: TreeNode,
    dir: boolean,
  ) {
    this.kids = dir ? new Map() : undefined;
  }

  /** The child slot named by bytes s..e of b (its hash h), if any. */
  kid(b: Buffer, s: number, e: number, h: number): Slot | undefined {
    const bucket = this.kids!.get(h);
    if (bucket === undefined || bucket instanceof Map) return bucket?.get(b.toString('latin1', s, e));
    for (let c: Slot | undefined = bucket; c !== undefined; c = c.next) if (sameName(c.node.name, b, s, e)) return c;
    return undefined;
  }

  /** Adds a child slot (not there yet) whose name hashes to h. */
  add(h: number, slot: Slot): void {
    const kids = this.kids!;
    const bucket = kids.get(h);
    slot.next = undefined;
    if (bucket instanceof Map) {
      bucket.set(slot.node.name.toString('latin1'), slot);
      return;
    }
    let n = 0;
    for (let c = bucket; c !== undefined; c = c.next) n++;
    if (n < CHAIN_MAX) {
      slot.next = bucket;
      kids.set(h, slot);
      return;
    }
    // A long chain is a tar made to collide: by name from here on, so a lookup stays O(1).
    const byName = new Map<string, Slot>();
    for (let c = bucket; c !== undefined; c = c.next) byName.set(c.node.name.toString('latin1'), c);
    byName.set(slot.node.name.toString('latin1'), slot);
    kids.set(h, byName);
  }
}

/** Slots of one directory whose names share a hash, chained before they are kept by name instead. */
const CHAIN_MAX = 4;

/**
 * FNV-1a of bytes s..e of b, cut to 30 bits (a small integer to V8): map keys without a string
 * made (a native call) and hashed per member. Not hard to make collide, so a directory keeps
 * the names of a long chain in a map by name (Slot.add).
 */
function nameHash(b: Buffer, s: number, e: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = s; i < e; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h & 0x3fffffff;
}

/** Whether name holds exactly bytes s..e of b. */
function sameName(name: Buffer, b: Buffer, s: number, e: number): boolean {
  if (name.length !== e - s) return false;
  for (let i = 0; i < name.length; i++) if (name[i] !== b[s + i]) return false;
  return true;
}

const KIND: Record<number, string> = {
  [S_IFREG]: 'regular file', [S_IFLNK]: 'symlink', [S_IFCHR]: 'character device', [S_IFBLK]: 'block device', [S_IFIFO]: 'fifo',
};
const kindOf = (n: TreeNode) => KIND[n.mode & S_IFMT] ?? `file of type 0${(n.mode & S_IFMT).toString(8)}`;

function paxGet(pax: PaxRecord[] | undefined, key: string): Buffer | undefined {
  return pax?.find((r) => r.key.toString('latin1') === key)?.value;
}

/** A PAX decimal field; upstream ignores one that does not parse. */
function paxNumber(pax: PaxRecord[] | undefined, key: string): number | undefined {
  const v = paxGet(pax, key)?.toString('latin1');
  return v !== undefined && /^[0-9]{1,15}$/.test(v) ? Number(v) : undefined;
}

const startsWith = (b: Buffer, prefix: Buffer) => b.length >= prefix.length && b.subarray(0, prefix.length).equals(prefix);

/** A decimal number of a PAX sparse map. */
function sparseNumber(text: string): number | undefined {
  if (!/^[0-9]{1,16}$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Reads the PAX 1.0 sparse map from the start of a member's data, block by block: decimal
 * numbers each ending in a newline (the count, then offset/size pairs), padded to a block.
 */
async function readSparseMap(pull: Pull, m: Member, fail: (path: string, why: string) => NydusError): Promise<SparseRegion[]> {
  const nums: number[] = [];
  let partial = '';
  let need = 1;
  while (nums.length < need) {
    if (m.left < BLOCK) throw fail(m.path, `the PAX sparse map runs past the member's ${m.size} bytes of data`);
    if (m.size - m.left >= MAX_EXTENSION) throw fail(m.path, `PAX sparse map larger than ${MAX_EXTENSION} bytes`);
    const b = await pull.exact(BLOCK);
    m.left -= b.length;
    if (b.length < BLOCK) throw truncated(m);
    const lines = (partial + b.toString('latin1')).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      if (nums.length >= need) break;
      const n = sparseNumber(line);
      if (n === undefined) throw fail(m.path, `malformed PAX sparse map: ${JSON.stringify(line.slice(0, 40))} is not a decimal number`);
      nums.push(n);
      if (nums.length === 1) {
        if (n > MAX_SPARSE_REGIONS) throw fail(m.path, `PAX sparse map of ${n} regions (at most ${MAX_SPARSE_REGIONS})`);
        need = 1 + 2 * n;
      }
    }
  }
  const regions: SparseRegion[] = [];
  for (let i = 1; i < nums.length; i += 2) regions.push({ offset: nums[i]!, size: nums[i + 1]! });
  return regions;
}

/** The regions must be ascending, disjoint, inside the file, and add up to the data stored. */
function checkRegions(regions: SparseRegion[], realSize: number, stored: number, fail: (why: string) => NydusError): void {
  let end = 0;
  let total = 0;
  for (const r of regions) {
    if (r.offset < end) throw fail(`sparse map region at ${r.offset} overlaps or precedes the one ending at ${end}`);
    end = r.offset + r.size;
    if (end > realSize) throw fail(`sparse map region ${r.offset}+${r.size} ends past the file's ${realSize} bytes`);
    total += r.size;
  }
  if (total !== stored) throw fail(`sparse map describes ${total} bytes of data but the member holds ${stored}`);
}

/** One member being read: its data bytes not yet consumed. */
class Member {
  left: number;
  open = false;
  current = true;

  /** @param bytes its normalised path */
  constructor(readonly bytes: Buffer, readonly size: number) {
    this.left = size;
  }

  /** The path for a message: made only when one is. */
  get path(): string {
    return display(this.bytes);
  }
}

/** Reads up to want (> 0, <= m.left) stored bytes of the member. */
function readStored(m: Member, pull: Pull, into: Uint8Array, offset: number, want: number): number | Promise<number> {
  const n = pull.copyTo(into, offset, want);
  if (n > 0) {
    m.left -= n;
    return n;
  }
  return pull.fill().then((more) => {
    if (!more) throw truncated(m);
    const k = pull.copyTo(into, offset, want);
    m.left -= k;
    return k;
  });
}

function checkCurrent(m: Member): void {
  if (!m.current) throw new NydusError('INTERNAL', 'tar content read after the source moved to the next entry', { path: m.path });
}

/** A member's bytes: read (copied out) or, for the chunker, lent in place (see BlockReader). */
class MemberReader implements BlockReader {
  constructor(private readonly m: Member, private readonly pull: Pull) {}

  read(into: Uint8Array, offset: number, length: number): number | Promise<number> {
    checkCurrent(this.m);
    const want = Math.min(length, this.m.left);
    if (want === 0) return 0;
    return readStored(this.m, this.pull, into, offset, want);
  }

  view(length: number, pool: BufferPool): Uint8Array | Promise<Uint8Array> {
    checkCurrent(this.m);
    if (length > this.m.left) throw new NydusError('INTERNAL', `view of ${length} bytes past the member's end`, { path: this.m.path });
    const v = this.pull.view(length, pool);
    // A closure only when the bytes must be waited for (usually they are buffered).
    return v instanceof Promise ? v.then((w) => this.took(w, length)) : this.took(v, length);
  }

  private took(v: Uint8Array | undefined, length: number): Uint8Array {
    if (v === undefined) {
      // Nothing was consumed: the truncation shows where the bytes really end.
      this.m.left -= this.pull.buffered;
      throw truncated(this.m);
    }
    this.m.left -= length;
    return v;
  }

  release(buffer: ArrayBufferLike): void {
    this.pull.release(buffer);
  }

  close(): void {}
}

/** A sparse member's file: zeros in the holes, the stored regions (checked ascending and disjoint) from the stream. */
class SparseReader implements ContentReader {
  private pos = 0;
  private i = 0;

  constructor(private readonly m: Member, private readonly pull: Pull, private readonly regions: SparseRegion[], private readonly realSize: number) {}

  read(into: Uint8Array, offset: number, length: number): number | Promise<number> {
    checkCurrent(this.m);
    if (length <= 0 || this.pos >= this.realSize) return 0;
    const rs = this.regions;
    while (this.i < rs.length && this.pos >= rs[this.i]!.offset + rs[this.i]!.size) this.i++;
    const r = rs[this.i];
    if (r === undefined || this.pos < r.offset) {
      const n = Math.min(length, (r?.offset ?? this.realSize) - this.pos);
      into.fill(0, offset, offset + n);
      this.pos += n;
      return n;
    }
    const want = Math.min(length, r.offset + r.size - this.pos);
    const got = readStored(this.m, this.pull, into, offset, want);
    if (typeof got === 'number') {
      this.pos += got;
      return got;
    }
    return got.then((k) => {
      this.pos += k;
      return k;
    });
  }

  close(): void {}
}

function truncated(m: Member): NydusError {
  const where = m.left === 0 ? `in the padding after the entry's ${m.size} bytes of data` : `${m.size - m.left} bytes into the entry's ${m.size} bytes of data`;
  return new NydusError('SOURCE', `truncated tar: the input ends ${where}`, { path: m.path });
}

/** Discards the rest of a member's data and its padding. */
async function skipMember(m: Member, pull: Pull): Promise<void> {
  m.current = false;
  const skipped = await pull.skip(m.left);
  m.left -= skipped;
  if (m.left > 0 || (await pull.skip(padding(m.size))) < padding(m.size)) throw truncated(m);
}

/** The opener of a member's own data (a closure over the member, not over the parser's loop). */
function opener(m: Member, pull: Pull, sparse: Sparse | undefined): () => ContentReader {
  return () => {
    if (m.open || !m.current) throw new NydusError('INTERNAL', 'tar content opened twice or after the source moved on', { path: m.path });
    m.open = true;
    return sparse ? new SparseReader(m, pull, sparse.regions, sparse.realSize) : new MemberReader(m, pull);
  };
}

/** The opener of a hardlink's name: its data was the target's. */
function linkOpener(path: Buffer, target: Buffer): () => ContentReader {
  return () => {
    throw new NydusError('SOURCE', `hardlink ${display(path)} lost its target ${display(target)}, whose data a single pass over the tar cannot read again`);
  };
}

const fail = (path: string, why: string) => new NydusError('SOURCE', why, { path });

const TYPE_REG = 0x30;
const TYPE_LINK = 0x31;
const TYPE_GNU_SPARSE = 0x53;
const TYPE_LONG_NAME = 0x4c;
const TYPE_LONG_LINK = 0x4b;
const TYPE_PAX = 0x78;

/** A sparse member's map of stored regions, and the size of the file they belong in. */
interface Sparse {
  regions: SparseRegion[];
  realSize: number;
}

/**
 * The parser's state between members and the member being parsed. The work of a member is split
 * in small synchronous steps (begin, finish) and rare asynchronous ones (extension headers,
 * sparse maps), so that the generator stays small: V8 compiles the steps separately, and a
 * rarely taken branch that deoptimises one step costs a recompile of that step, not of the whole
 * parser.
 */
class TarParser {
  readonly root: TreeNode;
  /** Every path met so far, as a tree of slots: a member's lookup costs its components, not its depth squared. */
  private readonly top: Slot;
  private longName: Buffer | undefined = undefined;
  private longLink: Buffer | undefined = undefined;
  private pax: PaxRecord[] | undefined = undefined;
  /** The first extension header still waiting for its member, for the error when none comes. */
  pending: { what: string; at: number } | undefined = undefined;
  /** The normalised path of the last member, for messages ("after ..."). */
  private lastPath: Buffer | undefined = undefined;
  /** Bytes of holes the sparse members have added so far. */
  private holes = 0;
  /**
   * The previous member's parent slot, its path (the first lastLength bytes of lastParentOf):
   * members come grouped by directory, so this one's parent is usually the same. Valid while no
   * directory has been replaced by a non-directory since (generation), which is what can detach a slot.
   */
  private lastSlot: Slot | undefined = undefined;
  private lastParentOf: Buffer = EMPTY;
  private lastLength = 0;
  private lastGeneration = 0;
  private generation = 0;
  /** Implied parents the last finish() created, to be yielded before its entry. */
  readonly implied: TarEntry[] = [];

  // The member being parsed.
  private readonly norm = new Normalised();
  private readonly linkNorm = new Normalised();
  private h!: TarHeader;
  private flag = 0;
  private dataAt = 0;
  private rawLink: Buffer = EMPTY;
  private uid = 0;
  private gid = 0;
  private ext: PaxRecord[] | undefined = undefined;
  member!: Member;
  sparse: Sparse | undefined = undefined;
  /** A GNU sparse header whose map continues in extension blocks. */
  moreSparse = false;
  /** A PAX 1.0 sparse member: the map is at the start of the data. */
  private mapInData = false;

  constructor(
    private readonly pull: Pull,
    private readonly name: string,
    private readonly checkIds: boolean,
    private readonly expandSparse: boolean,
  ) {
    this.root = syntheticDir(undefined, EMPTY);
    this.top = new Slot(this.root, true);
  }

  private where(at: number): string {
    return `tar offset ${at} (after ${this.lastPath === undefined ? 'the start' : display(this.lastPath)})`;
  }

  truncatedHeader(at: number): NydusError {
    return new NydusError('SOURCE', `truncated tar: the input ends inside the header at ${this.where(at)}`, { path: this.name });
  }

  decode(block: Buffer, at: number): TarHeader {
    try {
      return decode(block, true, this.pull.words);
    } catch (e) {
      throw new NydusError('SOURCE', `bad tar header at ${this.where(at)}: ${(e as Error).message}`, { path: this.name, cause: e });
    }
  }

  /** An extension header (the tar crate only takes them from ustar/GNU headers): it belongs to the next member. */
  static isExtension(h: TarHeader): boolean {
    return h.format !== 'v7' && (h.typeflag === TYPE_LONG_NAME || h.typeflag === TYPE_LONG_LINK || h.typeflag === TYPE_PAX);
  }

  /** Reads an extension header's data and holds it for the next member. */
  async extension(h: TarHeader, at: number): Promise<void> {
    const flag = h.typeflag;
    const pull = this.pull;
    const what = flag === TYPE_PAX ? 'pax extensions' : flag === TYPE_LONG_NAME ? 'long name' : 'long link';
    const held = flag === TYPE_PAX ? this.pax : flag === TYPE_LONG_NAME ? this.longName : this.longLink;
    if (held !== undefined) throw new NydusError('SOURCE', `two ${what} entries describing the same member at ${this.where(at)}`, { path: this.name });
    if (h.size > MAX_EXTENSION) throw new NydusError('SOURCE', `${what} header of ${h.size} bytes at ${this.where(at)} is too large`, { path: this.name });
    const data = await pull.exact(h.size);
    if (data.length < h.size || (await pull.skip(padding(h.size))) < padding(h.size)) {
      throw new NydusError('SOURCE', `truncated tar: the input ends inside the ${what} header at ${this.where(at)}`, { path: this.name });
    }
    if (flag === TYPE_PAX) {
      try {
        this.pax = decodePax(data);
      } catch (e) {
        throw new NydusError('SOURCE', `failed to parse PaxExtension from tar header at ${this.where(at)}: ${(e as Error).message}`, { path: this.name, cause: e });
      }
    } else {
      const nul = data.indexOf(0);
      const value = nul < 0 ? data : data.subarray(0, nul);
      if (flag === TYPE_LONG_NAME) this.longName = value;
      else this.longLink = value;
    }
    this.pending ??= { what, at };
  }

  /**
   * A member's header (block, in place: valid until the next read) with the extension headers
   * before it: its path normalised, its sparse map's header decoded. Returns the member.
   */
  begin(h: TarHeader, block: Buffer, at: number): Member {
    const pax = this.pax;
    let flag = h.typeflag;
    this.dataAt = this.pull.offset;
    this.h = h;
    this.ext = pax;
    this.sparse = undefined;
    this.moreSparse = false;
    this.mapInData = false;
    let rawPath: Buffer;
    let paxSparse = false;
    let size = h.size;
    if (pax === undefined) {
      rawPath = this.longName ?? h.name;
      this.rawLink = this.longLink ?? h.linkname;
      this.uid = h.uid;
      this.gid = h.gid;
    } else {
      paxSparse = this.expandSparse && (flag === 0 || flag === TYPE_REG) && pax.some((r) => startsWith(r.key, GNU_SPARSE));
      rawPath = this.longName ?? (paxSparse ? paxGet(pax, 'GNU.sparse.name') : undefined) ?? paxGet(pax, 'path') ?? h.name;
      this.rawLink = this.longLink ?? paxGet(pax, 'linkpath') ?? h.linkname;
      size = paxNumber(pax, 'size') ?? h.size;
      this.uid = paxNumber(pax, 'uid') ?? h.uid;
      this.gid = paxNumber(pax, 'gid') ?? h.gid;
    }
    this.longName = this.longLink = this.pax = undefined;
    this.pending = undefined;

    // Bounded before it is split: every step below is linear in the path.
    if (rawPath.length > LIMITS.PATH_MAX.value) {
      throw limitError('PATH_MAX', shown(`/${rawPath.toString('utf8')}`), `path of ${rawPath.length} bytes`);
    }
    const path = normalise(rawPath, this.norm);
    this.lastPath = path;
    const member = (this.member = new Member(path, size));
    if (this.expandSparse && flag === TYPE_GNU_SPARSE && h.format === 'gnu') {
      try {
        const g = decodeGnuSparse(block);
        this.sparse = { regions: g.regions, realSize: g.realSize };
        this.moreSparse = g.extended;
      } catch (e) {
        throw new NydusError('SOURCE', `bad tar header at ${this.where(at)}: ${(e as Error).message}`, { path: this.name, cause: e });
      }
      flag = TYPE_REG;
    } else if (paxSparse) {
      this.paxSparse(pax!, member);
    }
    this.flag = flag;
    return member;
  }

  /** The map of a PAX sparse member (0.0, 0.1) from its records, or (1.0) a note that it starts the data. */
  private paxSparse(ext: PaxRecord[], m: Member): void {
    const realSize = paxNumber(ext, 'GNU.sparse.realsize') ?? paxNumber(ext, 'GNU.sparse.size');
    if (realSize === undefined) throw fail(m.path, 'PAX sparse member without a valid GNU.sparse.realsize or GNU.sparse.size');
    const major = paxGet(ext, 'GNU.sparse.major')?.toString('latin1');
    const minor = paxGet(ext, 'GNU.sparse.minor')?.toString('latin1');
    const map = paxGet(ext, 'GNU.sparse.map');
    if (major !== undefined || minor !== undefined) {
      // 1.0: the map is at the start of the data.
      if (major !== '1' || minor !== '0') throw fail(m.path, `unsupported PAX sparse format ${major ?? '?'}.${minor ?? '?'}`);
      this.sparse = { regions: [], realSize };
      this.mapInData = true;
    } else if (map !== undefined) {
      // 0.1: GNU.sparse.map=offset,size,offset,size,...
      const text = map.toString('latin1');
      const nums = text === '' ? [] : text.split(',').map(sparseNumber);
      if (nums.length % 2 !== 0 || nums.some((n) => n === undefined)) throw fail(m.path, `malformed GNU.sparse.map ${JSON.stringify(text.slice(0, 100))}`);
      const sparse: Sparse = (this.sparse = { regions: [], realSize });
      for (let i = 0; i < nums.length; i += 2) sparse.regions.push({ offset: nums[i]!, size: nums[i + 1]! });
    } else {
      // 0.0: GNU.sparse.offset / GNU.sparse.numbytes records, in pairs.
      const sparse: Sparse = (this.sparse = { regions: [], realSize });
      let offset: number | undefined;
      for (const r of ext) {
        const k = r.key.toString('latin1');
        if (k !== 'GNU.sparse.offset' && k !== 'GNU.sparse.numbytes') continue;
        const n = sparseNumber(r.value.toString('latin1'));
        if (n === undefined) throw fail(m.path, `malformed ${k} ${JSON.stringify(r.value.toString('latin1').slice(0, 100))}`);
        if ((k === 'GNU.sparse.offset') !== (offset === undefined)) throw fail(m.path, 'GNU.sparse.offset and GNU.sparse.numbytes records do not alternate');
        if (offset === undefined) offset = n;
        else {
          sparse.regions.push({ offset, size: n });
          offset = undefined;
        }
      }
      if (offset !== undefined) throw fail(m.path, 'GNU.sparse.offset without its GNU.sparse.numbytes');
    }
  }

  /** The GNU sparse extension blocks after an 'S' header (moreSparse). */
  async sparseExtensions(): Promise<void> {
    const { pull, member: m, sparse } = this;
    let more = this.moreSparse;
    while (more) {
      const extAt = pull.offset;
      const extBlock = await pull.exact(BLOCK);
      if (extBlock.length < BLOCK) throw fail(m.path, `truncated tar: the input ends inside a GNU sparse extension header at tar offset ${extAt}`);
      if (sparse!.regions.length > MAX_SPARSE_REGIONS) throw fail(m.path, `GNU sparse map of more than ${MAX_SPARSE_REGIONS} regions`);
      try {
        more = decodeSparseExtension(extBlock, sparse!.regions);
      } catch (e) {
        throw fail(m.path, `bad GNU sparse extension header at tar offset ${extAt}: ${(e as Error).message}`);
      }
    }
    this.moreSparse = false;
  }

  /** Whether the member is one of the names upstream skips at the root. */
  skipped(): boolean {
    return this.norm.count === 1 && SKIPPED.has(this.norm.key(0));
  }

  /** A sparse member's map read from its data (PAX 1.0) and checked, its holes bounded before any byte is read. */
  async sparseMap(): Promise<void> {
    const { member: m, sparse } = this;
    if (!sparse) return;
    if (this.mapInData) sparse.regions = await readSparseMap(this.pull, m, fail);
    checkRegions(sparse.regions, sparse.realSize, m.left, (why) => fail(m.path, why));
    // Holes are zeros no byte of the input backs: bounded per member and per tar, before any is read.
    const added = sparse.realSize - m.left;
    if (added > LIMITS.SPARSE_HOLES_MAX.value) throw limitError('SPARSE_HOLES_MAX', `${m.path}: sparse member of ${sparse.realSize} bytes storing ${m.left}`, `${added} bytes of holes`);
    this.holes += added;
    if (this.holes > LIMITS.SPARSE_HOLES_TOTAL_MAX.value) throw limitError('SPARSE_HOLES_TOTAL_MAX', m.path, `${this.holes} bytes of holes in the sparse members so far`);
  }

  /**
   * The member checked and put in the tree: its entry (after the implied parents in `implied`),
   * or undefined when it only re-archives a name into its own hardlink group (its data is then
   * skipped).
   */
  finish(): TarEntry | undefined {
    const { flag, h, norm, member } = this;
    const path = norm.path;
    const depth = norm.count;
    // Truncating an array is a runtime call: only when there is something to drop.
    if (this.implied.length !== 0) this.implied.length = 0;
    if (UNSUPPORTED[flag] !== undefined) throw fail(member.path, `unsupported ${UNSUPPORTED[flag]} from tar header`);
    if (norm.dotDot) {
      const i = 2 * depth - 2;
      if (norm.spans[i + 1]! - norm.spans[i]! === 2 && path[norm.spans[i]!] === DOT && path[norm.spans[i]! + 1] === DOT) {
        throw fail(member.path, 'failed to get file name from tar entry: the path ends in ".."');
      }
      // Upstream panics (SIGABRT) on any ".." component; we refuse the entry instead.
      throw fail(member.path, 'a ".." component in a tar entry path is not allowed');
    }
    if (depth > LIMITS.DEPTH_MAX.value) throw limitError('DEPTH_MAX', member.path, `${depth} levels`);
    if (norm.odd) {
      for (let i = 0; i < depth; i++) {
        const bad = badName(norm.comp(i));
        if (bad !== undefined) throw fail(member.path, bad);
      }
    }
    const type = TYPE_OF[flag];
    if (type === undefined) throw fail(member.path, `unsupported tar entry type '${String.fromCharCode(flag)}' (0x${flag.toString(16)})`);
    const nodeName = depth === 0 ? EMPTY : norm.comp(depth - 1);
    if (depth === 0 && type !== S_IFDIR) throw fail(member.path, 'the root entry of a tar must be a directory');
    const { uid, gid } = this;
    if (this.checkIds && (uid > 0xffffffff || gid > 0xffffffff)) throw fail(member.path, `uid ${uid} or gid ${gid} from tar entry is out of range`);

    const mode = (h.mode & 0o7777) | type;
    let size = 0;
    let rdev = 0;
    let target: Buffer | undefined;
    if (type === S_IFREG) {
      if (flag !== TYPE_LINK) size = this.sparse ? this.sparse.realSize : member.size;
    } else if (type === S_IFLNK) {
      target = this.symlinkTarget();
      size = target.length;
    } else if (type === S_IFCHR || type === S_IFBLK || type === S_IFIFO) {
      if (h.devmajor === undefined || h.devminor === undefined) throw fail(member.path, 'failed to get device numbers from a v7 tar header');
      rdev = encodeDev(h.devmajor, h.devminor);
    }

    // Hardlinks: the target is whatever sits at its path in the tree built so far, reached through directories only.
    const linkTarget = flag === TYPE_LINK ? this.hardlinkTarget() : undefined;
    const xattrs = this.ext === undefined ? NO_XATTR_LIST : this.xattrsOf(this.ext);

    // The parent: the previous member's when it has the same path, else walked from the root.
    const parentLength = depth <= 1 ? 1 : norm.end(depth - 2);
    const parentSlot =
      this.lastSlot !== undefined && this.lastGeneration === this.generation && this.lastLength === parentLength && samePrefix(this.lastParentOf, path, parentLength)
        ? this.lastSlot
        : this.walkParent(parentLength);

    // This member's own slot: a repeated path is replaced, last wins.
    const start = depth === 0 ? 0 : norm.spans[2 * depth - 2]!;
    const end = depth === 0 ? 0 : norm.spans[2 * depth - 1]!;
    const hash = nameHash(path, start, end);
    let slot: Slot | undefined = depth === 0 ? this.top : parentSlot.kid(path, start, end, hash);
    const old = slot?.node;
    if (linkTarget) {
      const primary = linkTarget.linkTo ?? linkTarget;
      if (old && (old.linkTo ?? old) === primary) {
        // A name re-archived as a link into its own group (GNU tar does this for a path listed
        // twice): upstream keeps the inode and data and takes the link's attributes.
        old.mode = mode;
        old.uid = uid;
        old.gid = gid;
        old.mtime = h.mtime;
        old.mtimeNsec = 0;
        return undefined;
      }
    }
    // Its path is its parent's and its name: the node keeps no path of its own (see ChildNode).
    const node = new ChildNode(depth === 0 ? undefined : (parentSlot.node as ChildNode), nodeName, mode, smi(uid), smi(gid), smi(h.mtime), 0, xattrs);
    node.size = smi(size);
    if (rdev !== 0) node.rdev = smi(rdev);
    if (target !== undefined) node.target = target;
    if (linkTarget) {
      // The link copies the target's size and xattrs, as upstream does; the group's first node carries the inode.
      const primary = linkTarget.linkTo ?? linkTarget;
      node.size = primary.size;
      node.xattrs = linkTarget.xattrs;
      node.linkTo = primary;
    }
    if (slot === undefined) {
      slot = new Slot(node, false);
      parentSlot.add(hash, slot);
    }
    slot.node = node;
    if (type !== S_IFDIR) {
      if (slot.kids !== undefined) this.generation++;
      slot.kids = undefined;
    } else {
      slot.kids ??= new Map();
    }

    const parent = depth === 0 ? undefined : parentSlot.node;
    if (type !== S_IFREG) return { node, parent, replaces: old };
    if (linkTarget) return { node, parent, replaces: old, open: linkOpener(path, this.linkNorm.path) };
    if (this.sparse) return { node, parent, replaces: old, open: opener(member, this.pull, this.sparse) };
    return { node, parent, replaces: old, dataOffset: this.dataAt, open: opener(member, this.pull, undefined) };
  }

  /** A symlink's target, checked (a copy: the raw bytes may be a view of the read block). */
  private symlinkTarget(): Buffer {
    const rawLink = this.rawLink;
    if (rawLink.length === 0) throw fail(this.member.path, 'failed to get symlink target for tar entry');
    if (rawLink.length > LIMITS.SYMLINK_MAX.value) throw limitError('SYMLINK_MAX', this.member.path, `symlink target of ${rawLink.length} bytes`);
    if (rawLink.includes(0)) throw fail(this.member.path, 'symlink target contains a NUL byte');
    return Buffer.from(rawLink);
  }

  /** A hardlink's target node, checked. */
  private hardlinkTarget(): TreeNode {
    const path = this.member.path;
    const rawLink = this.rawLink;
    if (rawLink.length === 0) throw fail(path, 'failed to get hardlink target for tar entry');
    if (rawLink.length > LIMITS.PATH_MAX.value) throw limitError('PATH_MAX', path, `hardlink target of ${rawLink.length} bytes`);
    const target = this.linkNorm;
    const tpath = display(normalise(rawLink, target));
    if (target.dotDot) throw fail(path, `a ".." component in hardlink target ${tpath} is not allowed`);
    let at: Slot | undefined = this.top;
    for (let i = 0; at !== undefined && i < target.count; i++) {
      const s = target.spans[2 * i]!;
      const e = target.spans[2 * i + 1]!;
      at = at.kids === undefined ? undefined : at.kid(target.path, s, e, nameHash(target.path, s, e));
    }
    const linkTarget = at?.node;
    if (!linkTarget) throw new NydusError('SOURCE', `unknown target ${tpath} for hardlink ${path}`);
    if ((linkTarget.mode & S_IFMT) !== S_IFREG) throw new NydusError('SOURCE', `target ${tpath} for hardlink ${path} is not a regular file`);
    return linkTarget;
  }

  /** The member's xattrs from its PAX records (SCHILY.xattr.*), checked, sorted by name. */
  private xattrsOf(ext: PaxRecord[]): TreeNode['xattrs'] {
    const path = this.member.path;
    const xattrs = new Map<string, TreeNode['xattrs'][number]>();
    for (const r of ext) {
      if (r.key.length <= SCHILY.length || !r.key.subarray(0, SCHILY.length).equals(SCHILY)) continue;
      const xname = Buffer.from(r.key.subarray(SCHILY.length));
      const text = xname.toString('utf8');
      const xshown = JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}…` : text);
      if (xname.length > LIMITS.XATTR_NAME_MAX.value) throw limitError('XATTR_NAME_MAX', `${path}: xattr ${xshown}`, `name of ${xname.length} bytes`);
      if (r.value.length > LIMITS.XATTR_VALUE_MAX.value) throw limitError('XATTR_VALUE_MAX', `${path}: xattr ${xshown}`, `value of ${r.value.length} bytes`);
      if (!XATTR_PREFIXES.some((p) => xname.length >= p.length && xname.subarray(0, p.length).equals(p))) {
        throw fail(path, `invalid xattr key ${xshown}: it must start with user., security., trusted., system.posix_acl_access or system.posix_acl_default`);
      }
      xattrs.set(xname.toString('latin1'), { name: xname, value: Buffer.from(r.value) });
    }
    if (xattrs.size === 0) return NO_XATTR_LIST;
    const list = [...xattrs.values()].sort((a, b) => Buffer.compare(a.name, b.name));
    const area = areaSize(list);
    if (area > LIMITS.XATTR_AREA_MAX.value) throw limitError('XATTR_AREA_MAX', path, `xattr area of ${area} bytes`);
    return list;
  }

  /**
   * The member's parent slot walked from the root, creating implied parents (in `implied`) with
   * the synthetic root's attributes. A path through a symlink, file or device an earlier member
   * made is refused: upstream would hang the member below a non-directory and drop it from the
   * image without a word.
   */
  private walkParent(parentLength: number): Slot {
    const norm = this.norm;
    const path = norm.path;
    const depth = norm.count;
    const spans = norm.spans;
    let parentSlot = this.top;
    let i = 0;
    for (; i < depth - 1; i++) {
      const next = parentSlot.kid(path, spans[2 * i]!, spans[2 * i + 1]!, nameHash(path, spans[2 * i]!, spans[2 * i + 1]!));
      if (next === undefined) break;
      if (next.kids === undefined) {
        throw fail(this.member.path, `an earlier entry made ${display(path.subarray(0, norm.end(i)))} a ${kindOf(next.node)}, not a directory`);
      }
      parentSlot = next;
    }
    for (; i < depth - 1; i++) {
      const dir = syntheticDir(parentSlot.node as ChildNode, norm.comp(i));
      const next = new Slot(dir, true);
      parentSlot.add(nameHash(path, spans[2 * i]!, spans[2 * i + 1]!), next);
      this.implied.push({ node: dir, parent: parentSlot.node });
      parentSlot = next;
    }
    this.lastSlot = parentSlot;
    this.lastParentOf = path;
    this.lastLength = parentLength;
    this.lastGeneration = this.generation;
    return parentSlot;
  }
}

/** Yields the synthetic root, then every member (and any implied parent before it) in stream order. */
export async function* tarSource(input: string | NodeJS.ReadableStream, opts: TarSourceOptions = {}): AsyncGenerator<TarEntry> {
  const name = typeof input === 'string' ? input : opts.name ?? '<tar stream>';
  const { pull, stop } = await openInput(input, name, opts.gzip ?? 'auto');
  // One generator, not one delegating to another: every entry costs a promise less. Its body is
  // the reads and yields only; the work of a member is in the parser's synchronous steps.
  try {
    const sparse = opts.sparse ?? (opts.gzip === 'never' ? 'refuse' : 'expand');
    const p = new TarParser(pull, name, opts.explicitUidGid !== false, sparse === 'expand');
    yield { node: p.root };
    for (;;) {
      const at = pull.offset;
      const have = pull.buffered >= BLOCK ? BLOCK : await pull.ensure(BLOCK);
      if (have === 0) break;
      if (have < BLOCK) throw p.truncatedHeader(at);
      // In place, and so are the names decode finds in it: valid until the next read from pull
      // (normalise copies the path; a link target is copied or normalised before any read).
      const block = pull.header();
      // Zero blocks are skipped wherever they are and reading goes on to the end, as upstream does.
      if (isZeroBlock(block)) continue;
      const h = p.decode(block, at);
      if (TarParser.isExtension(h)) {
        await p.extension(h, at);
        continue;
      }
      const member = p.begin(h, block, at);
      if (p.moreSparse) await p.sparseExtensions();
      if (p.skipped()) {
        await skipMember(member, pull);
        continue;
      }
      if (p.sparse) await p.sparseMap();
      const entry = p.finish();
      for (let i = 0; i < p.implied.length; i++) yield p.implied[i]!;
      if (entry === undefined) {
        await skipMember(member, pull);
        continue;
      }
      yield entry;
      // Usually the rest of the member and its padding are buffered: no promise for them.
      if (!pull.skipNow(member.left + padding(member.size))) await skipMember(member, pull);
      else {
        member.left = 0;
        member.current = false;
      }
    }
    if (p.pending !== undefined) {
      throw new NydusError('SOURCE', `the input ends after the ${p.pending.what} header at tar offset ${p.pending.at}, with no member for it`, { path: name });
    }
  } finally {
    // Closing must not hide the error that ended the walk.
    await stop().catch(() => {});
  }
}
