// RAFS v6 blob table entry, 256 bytes each (rafs-v6.md §6). Also holds what zran, batch,
// tarfs and encrypted blobs need (features, meta digest/size, cipher fields).
import { formatError } from '../../errors.js';
import { cstr, need, putCstr, putU64, u64 } from '../util.js';

export const SIZE = 256;

export const FEATURE_ALIGNED = 0x1;
export const FEATURE_INLINED_FS_META = 0x2;
export const FEATURE_CHUNK_INFO_V2 = 0x4;
export const FEATURE_ZRAN = 0x8;
export const FEATURE_SEPARATE = 0x10;
export const FEATURE_INLINED_CHUNK_DIGEST = 0x20;
export const FEATURE_TARFS = 0x40;
export const FEATURE_BATCH = 0x80;
export const FEATURE_ENCRYPTED = 0x100;
export const FEATURE_IS_CHUNKDICT_GENERATED = 0x200;
export const FEATURE_IS_SEPARATED_WITH_PREFETCH_FILES = 0x400;
export const FEATURE_EXTERNAL = 0x800;
export const FEATURE_HAS_TAR_HEADER = 0x1000_0000;
export const FEATURE_HAS_TOC = 0x2000_0000;
export const FEATURE_CAP_TAR_TOC = 0x4000_0000;

/** `check` prints feature words in this order. */
export const FEATURE_WORDS: ReadonlyArray<[number, string]> = [
  [FEATURE_ALIGNED, 'aligned'],
  [FEATURE_BATCH, 'batch'],
  [FEATURE_CAP_TAR_TOC, 'cap_toc'],
  [FEATURE_INLINED_CHUNK_DIGEST, 'chunk-digest'],
  [FEATURE_CHUNK_INFO_V2, 'chunk-v2'],
  [FEATURE_INLINED_FS_META, 'fs-meta'],
  [FEATURE_SEPARATE, 'separate'],
  [FEATURE_HAS_TAR_HEADER, 'tar-header'],
  [FEATURE_HAS_TOC, 'toc'],
  [FEATURE_ZRAN, 'zran'],
  [FEATURE_ENCRYPTED, 'encrypted'],
  [FEATURE_IS_CHUNKDICT_GENERATED, 'is-chunkdict-generated'],
];

export interface BlobEntry {
  blob_id: string;
  blob_index: number;
  chunk_size: number;
  chunk_count: number;
  compression_algo: number;
  digest_algo: number;
  features: number;
  compressed_size: number;
  uncompressed_size: number;
  blob_toc_size: number;
  ci_compressor: number;
  ci_offset: number;
  ci_compressed_size: number;
  ci_uncompressed_size: number;
  blob_toc_digest: Buffer;
  blob_meta_digest: Buffer;
  blob_meta_size: number;
  /**
   * The 16-byte AES-XTS IV when cipher_algo is set: bytes 0-7 take blob_meta_size's place, 8-15
   * are the cipher_iv field (rafs-v6.md §6). Without a cipher only bytes 8-15 are stored.
   */
  cipher_iv: Buffer;
  cipher_algo: number;
}

const zero32 = Buffer.alloc(32);

export function encode(e: BlobEntry): Buffer {
  const b = Buffer.alloc(SIZE);
  putCstr(b, 0, 64, e.blob_id, 'blob_table', 'blob_id');
  b.writeUInt32LE(e.blob_index, 64);
  b.writeUInt32LE(e.chunk_size, 68);
  b.writeUInt32LE(e.chunk_count, 72);
  b.writeUInt32LE(e.compression_algo, 76);
  b.writeUInt32LE(e.digest_algo, 80);
  b.writeUInt32LE(e.features >>> 0, 84);
  putU64(b, 88, e.compressed_size);
  putU64(b, 96, e.uncompressed_size);
  b.writeUInt32LE(e.blob_toc_size, 104);
  b.writeUInt32LE(e.ci_compressor, 108);
  putU64(b, 112, e.ci_offset);
  putU64(b, 120, e.ci_compressed_size);
  putU64(b, 128, e.ci_uncompressed_size);
  (e.blob_toc_digest ?? zero32).copy(b, 136, 0, 32);
  (e.blob_meta_digest ?? zero32).copy(b, 168, 0, 32);
  if (e.cipher_algo !== 0) e.cipher_iv.copy(b, 200, 0, 16);
  else {
    putU64(b, 200, e.blob_meta_size);
    e.cipher_iv.copy(b, 208, 8, 16);
  }
  b.writeUInt32LE(e.cipher_algo, 216);
  return b;
}

export function decode(buf: Buffer, off: number): BlobEntry {
  need(buf, off, SIZE, 'blob_table');
  const f = (o: number, name: string) => u64(buf, off + o, 'blob_table', name);
  const cipherAlgo = buf.readUInt32LE(off + 216);
  return {
    blob_id: cstr(buf, off, 64),
    blob_index: buf.readUInt32LE(off + 64),
    chunk_size: buf.readUInt32LE(off + 68),
    chunk_count: buf.readUInt32LE(off + 72),
    compression_algo: buf.readUInt32LE(off + 76),
    digest_algo: buf.readUInt32LE(off + 80),
    features: buf.readUInt32LE(off + 84),
    compressed_size: f(88, 'compressed_size'),
    uncompressed_size: f(96, 'uncompressed_size'),
    blob_toc_size: buf.readUInt32LE(off + 104),
    ci_compressor: buf.readUInt32LE(off + 108),
    ci_offset: f(112, 'ci_offset'),
    ci_compressed_size: f(120, 'ci_compressed_size'),
    ci_uncompressed_size: f(128, 'ci_uncompressed_size'),
    blob_toc_digest: Buffer.from(buf.subarray(off + 136, off + 168)),
    blob_meta_digest: Buffer.from(buf.subarray(off + 168, off + 200)),
    // An encrypted blob keeps IV bytes there, not a size.
    blob_meta_size: cipherAlgo !== 0 ? 0 : f(200, 'blob_meta_size'),
    cipher_iv: Buffer.concat([cipherAlgo !== 0 ? buf.subarray(off + 200, off + 208) : Buffer.alloc(8), buf.subarray(off + 208, off + 216)]),
    cipher_algo: cipherAlgo,
  };
}

export function validate(e: BlobEntry, index: number, chunkSize: number): void {
  const bad = (field: keyof BlobEntry, why: string) => formatError(`blob_table[${index}]`, field, e[field], why);
  if (e.blob_index !== index) throw bad('blob_index', `must equal its position ${index}`);
  if (e.chunk_size !== chunkSize) throw bad('chunk_size', `must equal the superblock chunk size ${chunkSize}`);
  if (e.chunk_count > 0xffffff) throw bad('chunk_count', 'more than 2^24 chunks');
  if (e.compression_algo > 3) throw bad('compression_algo', 'unknown algorithm');
  if (e.digest_algo > 1) throw bad('digest_algo', 'unknown digester');
  if (e.cipher_algo > 3) throw bad('cipher_algo', 'unknown cipher algorithm');
  if ((e.features & FEATURE_ENCRYPTED) !== 0 && e.cipher_algo === 0) throw bad('cipher_algo', 'the blob is ENCRYPTED but names no cipher');
  if ((e.features & 0xf000) !== 0) throw bad('features', 'unknown feature bits');
  if ((e.features & FEATURE_TARFS) === 0 && (e.features & FEATURE_ALIGNED) === 0) throw bad('features', 'ALIGNED is required');
  if (e.compressed_size > 2 ** 40) throw bad('compressed_size', 'larger than 2^40');
  if (e.uncompressed_size > 2 ** 44) throw bad('uncompressed_size', 'larger than 2^44');
}
