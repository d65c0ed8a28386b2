// Opens a bootstrap: a RAFS v6 or v5 file, or a data blob carrying its bootstrap inline
// (found through the TOC, or the image.boot section at the end).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { compressorByTocFlag } from '../algo/index.js';
import { NydusError, formatError, fsError } from '../errors.js';
import * as toc from '../format/blob/toc.js';
import * as sbc from '../format/erofs/superblock.js';
import * as tarHeader from '../format/blob/tar-header.js';
import type { RafsImage } from './model.js';
import { FEATURE_INLINED_FS_META, FEATURE_SEPARATE } from '../format/rafs/blob-table.js';
import { isV6, loadV6 } from './v6.js';
import { isV5, loadV5 } from './v5.js';

export function loadBootstrap(buf: Buffer): RafsImage {
  if (isV6(buf)) return loadV6(buf);
  if (isV5(buf)) return loadV5(buf);
  throw new NydusError('FORMAT', 'not a RAFS bootstrap (no RAFS v5 or v6 magic)');
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
      if (!boot) return undefined;
      const stored = Buffer.alloc(boot.compressed_size);
      fs.readSync(fd, stored, 0, stored.length, boot.compressed_offset);
      const c = compressorByTocFlag(boot.flags);
      if (!c) throw formatError('toc_entry', 'flags', boot.flags, 'unknown compression for image.boot');
      const raw = Buffer.from(c.decompress(stored, boot.uncompressed_size));
      if (raw.length !== boot.uncompressed_size) throw formatError('toc_entry', 'uncompressed_size', boot.uncompressed_size, `image.boot decompressed to ${raw.length} bytes`);
      return raw;
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
    if (h.name !== toc.NAME_IMAGE_BOOT || h.size > size - tarHeader.SIZE) return undefined;
    const raw = Buffer.alloc(h.size);
    fs.readSync(fd, raw, 0, raw.length, size - tarHeader.SIZE - h.size);
    return raw;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The blob id a file name carries: the name with every extension stripped (`abc.boot.tar` →
 * `abc`); a leading dot does not start an extension (upstream's get_blob_id_from_meta_path).
 */
export function idFromFileName(file: string): string {
  let id = path.basename(file);
  for (let dot = id.lastIndexOf('.'); dot > 0; dot = id.lastIndexOf('.')) id = id.slice(0, dot);
  return id;
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
  // The magic numbers lie in the first 1152 bytes: a data blob (possibly GBs) is never read whole.
  let isBootstrap: boolean;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const head = Buffer.alloc(sbc.OFFSET + sbc.SIZE);
      const n = fs.readSync(fd, head, 0, head.length, 0);
      isBootstrap = isV6(head.subarray(0, n)) || isV5(head.subarray(0, n));
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    throw fsError('SOURCE', file, e);
  }
  try {
    if (isBootstrap) {
      let buf: Buffer;
      try {
        buf = fs.readFileSync(file);
      } catch (e) {
        throw fsError('SOURCE', file, e);
      }
      return nameInlinedBlobs(loadBootstrap(buf), file);
    }
    const inner = extractInlineBootstrap(file);
    if (!inner) throw new NydusError('FORMAT', 'not a RAFS bootstrap, nor a data blob with an inline bootstrap');
    return nameInlinedBlobs(loadBootstrap(inner), file);
  } catch (e) {
    if (e instanceof NydusError && e.path === undefined) throw new NydusError(e.code, e.message, { path: file, cause: e });
    throw e;
  }
}
