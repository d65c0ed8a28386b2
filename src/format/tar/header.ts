// The 512-byte tar header (v7, POSIX ustar, GNU) and the PAX extended-header records, decoded
// as the tar crate upstream links reads them: names are raw bytes, numbers octal or GNU base-256.
import { formatError } from '../../errors.js';

export const BLOCK = 512;

export type TarFormat = 'v7' | 'ustar' | 'gnu';

export interface TarHeader {
  /** ustar: prefix + "/" + name when the prefix is set; otherwise the name field. Cut at the first NUL. */
  name: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  /** The raw typeflag byte ('0', '5', 'x', ... or NUL). */
  typeflag: number;
  linkname: Buffer;
  format: TarFormat;
  /** Absent on v7 headers, which have no device fields. */
  devmajor?: number;
  devminor?: number;
}

const USTAR_MAGIC = Buffer.from('ustar\0', 'latin1');
const GNU_MAGIC = Buffer.from('ustar ', 'latin1');
const GNU_VERSION = Buffer.from(' \0', 'latin1');
const SLASH = Buffer.from('/');

/** Padding after size bytes of entry data up to the next header. */
export const padding = (size: number) => (BLOCK - (size % BLOCK)) % BLOCK;

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

const NONE = Buffer.alloc(0);

/** A NUL-terminated field: a copy, or with inPlace a view of the block. */
function bytes(block: Buffer, off: number, len: number, inPlace: boolean): Buffer {
  if (block[off] === 0) return NONE;
  let end = off;
  while (end < off + len && block[end] !== 0) end++;
  const field = block.subarray(off, end);
  return inPlace ? field : Buffer.from(field);
}

/** An octal number (NUL or space terminated, blank = 0) or GNU base-256 (high bit of the first byte set). */
export function decodeNumber(block: Buffer, off: number, len: number, field: string): number {
  const end = off + len;
  if (block[off]! & 0x80) {
    const f = block.subarray(off, end);
    if (f[0] === 0xff) throw formatError('tar_header', field, `0x${f.toString('hex')}`, 'negative base-256 number');
    let v = BigInt(f[0]! & 0x7f);
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(f[i]!);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw formatError('tar_header', field, v, 'larger than 2^53');
    return Number(v);
  }
  // Fast path for the common shape, without a string or a view per field: spaces, octal
  // digits, spaces, then the field's end or a NUL. Anything else takes the general path below.
  let i = off;
  while (i < end && block[i] === 0x20) i++;
  const start = i;
  let v = 0;
  while (i < end && block[i]! >= 0x30 && block[i]! <= 0x37) {
    v = v * 8 + (block[i]! - 0x30);
    i++;
  }
  const digits = i - start;
  while (i < end && block[i] === 0x20) i++;
  if ((i === end || block[i] === 0) && digits <= 17) return v;
  const f = block.subarray(off, end);
  const nul = f.indexOf(0);
  const text = f.toString('latin1', 0, nul < 0 ? len : nul).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw formatError('tar_header', field, JSON.stringify(text), 'not an octal number');
  return parseInt(text, 8);
}

/**
 * The header checksum: every byte summed, the 8-byte chksum field (148..155) counted as spaces.
 * `words`, a DataView of block's whole buffer (a parser makes one per read block), lets it read
 * four bytes at a time.
 */
export function checksumOf(block: Buffer, words?: DataView): number {
  if (words === undefined || block.length < BLOCK) {
    let sum = 8 * 0x20;
    for (let i = 0; i < 148; i++) sum += block[i]!;
    for (let i = 156; i < BLOCK; i++) sum += block[i]!;
    return sum;
  }
  // Four bytes a read, summed in two 16-bit lanes (bytes 0 + 1 and 2 + 3 of each word): 126
  // words of at most 2 * 255 each stay below 2^16 per lane, so the 32-bit sum never carries
  // from one lane into the other (| 0 keeps it a 32-bit integer).
  const w = words;
  const at = block.byteOffset;
  let lanes = 0;
  for (let i = 0; i < 148; i += 4) {
    const x = w.getUint32(at + i, true);
    lanes = (lanes + (x & 0xff00ff) + ((x >>> 8) & 0xff00ff)) | 0;
  }
  for (let i = 156; i < BLOCK; i += 4) {
    const x = w.getUint32(at + i, true);
    lanes = (lanes + (x & 0xff00ff) + ((x >>> 8) & 0xff00ff)) | 0;
  }
  return 8 * 0x20 + (lanes & 0xffff) + (lanes >>> 16);
}

/** Whether block holds value's bytes at off. */
function fieldIs(block: Buffer, off: number, value: Buffer): boolean {
  for (let i = 0; i < value.length; i++) if (block[off + i] !== value[i]) return false;
  return true;
}

/**
 * Decodes a non-zero header block; throws on a checksum mismatch or a malformed number. With
 * inPlace, name and linkname are views of the block (a parser that reads the next header into
 * the same bytes must be done with them by then). `words`: a DataView of block's whole buffer,
 * for a faster checksum.
 */
export function decode(block: Buffer, inPlace = false, words?: DataView): TarHeader {
  if (block.length !== BLOCK) throw formatError('tar_header', 'length', block.length, `expected ${BLOCK}`);
  const stored = decodeNumber(block, 148, 8, 'chksum');
  const sum = checksumOf(block, words);
  if (stored !== sum) throw formatError('tar_header', 'chksum', stored, `header checksum mismatch (computed ${sum})`);
  // Byte compares in place: no view and no native call per header.
  const format: TarFormat = fieldIs(block, 257, USTAR_MAGIC)
    ? 'ustar'
    : fieldIs(block, 257, GNU_MAGIC) && fieldIs(block, 263, GNU_VERSION) ? 'gnu' : 'v7';
  let name = bytes(block, 0, 100, inPlace);
  if (format === 'ustar' && block[345] !== 0) name = Buffer.concat([bytes(block, 345, 155, true), SLASH, name]);
  const h: TarHeader = {
    name,
    mode: decodeNumber(block, 100, 8, 'mode'),
    uid: decodeNumber(block, 108, 8, 'uid'),
    gid: decodeNumber(block, 116, 8, 'gid'),
    size: decodeNumber(block, 124, 12, 'size'),
    mtime: decodeNumber(block, 136, 12, 'mtime'),
    typeflag: block[156]!,
    linkname: bytes(block, 157, 100, inPlace),
    format,
    // In the literal (undefined on v7): one shape, and no property added to every header after.
    devmajor: format === 'v7' ? undefined : decodeNumber(block, 329, 8, 'devmajor'),
    devminor: format === 'v7' ? undefined : decodeNumber(block, 337, 8, 'devminor'),
  };
  return h;
}

export interface PaxRecord {
  key: Buffer;
  value: Buffer;
}

/**
 * Splits PAX extended-header data into "LEN KEY=VALUE\n" records by their lengths, so values
 * may hold any byte (binary xattrs, newlines). Trailing NUL padding ends the list.
 */
export function decodePax(data: Buffer): PaxRecord[] {
  const out: PaxRecord[] = [];
  let at = 0;
  while (at < data.length && data[at] !== 0) {
    const space = data.indexOf(0x20, at);
    const digits = space < 0 ? '' : data.toString('latin1', at, space);
    if (!/^[0-9]{1,10}$/.test(digits)) throw formatError('pax_record', 'length', JSON.stringify(digits), `not a decimal length at byte ${at}`);
    const len = parseInt(digits, 10);
    const end = at + len;
    if (end > data.length || end <= space + 1 || data[end - 1] !== 0x0a) {
      throw formatError('pax_record', 'length', len, `does not end a record with a newline at byte ${at}`);
    }
    const eq = data.indexOf(0x3d, space + 1);
    if (eq < 0 || eq >= end - 1) throw formatError('pax_record', 'key', JSON.stringify(data.toString('latin1', space + 1, end - 1)), `no "=" in the record at byte ${at}`);
    out.push({ key: data.subarray(space + 1, eq), value: data.subarray(eq + 1, end - 1) });
    at = end;
  }
  return out;
}

/** One data region of a sparse file: size bytes stored in the member, belonging at offset in the file. */
export interface SparseRegion {
  offset: number;
  size: number;
}

/** Reads up to count (offset, numbytes) pairs of 12-byte numbers from off; an entry with both fields' first byte NUL ends the list. */
function sparseEntries(block: Buffer, off: number, count: number, out: SparseRegion[]): void {
  for (let i = 0; i < count; i++) {
    const at = off + 24 * i;
    if (block[at] === 0 && block[at + 12] === 0) return;
    out.push({ offset: decodeNumber(block, at, 12, 'sparse.offset'), size: decodeNumber(block, at + 12, 12, 'sparse.numbytes') });
  }
}

/** The old-GNU sparse fields of an 'S' header: 4 map entries at 386, isextended at 482, realsize at 483. */
export function decodeGnuSparse(block: Buffer): { regions: SparseRegion[]; extended: boolean; realSize: number } {
  const regions: SparseRegion[] = [];
  sparseEntries(block, 386, 4, regions);
  return { regions, extended: block[482] !== 0, realSize: decodeNumber(block, 483, 12, 'realsize') };
}

/** A GNU sparse extension block after an 'S' header: 21 map entries, then isextended at 504. */
export function decodeSparseExtension(block: Buffer, into: SparseRegion[]): boolean {
  sparseEntries(block, 0, 21, into);
  return block[504] !== 0;
}

/** What encode() writes: a ustar member of a regular file or directory with owner 0. */
export interface TarHeaderFields {
  /** At most 100 bytes (no prefix split, no PAX: the writers here name blobs by digest). */
  name: string;
  size: number;
  mode: number;
  mtime: number;
  /** '0' (regular, the default) or '5' (directory). */
  typeflag?: '0' | '5';
}

/** A number in a field of len bytes: octal with a NUL when it fits, else GNU base-256 (as Go's archive/tar writes it). */
function encodeNumber(block: Buffer, off: number, len: number, v: number, field: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw formatError('tar_header', field, v, 'not a non-negative integer');
  const octal = v.toString(8);
  if (octal.length <= len - 1) {
    block.write(octal.padStart(len - 1, '0'), off, 'latin1');
    block[off + len - 1] = 0;
    return;
  }
  let rest = BigInt(v);
  for (let i = off + len - 1; i > off; i--) {
    block[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  block[off] = 0x80;
}

/** Encodes a ustar header block (the inverse of decode for the fields it writes). */
export function encode(h: TarHeaderFields): Buffer {
  const name = Buffer.from(h.name, 'utf8');
  if (name.length === 0 || name.length > 100) throw formatError('tar_header', 'name', JSON.stringify(h.name), 'must be 1-100 bytes');
  const block = Buffer.alloc(BLOCK);
  name.copy(block, 0);
  encodeNumber(block, 100, 8, h.mode, 'mode');
  encodeNumber(block, 108, 8, 0, 'uid');
  encodeNumber(block, 116, 8, 0, 'gid');
  encodeNumber(block, 124, 12, h.size, 'size');
  encodeNumber(block, 136, 12, h.mtime, 'mtime');
  block[156] = (h.typeflag ?? '0').charCodeAt(0);
  USTAR_MAGIC.copy(block, 257);
  block.write('00', 263, 'latin1');
  encodeNumber(block, 329, 8, 0, 'devmajor');
  encodeNumber(block, 337, 8, 0, 'devminor');
  block.write(`${checksumOf(block).toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}
