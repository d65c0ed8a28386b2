// `unpack`: a bootstrap and its blobs back to one tar stream, the way upstream writes it (spec
// tar-merge-export.md §8): ustar headers, a PAX `x` entry only for long names and xattrs, file
// data streamed chunk by chunk, then two zero blocks. Written to a temporary name and renamed,
// or in place when the output is a FIFO.
import * as fs from 'node:fs';
import { NydusError } from '../errors.js';
import { badName } from '../format/limits.js';
import { OutputFile } from '../io/atomic.js';
import { BlobReader } from './data.js';
import type { SyncBlobReader } from '../backends/sync-reader.js';
import { openImage } from './open.js';
import {
  S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, type ImageNode, type RafsImage,
} from './model.js';
import { BLOCK, checksumOf, padding } from '../format/tar/header.js';
import { decodeDev } from '../format/erofs/inode.js';

export interface UnpackOptions {
  /** Bootstrap file, or a data blob with its bootstrap inline. */
  bootstrap: string;
  /** Output tar: a regular file (replaced atomically) or a FIFO (written in place). */
  output: string;
  /** The one data blob of a single-blob image. */
  blob?: string;
  /** Directory holding the data blobs, each named by its id. */
  blobDir?: string;
  /** Check every chunk against its digest while reading (upstream does not). */
  verify?: boolean;
  /** Read the blobs from this backend (ranged gets) instead of --blob / --blob-dir. */
  backend?: SyncBlobReader;
}

// ---------------------------------------------------------------------------------------------
// The ustar header as upstream's tar crate (0.4.45) fills it: numbers are zero-padded octal
// ending in NUL, uid/gid from 2^21 and size/mtime from 2^33 in GNU base-256; the checksum is
// six octal digits, NUL, space (nydus's own set_cksum).

const NAME_MAX = 100;
const NAME_OFF = 0;
const MODE_OFF = 100;
const UID_OFF = 108;
const GID_OFF = 116;
const SIZE_OFF = 124;
const MTIME_OFF = 136;
const CHKSUM_OFF = 148;
const TYPEFLAG_OFF = 156;
const LINKNAME_OFF = 157;
const MAGIC_OFF = 257;
const UNAME_OFF = 265;
const GNAME_OFF = 297;
const DEVMAJOR_OFF = 329;
const DEVMINOR_OFF = 337;
const OWNER_NAME_MAX = 32;

export const TYPE_FILE = 0x30; // '0'
export const TYPE_HARDLINK = 0x31; // '1'
export const TYPE_SYMLINK = 0x32; // '2'
export const TYPE_CHAR = 0x33; // '3'
export const TYPE_BLOCK = 0x34; // '4'
export const TYPE_DIR = 0x35; // '5'
export const TYPE_FIFO = 0x36; // '6'
export const TYPE_PAX = 0x78; // 'x'

export interface UstarFields {
  /** At most 100 bytes; the prefix field is never used. */
  name: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: number;
  /** At most 100 bytes. */
  linkname?: Buffer;
  /** At most 32 bytes each. */
  uname?: Buffer;
  gname?: Buffer;
  /** Left all NUL when undefined (the PAX entry's header). */
  devmajor?: number;
  devminor?: number;
}

function putBytes(h: Buffer, off: number, len: number, field: string, value: Buffer): void {
  if (value.length > len) throw new NydusError('INTERNAL', `tar header ${field}: ${value.length} bytes do not fit in ${len}`);
  value.copy(h, off);
}

function putOctal(h: Buffer, off: number, len: number, field: string, value: number): void {
  const digits = value.toString(8);
  if (!Number.isSafeInteger(value) || value < 0 || digits.length > len - 1) {
    throw new NydusError('INTERNAL', `tar header ${field} = ${value}: does not fit in ${len - 1} octal digits`);
  }
  h.write(digits.padStart(len - 1, '0'), off, 'latin1');
  h[off + len - 1] = 0;
}

/** uid, gid (8 bytes) and size, mtime (12 bytes): octal while it fits, else GNU base-256. */
function putNumber(h: Buffer, off: number, len: 8 | 12, field: string, value: number): void {
  if (value >= 8 ** 11 || (len === 8 && value >= 8 ** 7)) {
    h.fill(0, off, off + len);
    h.writeBigUInt64BE(BigInt(value), off + len - 8);
    h[off] |= 0x80;
  } else {
    putOctal(h, off, len, field, value);
  }
}

export function encodeUstar(f: UstarFields): Buffer {
  const h = Buffer.alloc(BLOCK);
  putBytes(h, NAME_OFF, NAME_MAX, 'name', f.name);
  putOctal(h, MODE_OFF, 8, 'mode', f.mode);
  putNumber(h, UID_OFF, 8, 'uid', f.uid);
  putNumber(h, GID_OFF, 8, 'gid', f.gid);
  putNumber(h, SIZE_OFF, 12, 'size', f.size);
  putNumber(h, MTIME_OFF, 12, 'mtime', f.mtime);
  h[TYPEFLAG_OFF] = f.typeflag;
  if (f.linkname) putBytes(h, LINKNAME_OFF, NAME_MAX, 'linkname', f.linkname);
  h.write('ustar\x0000', MAGIC_OFF, 'latin1');
  if (f.uname) putBytes(h, UNAME_OFF, OWNER_NAME_MAX, 'uname', f.uname);
  if (f.gname) putBytes(h, GNAME_OFF, OWNER_NAME_MAX, 'gname', f.gname);
  if (f.devmajor !== undefined) putOctal(h, DEVMAJOR_OFF, 8, 'devmajor', f.devmajor);
  if (f.devminor !== undefined) putOctal(h, DEVMINOR_OFF, 8, 'devminor', f.devminor);
  h.write(checksumOf(h).toString(8).padStart(6, '0'), CHKSUM_OFF, 'latin1');
  h[CHKSUM_OFF + 6] = 0;
  h[CHKSUM_OFF + 7] = 0x20;
  return h;
}

/** One PAX record, `"<len> <key>=<value>\n"`, where len counts the whole record. */
export function paxRecord(key: Buffer, value: Buffer): Buffer {
  const rest = key.length + value.length + 3;
  let len = rest + 1;
  while (rest + String(len).length !== len) len = rest + String(len).length;
  return Buffer.concat([Buffer.from(`${len} `), key, Buffer.from('='), value, Buffer.from('\n')]);
}

/** Length of the longest valid UTF-8 prefix (Rust's Utf8Error::valid_up_to). */
export function validUtf8Prefix(b: Buffer): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let more: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) more = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      more = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      more = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    if (i + more >= b.length) return i;
    const second = b[i + 1]!;
    if (second < lo || second > hi) return i;
    for (let k = 2; k <= more; k++) if ((b[i + k]! & 0xc0) !== 0x80) return i;
    i += more + 1;
  }
  return i;
}

/**
 * What goes in a 100-byte field for a longer path: its first 100 bytes cut back to valid UTF-8,
 * as upstream; when nothing of it is valid UTF-8 (upstream fails there) the raw 100 bytes.
 */
export function truncateName(p: Buffer): Buffer {
  const head = p.subarray(0, NAME_MAX);
  const n = validUtf8Prefix(head);
  return n > 0 ? head.subarray(0, n) : head;
}

/** The PAX entry's own name: `<dir>/PaxHeaders.0/<base>` of the main header's name, cut to 100 bytes. */
export function paxHeaderName(name: Buffer): Buffer {
  let end = name.length;
  while (end > 1 && name[end - 1] === 0x2f) end--;
  const trimmed = name.subarray(0, end);
  const slash = trimmed.lastIndexOf(0x2f);
  const full = Buffer.concat([trimmed.subarray(0, slash + 1), Buffer.from('PaxHeaders.0/'), trimmed.subarray(slash + 1)]);
  return full.length > NAME_MAX ? truncateName(full) : full;
}

const ZEROS = Buffer.alloc(BLOCK * 2);


export interface EntryHeader extends Omit<UstarFields, 'name' | 'linkname'> {
  /** Full path, without a leading '/'. */
  path: Buffer;
  /** Full link target (symlink) or first member's path (hard link). */
  link?: Buffer;
  xattrs: Array<{ name: Buffer; value: Buffer }>;
}

/**
 * The bytes in front of an entry's data: a PAX `x` entry when the path or link does not fit in
 * 100 bytes or there are xattrs (records sorted by key), then the ustar header.
 */
export function encodeEntryHeader(e: EntryHeader): Buffer {
  const records: Array<[Buffer, Buffer]> = [];
  let name = e.path;
  if (name.length > NAME_MAX) {
    records.push([Buffer.from('path'), e.path]);
    name = truncateName(e.path);
  }
  let linkname = e.link;
  if (linkname && linkname.length > NAME_MAX) {
    records.push([Buffer.from('linkpath'), linkname]);
    linkname = truncateName(linkname);
  }
  for (const x of e.xattrs) records.push([Buffer.concat([Buffer.from('SCHILY.xattr.'), x.name]), x.value]);
  const main = encodeUstar({
    name, linkname, mode: e.mode, uid: e.uid, gid: e.gid, size: e.size, mtime: e.mtime, typeflag: e.typeflag,
    uname: e.uname, gname: e.gname, devmajor: e.devmajor, devminor: e.devminor,
  });
  if (records.length === 0) return main;
  records.sort((a, b) => Buffer.compare(a[0], b[0]));
  const data = Buffer.concat(records.map(([k, v]) => paxRecord(k, v)));
  const pax = encodeUstar({ name: paxHeaderName(name), mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0, typeflag: TYPE_PAX });
  return Buffer.concat([pax, data, ZEROS.subarray(0, padding(data.length)), main]);
}

// ---------------------------------------------------------------------------------------------
// Owner names from the host, as upstream asks getpwuid/getgrgid: the first entry of an id wins.

function idNames(file: string): Map<number, Buffer> {
  const names = new Map<number, Buffer>();
  let text: string;
  try {
    text = fs.readFileSync(file, 'latin1');
  } catch {
    return names;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 3 || f[0] === '' || !/^[0-9]+$/.test(f[2]!)) continue;
    const id = Number(f[2]);
    const name = Buffer.from(f[0]!, 'latin1');
    // A name longer than the field is left out (upstream fails the whole unpack on it).
    if (!names.has(id) && name.length <= OWNER_NAME_MAX) names.set(id, name);
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// The entries: pre-order depth-first, children in name order; the root and sockets not written.

/** Major and minor from the new_encode_dev form the inode stores (a u32). */
export { decodeDev };

const TYPEFLAG: Record<number, number> = {
  [S_IFDIR]: TYPE_DIR,
  [S_IFREG]: TYPE_FILE,
  [S_IFLNK]: TYPE_SYMLINK,
  [S_IFCHR]: TYPE_CHAR,
  [S_IFBLK]: TYPE_BLOCK,
  [S_IFIFO]: TYPE_FIFO,
};

/**
 * Every node but the root with its path (no leading '/'), parents before children. The loaders
 * validate names; this checks again, as the last step before bytes reach an extractor that may
 * trust them (Python's tarfile without a filter, an old tar): each name is one plain component,
 * names in a directory are strictly increasing (so no path is written twice, and no member can
 * pass through an earlier symlink or file of the same name), and only directories are descended
 * into, each written as a directory before its children.
 */
function* walk(root: ImageNode): Generator<[Buffer, ImageNode]> {
  const stack: Array<[Buffer, ImageNode]> = [];
  const push = (dir: Buffer | null, n: ImageNode) => {
    const kids = n.children ?? [];
    for (let i = kids.length - 1; i >= 0; i--) {
      const c = kids[i]!;
      const why = badName(c.name);
      if (why) throw refused(dir, c.name, why);
      if (i > 0 && Buffer.compare(kids[i - 1]!.name, c.name) >= 0) throw refused(dir, c.name, 'not strictly after the name before it (a duplicate)');
      stack.push([dir ? Buffer.concat([dir, SLASH, c.name]) : c.name, c]);
    }
  };
  push(null, root);
  while (stack.length > 0) {
    const [p, n] = stack.pop()!;
    yield [p, n];
    if ((n.mode & S_IFMT) === S_IFDIR) push(p, n);
  }
}

const SLASH = Buffer.from('/');

function refused(dir: Buffer | null, name: Buffer, why: string): NydusError {
  const where = dir ? `${dir.toString('utf8')}/${name.toString('utf8')}` : name.toString('utf8');
  return new NydusError('FORMAT', `refusing to write tar member ${JSON.stringify(where)}: ${why}`);
}

/** Coalesces small pieces into larger writes and bounds what is queued behind the output. */
class TarWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  static readonly COALESCE = 256 * 1024;
  static readonly HIGH_WATER = 16 * 1024 * 1024;

  constructor(private readonly out: OutputFile) {}

  async write(b: Buffer): Promise<void> {
    if (b.length >= TarWriter.COALESCE) {
      this.flushPending();
      this.out.write(b);
    } else {
      this.pending.push(b);
      this.pendingBytes += b.length;
      if (this.pendingBytes >= TarWriter.COALESCE) this.flushPending();
    }
    await this.out.drain(TarWriter.HIGH_WATER);
  }

  private flushPending(): void {
    if (this.pendingBytes === 0) return;
    this.out.write(this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes));
    this.pending = [];
    this.pendingBytes = 0;
  }

  async flush(): Promise<void> {
    this.flushPending();
    await this.out.drain();
  }
}

/**
 * Opens every blob a file needs (reading its first chunk), so a missing or unreadable blob
 * fails before any output exists.
 */
function probeBlobs(image: RafsImage, reader: BlobReader, verify: boolean): void {
  const first = new Map<number, NonNullable<ImageNode['chunks']>[number]>();
  const seenIno = new Set<number>();
  for (const [, n] of walk(image.root)) {
    // Every name of an inode shares its chunks: look at them once.
    if (!n.chunks || seenIno.has(n.ino)) continue;
    seenIno.add(n.ino);
    for (const c of n.chunks) {
      if (!first.has(c.blobIndex)) first.set(c.blobIndex, c);
    }
  }
  for (const c of first.values()) reader.readChunk(c, verify);
}

async function writeEntries(image: RafsImage, reader: BlobReader, w: TarWriter, verify: boolean): Promise<void> {
  const users = idNames('/etc/passwd');
  const groups = idNames('/etc/group');
  const firstLink = new Map<number, Buffer>();
  for (const [p, n] of walk(image.root)) {
    const type = n.mode & S_IFMT;
    if (type === S_IFSOCK) continue;
    const typeflag = TYPEFLAG[type];
    if (typeflag === undefined) throw new NydusError('FORMAT', `node /${p.toString('utf8')} (mode 0o${n.mode.toString(8)}) can not be unpacked`);
    const common = {
      path: p, mode: n.mode & 0o7777, uid: n.uid, gid: n.gid, mtime: n.mtime,
      uname: users.get(n.uid), gname: groups.get(n.gid), xattrs: n.xattrs, devmajor: 0, devminor: 0,
    };
    const first = type === S_IFREG ? firstLink.get(n.ino) : undefined;
    if (first) {
      // The target is a path this tar wrote as a regular file. Upstream's link name keeps the
      // walk's leading '/', which GNU tar strips but Python's tarfile joins to nothing: it would
      // link a host file into the output. We write it relative, as GNU tar extracts it.
      await w.write(encodeEntryHeader({ ...common, size: 0, typeflag: TYPE_HARDLINK, link: first }));
      continue;
    }
    // Every file, whatever its nlink says: a hostile image names one inode 70,000 times with
    // nlink 1, and writing its data under each name turned a 1.4 MB bootstrap into a 560 MB tar.
    if (type === S_IFREG) firstLink.set(n.ino, p);
    if (type === S_IFREG) {
      const held = (n.chunks ?? []).reduce((sum, c) => sum + c.uncompressedSize, 0);
      if (held !== n.size) throw new NydusError('FORMAT', `/${p.toString('utf8')}: its chunks hold ${held} bytes, its inode says ${n.size}`);
      await w.write(encodeEntryHeader({ ...common, size: n.size, typeflag }));
      for (const chunk of reader.readFile(n, verify)) await w.write(chunk);
      const pad = padding(n.size);
      if (pad > 0) await w.write(ZEROS.subarray(0, pad));
    } else if (type === S_IFLNK) {
      await w.write(encodeEntryHeader({ ...common, size: 0, typeflag, link: n.target ?? Buffer.alloc(0) }));
    } else if (type === S_IFCHR || type === S_IFBLK || type === S_IFIFO) {
      // FIFOs too, as upstream: their rdev is 0 in practice.
      const { major, minor } = decodeDev(n.rdev);
      await w.write(encodeEntryHeader({ ...common, size: 0, typeflag, devmajor: major, devminor: minor }));
    } else {
      // Directories: the header alone.
      await w.write(encodeEntryHeader({ ...common, size: 0, typeflag }));
    }
  }
  await w.write(ZEROS);
  await w.flush();
}

/** Writes the tar of a bootstrap's tree, reading file data from its blobs. */
export async function unpack(o: UnpackOptions): Promise<void> {
  if (o.output === '') throw new NydusError('USAGE', 'invalid empty --output option');
  if (o.blob !== undefined && o.blobDir !== undefined) throw new NydusError('USAGE', 'give either --blob or --blob-dir, not both');
  await unpackImage(openImage(o.bootstrap), o);
}

/** Writes the tar of a loaded image (`o.bootstrap` only names it): unpack after openImage. */
export async function unpackImage(image: RafsImage, o: UnpackOptions): Promise<void> {
  if (o.output === '') throw new NydusError('USAGE', 'invalid empty --output option');
  const verify = o.verify ?? false;
  const reader = new BlobReader(image, o.backend ? { backend: o.backend, imageFile: o.bootstrap } : { blob: o.blob, blobDir: o.blobDir, imageFile: o.bootstrap });
  try {
    probeBlobs(image, reader, verify);
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(o.output);
    } catch {
      st = undefined;
    }
    if (st?.isDirectory()) throw new NydusError('OUTPUT', 'is a directory', { path: o.output });
    const out = OutputFile.open(o.output);
    try {
      await writeEntries(image, reader, new TarWriter(out), verify);
      await out.commit();
    } catch (e) {
      await out.abort();
      throw e;
    }
  } finally {
    reader.close();
  }
}
