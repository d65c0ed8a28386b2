// What a loaded bootstrap looks like to check, inspect, unpack, export and merge,
// whatever RAFS version it was decoded from.
import type { CompressorName, DigesterName } from '../algo/index.js';
import { basename } from 'node:path';
import { NydusError } from '../errors.js';

export interface Xattr {
  /** Full name with its namespace prefix, e.g. "user.foo". */
  name: Buffer;
  value: Buffer;
}

/** One entry of a blob's chunk-info (or the bootstrap's chunk table): where a chunk's bytes are. */
export interface ChunkInfo {
  /** 0-based index into the blob table. */
  blobIndex: number;
  /** Index into that blob's chunk-info array (blob.meta). */
  index: number;
  /** Digest of the uncompressed bytes (zeros when the format does not carry it). */
  digest: Buffer;
  /** Chunk flags: 0x1 COMPRESSED, 0x4 ENCRYPTED, 0x8 BATCH, 0x10 HAS_CRC32. */
  flags: number;
  compressedOffset: number;
  compressedSize: number;
  uncompressedOffset: number;
  uncompressedSize: number;
  /** Offset of this chunk in the file that references it. */
  fileOffset: number;
  crc32: number;
  /**
   * Copies the digest's first 32 bytes (all of a shorter one) into out at `at`: for a record that
   * keeps its digest elsewhere and would make a Buffer for each read of `digest` (copyDigest).
   */
  digestInto?(out: Uint8Array, at: number): void;
}

/** c's digest, its first 32 bytes (all of a shorter one), into out at `at`; no Buffer made where c can avoid it. */
export function copyDigest(c: ChunkInfo, out: Uint8Array, at: number): void {
  if (c.digestInto) {
    c.digestInto(out, at);
    return;
  }
  const d = c.digest;
  const n = d.length < 32 ? d.length : 32;
  for (let i = 0; i < n; i++) out[at + i] = d[i];
}

export const CHUNK_COMPRESSED = 0x1;
export const CHUNK_ENCRYPTED = 0x4;
export const CHUNK_BATCH = 0x8;

export interface BlobInfo {
  index: number;
  blobId: string;
  chunkSize: number;
  chunkCount: number;
  compressor: CompressorName;
  digester: DigesterName;
  /** BlobFeatures bits. */
  features: number;
  compressedSize: number;
  uncompressedSize: number;
  tocSize: number;
  tocDigest: Buffer;
  ciCompressor: CompressorName;
  ciOffset: number;
  ciCompressedSize: number;
  ciUncompressedSize: number;
  /** The AES key when cipherAlgo is set. */
  metaDigest: Buffer;
  metaSize: number;
  /** crypt::Algorithm of the blob's data (0 or absent: none; 1: aes128xts). */
  cipherAlgo?: number;
  /** The 16-byte AES-XTS IV when cipherAlgo is set. */
  cipherIv?: Buffer;
}

export interface ImageNode {
  /** v6: the nid; v5: the inode number. Hardlinks share it. */
  ino: number;
  /** Name bytes in the parent directory (empty for the root). */
  name: Buffer;
  /** st_mode: type and permission bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Regular file: bytes; symlink: target length; directory: format-specific; others: 0. */
  size: number;
  mtime: number;
  mtimeNsec: number;
  nlink: number;
  /** Linux new_encode_dev form: (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12). */
  rdev: number;
  /** Sorted by name bytes. */
  xattrs: Xattr[];
  /** Symlink target. */
  target?: Buffer;
  /** Regular file: its chunks in file order. */
  chunks?: ChunkInfo[];
  /** Directory: children sorted by name bytes, without "." and "..". */
  children?: ImageNode[];
}

export interface RafsImage {
  version: 5 | 6;
  /** RAFS superblock flags. */
  flags: number;
  compressor: CompressorName;
  digester: DigesterName;
  chunkSize: number;
  /** Block size of the metadata (4096, or 512 for tarfs). */
  blockSize: number;
  /** Entries the superblock claims (root and every child, hardlinks counted once each). */
  inodeCount: number;
  blobs: BlobInfo[];
  /** The bootstrap's chunk table (v6) or every chunk referenced (v5), in table order. */
  chunkTable: ChunkInfo[];
  /** Inode numbers listed in the prefetch table. */
  prefetch: number[];
  root: ImageNode;
  /** Size of the bootstrap in bytes. */
  bootstrapSize: number;
}

export { S_IFMT, S_IFSOCK, S_IFLNK, S_IFREG, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO, isDir, isReg, isSymlink } from '../format/mode.js';

/** A name from an image for a message: quoted, with control bytes and quotes escaped. */
export const showName = (name: Uint8Array): string => JSON.stringify(Buffer.from(name).toString('utf8'));

/** A path of names from the root for a message ("/" for the root). */
export const showPath = (names: readonly Uint8Array[]): string =>
  JSON.stringify(`/${names.map((n) => Buffer.from(n).toString('utf8')).join('/')}`);

/**
 * What a decoder threw, as a user error: a RangeError (Buffer reads past the end,
 * ERR_OUT_OF_RANGE, ERR_BUFFER_OUT_OF_BOUNDS) means the bytes lie about a size or an offset.
 * Anything else (a NydusError, or our own bug) is returned as it is.
 */
export function asFormatError(e: unknown): unknown {
  if (!(e instanceof RangeError)) return e;
  return new NydusError('FORMAT', `bootstrap is corrupt: ${e.message.split('\n')[0]}`, { cause: e });
}

/**
 * The blob id a file name carries: the name with every extension stripped (`abc.boot.tar` →
 * `abc`); a leading dot does not start an extension (upstream's get_blob_id_from_meta_path).
 * Here rather than in open.ts so that a build, which names blobs this way, does not load the readers.
 */
export function idFromFileName(file: string): string {
  let id = basename(file);
  for (let dot = id.lastIndexOf('.'); dot > 0; dot = id.lastIndexOf('.')) id = id.slice(0, dot);
  return id;
}
