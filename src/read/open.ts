// Opens a bootstrap: a RAFS v6 or v5 file, or a data blob carrying its bootstrap inline
// (found through the TOC, or the image.boot section at the end).
import * as fs from 'node:fs';
import { compressorByTocFlag } from '../algo/index.js';
import { NydusError, formatError, fsError } from '../errors.js';
import * as toc from '../format/blob/toc.js';
import * as sbc from '../format/erofs/superblock.js';
import * as tarHeader from '../format/blob/tar-header.js';
import { checkLimit } from '../format/limits.js';
import { totalContentSize } from '../format/blob/zstd-frame.js';
import { asFormatError, idFromFileName, type RafsImage } from './model.js';
import { FEATURE_INLINED_FS_META, FEATURE_SEPARATE } from '../format/rafs/blob-table.js';
import { isV6, loadV6 } from './v6.js';
import { isV5, loadV5 } from './v5.js';

export function loadBootstrap(buf: Buffer): RafsImage {
  try {
    if (isV6(buf)) return loadV6(buf);
    if (isV5(buf)) return loadV5(buf);
  } catch (e) {
    throw asFormatError(e);
  }
  throw new NydusError('FORMAT', 'not a RAFS bootstrap (no RAFS v5 or v6 magic)');
}

/** Reads `length` bytes at `position`, failing when the file holds fewer. */
function readExactly(fd: number, length: number, position: number, what: string): Buffer {
  const out = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, out, done, length - done, position + done);
    if (n === 0) throw new NydusError('FORMAT', `${what}: file ended after ${done} of ${length} bytes`);
    done += n;
  }
  return out;
}

/** image.boot as the TOC entry describes it: within the blob, within BOOTSTRAP_MAX, decompressed to its claimed size. */
function readTocBootstrap(fd: number, size: number, boot: toc.TocEntry): Buffer {
  const where = `toc_entry ${toc.NAME_IMAGE_BOOT}`;
  if (boot.compressed_offset + boot.compressed_size > size) {
    throw formatError('toc_entry', 'compressed_offset', boot.compressed_offset, `image.boot's ${boot.compressed_size} bytes there lie past the end of the blob (${size} bytes)`);
  }
  checkLimit('BOOTSTRAP_MAX', `${where} compressed_size`, boot.compressed_size);
  checkLimit('BOOTSTRAP_MAX', `${where} uncompressed_size`, boot.uncompressed_size);
  const c = compressorByTocFlag(boot.flags);
  if (!c) throw formatError('toc_entry', 'flags', boot.flags, 'unknown compression for image.boot');
  const stored = readExactly(fd, boot.compressed_size, boot.compressed_offset, where);
  // What zstd frames claim is checked before the decompressor allocates for the claim.
  if (c.name === 'zstd') {
    const claimed = totalContentSize(stored, where);
    if (claimed !== boot.uncompressed_size) throw formatError('toc_entry', 'uncompressed_size', boot.uncompressed_size, `image.boot's zstd frames hold ${claimed} bytes`);
  }
  let raw: Buffer;
  try {
    raw = Buffer.from(c.decompress(stored, boot.uncompressed_size));
  } catch (e) {
    throw new NydusError('FORMAT', `image.boot does not decompress with ${c.name}: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  if (raw.length !== boot.uncompressed_size) throw formatError('toc_entry', 'uncompressed_size', boot.uncompressed_size, `image.boot decompressed to ${raw.length} bytes`);
  return raw;
}

export interface TocSection {
  entry: toc.TocEntry;
}

/** Reads a blob's TOC from its last 4 KiB, or undefined when the blob has none. */
export function readToc(fd: number, size: number): toc.TocEntry[] | undefined {
  if (size < tarHeader.SIZE) return undefined;
  const tailLen = Math.min(4096, size & ~127);
  const tail = Buffer.alloc(tailLen);
  fs.readSync(fd, tail, 0, tailLen, size - tailLen);
  let h: tarHeader.SectionHeader;
  try {
    h = tarHeader.decode(tail, tailLen - tarHeader.SIZE);
  } catch {
    return undefined;
  }
  if (h.name !== toc.NAME_TOC || h.size > tailLen - tarHeader.SIZE) return undefined;
  return toc.decodeAll(tail.subarray(tailLen - tarHeader.SIZE - h.size, tailLen - tarHeader.SIZE));
}

/** Extracts the bootstrap stored inside a data blob (--blob-inline-meta). */
export function extractInlineBootstrap(file: string): Buffer | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw fsError('SOURCE', file, e);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const entries = readToc(fd, size);
    if (entries) {
      const boot = entries.find((e) => e.name === toc.NAME_IMAGE_BOOT);
      return boot ? readTocBootstrap(fd, size, boot) : undefined;
    }
    if (size < tarHeader.SIZE) return undefined;
    const last = Buffer.alloc(tarHeader.SIZE);
    fs.readSync(fd, last, 0, last.length, size - tarHeader.SIZE);
    let h: tarHeader.SectionHeader;
    try {
      h = tarHeader.decode(last, 0);
    } catch {
      return undefined;
    }
    if (h.name !== toc.NAME_IMAGE_BOOT) return undefined;
    if (h.size > size - tarHeader.SIZE) throw formatError('tar_header', toc.NAME_IMAGE_BOOT, h.size, `section larger than the blob (${size} bytes)`);
    checkLimit('BOOTSTRAP_MAX', `tar_header ${toc.NAME_IMAGE_BOOT} size`, h.size);
    return readExactly(fd, h.size, size - tarHeader.SIZE - h.size, toc.NAME_IMAGE_BOOT);
  } finally {
    fs.closeSync(fd);
  }
}

/** A blob whose bootstrap was inlined in it cannot be named by that bootstrap: the file's name names it. */
function nameInlinedBlobs(image: RafsImage, file: string): RafsImage {
  for (const b of image.blobs) {
    if ((b.features & FEATURE_INLINED_FS_META) !== 0 && (b.features & FEATURE_SEPARATE) === 0) b.blobId = idFromFileName(file);
  }
  return image;
}

/**
 * Opens a bootstrap file, or a data blob with its bootstrap inline. A blob whose bootstrap was
 * inlined in it is named after the file (as upstream's load_from_file does): its table says "x"s.
 */
export function openImage(file: string): RafsImage {
  try {
    // The magic numbers lie in the first 1152 bytes: a data blob (possibly GBs) is never read whole.
    const bootstrap = readIfBootstrap(file);
    // A blob with no chunk data starts with its inline bootstrap: the v6 magic, but not 4 KiB-sized.
    if (bootstrap && isV6(bootstrap) && bootstrap.length % 4096 !== 0) {
      const inner = extractInlineBootstrap(file);
      if (inner) return nameInlinedBlobs(loadBootstrap(inner), file);
    }
    if (bootstrap) return nameInlinedBlobs(loadBootstrap(bootstrap), file);
    const inner = extractInlineBootstrap(file);
    if (!inner) throw new NydusError('FORMAT', 'not a RAFS bootstrap, nor a data blob with an inline bootstrap');
    return nameInlinedBlobs(loadBootstrap(inner), file);
  } catch (e) {
    const err = asFormatError(e);
    if (err instanceof NydusError && err.path === undefined) throw new NydusError(err.code, err.message, { path: file, cause: err });
    throw err;
  }
}

/** The whole file when it starts with a RAFS magic (and is no larger than BOOTSTRAP_MAX), else undefined. */
function readIfBootstrap(file: string): Buffer | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw fsError('SOURCE', file, e);
  }
  try {
    let size: number;
    let head: Buffer;
    try {
      const st = fs.fstatSync(fd);
      if (st.isDirectory()) throw fsError('SOURCE', file, Object.assign(new Error('is a directory'), { code: 'EISDIR' }));
      size = st.size;
      head = Buffer.alloc(Math.min(size, sbc.OFFSET + sbc.SIZE));
      const n = fs.readSync(fd, head, 0, head.length, 0);
      head = head.subarray(0, n);
    } catch (e) {
      if (e instanceof NydusError) throw e;
      throw fsError('SOURCE', file, e);
    }
    if (!isV6(head) && !isV5(head)) return undefined;
    // Stat before reading: a bootstrap is held in memory whole.
    checkLimit('BOOTSTRAP_MAX', 'bootstrap size', size);
    try {
      return readExactly(fd, size, 0, 'bootstrap');
    } catch (e) {
      if (e instanceof NydusError) throw e;
      throw fsError('SOURCE', file, e);
    }
  } finally {
    fs.closeSync(fd);
  }
}
