// Every limit our readers, sources and writers enforce, in one place: its value and why.
// Input comes from registries nobody here controls, so each limit bounds work and memory by
// what the input really holds, or refuses at create what EROFS and the kernel cannot hold.
// README.md ("Limits") documents this table; a test holds the two equal.
import { NydusError } from '../errors.js';

export interface Limit {
  readonly value: number;
  readonly why: string;
}

export const LIMITS = {
  /** One path component, in bytes. */
  NAME_MAX: { value: 255, why: 'EROFS dirent names and RAFS v5 i_name_size hold at most 255 bytes (the kernel\'s EROFS_NAME_LEN, Linux NAME_MAX); fsck.erofs and the kernel reject longer names' },
  /** A whole path as a source (tar member, PAX path) spells it, in bytes. */
  PATH_MAX: { value: 0xffff, why: 'PAX and GNU long names are held in memory; 64 KiB is 16 times Linux PATH_MAX' },
  /** Directory levels below the root. */
  DEPTH_MAX: { value: 4096, why: 'a path of 4096 one-byte levels is already twice Linux PATH_MAX; deeper trees exist only to exhaust stacks and quadratic walks' },
  /** Entries (directory entries, hardlinks counted each time) in one tree. */
  ENTRIES_MAX: { value: 10_000_000, why: '20 times the largest real image; the reader model costs ~200 bytes per entry, so 2 GB at most' },
  /** Bootstrap bytes a reader loads into memory. */
  BOOTSTRAP_MAX: { value: 1 << 30, why: 'readers hold the bootstrap in memory; 1 GiB is ~5 million entries, 10 times the largest real image' },
  /** The end of a blob `convert --nydus-image` keeps in memory to read the inline bootstrap and blob.meta back. */
  EXTERNAL_BLOB_TAIL_MAX: { value: 64 << 20, why: 'the blob is streamed to the registry, not stored; its metadata sections (zstd bootstrap, chunk table, TOC) are a few MiB even for large layers, and each layer in flight holds this much' },
  /** One xattr name with its namespace prefix, in bytes. */
  XATTR_NAME_MAX: { value: 255, why: 'Linux XATTR_NAME_MAX; EROFS stores the name after its prefix in a u8 e_name_len' },
  /** One xattr value, in bytes. */
  XATTR_VALUE_MAX: { value: 0xffff, why: 'EROFS stores a value\'s length in the u16 e_value_size' },
  /** All of one inode's xattrs as EROFS stores them: the 12-byte header and 4-byte-aligned entries. */
  XATTR_AREA_MAX: { value: 12 + 4 * (0xffff - 1), why: 'the inode\'s u16 i_xattr_icount counts the area in 4-byte words: 12 + 4 * (icount - 1) bytes' },
  /** Blobs in one image. */
  BLOBS_MAX: { value: 254, why: 'a v6 chunk index names its blob by an 8-bit device id, and 255 is reserved' },
  /** Chunks in one blob. */
  BLOB_CHUNKS_MAX: { value: 1 << 24, why: 'blob.meta chunk info and the v6 chunk index address a chunk by a 24-bit index' },
  /** A blob's blob.meta chunk table (stored or raw) a reader loads to find batch chunks. */
  BLOB_META_MAX: { value: 384 << 20, why: 'upstream\'s readers cap the table at 2^24 chunk-info v2 entries of 24 bytes; a batch blob\'s contexts fit within that for any real blob' },
  /** Smallest chunk size. */
  CHUNK_SIZE_MIN: { value: 0x1000, why: 'one EROFS block' },
  /** Largest chunk size. */
  CHUNK_SIZE_MAX: { value: 0x100_0000, why: 'upstream\'s RAFS_MAX_CHUNK_SIZE; blob.meta chunk info stores sizes in 24 bits' },
  /** Bytes of holes a sparse tar member may add beyond the data it stores. */
  SPARSE_HOLES_MAX: { value: 1 << 30, why: 'holes are not backed by input bytes; a 2 KiB tar must not make us hash a TiB of zeros' },
  /** Bytes of holes all the sparse members of one tar may add together. */
  SPARSE_HOLES_TOTAL_MAX: { value: 2 ** 32, why: 'each member\'s holes are bounded, but a tar of many small sparse members must not add up to a TiB of zeros either' },
  /** Bytes of tar a Nydus bootstrap layer may unpack to (nydusify check writes them to its work dir). */
  BOOTSTRAP_LAYER_MAX: { value: 2 ** 32, why: 'the layer holds image.boot (at most BOOTSTRAP_MAX) and a blob.meta per blob, a few MiB each in real images; a gzip layer of a few MiB could otherwise claim TiBs of disk' },
  /** One manifest or index read from a registry or an OCI layout, in bytes. */
  MANIFEST_MAX: { value: 4 << 20, why: 'the distribution registry refuses to store larger manifests (and containerd to read them); the document is held in memory to be hashed and parsed' },
  /** One image config read from a registry or an OCI layout, in bytes. */
  IMAGE_CONFIG_MAX: { value: 16 << 20, why: 'the config is JSON held in memory; real ones with long histories are a few hundred KiB' },
  /** A token response, an error body, a Docker config.json or a credential helper's answer, in bytes. */
  REGISTRY_JSON_MAX: { value: 1 << 20, why: 'small JSON documents from registries, token servers and credential helpers, held in memory; 1 MiB is 100 times a real one' },
  /** Symlink target, in bytes. */
  SYMLINK_MAX: { value: 4095, why: 'Linux PATH_MAX minus the NUL: the kernel refuses longer targets' },
  /** Uncompressed bytes one stored byte of a chunk can stand for, in a blob's unreferenced tail. */
  BLOB_EXPANSION_MAX: { value: 32768, why: 'zstd\'s densest frames (RLE blocks) hold 128 KiB in 4 bytes, and a 1-byte chunk of any compressor fills one 4 KiB block; a blob size beyond that is a claim its file cannot back' },
  /** Bytes of zeros between the end of one region of an exported disk and the next blob's mapped_blkaddr. */
  BLOB_MAP_ALIGN_MAX: { value: 2 * 1024 * 1024, why: 'builders align a blob\'s mapped_blkaddr to 512 KiB (nydus-image 2.3 and later) or 2 MiB (earlier); a wider gap is zeros no byte of the input backs' },
  /** An eStargz TOC (stargz.index.json) read into memory, in bytes. */
  STARGZ_TOC_MAX: { value: 128 << 20, why: 'the TOC is JSON held in memory and parsed whole; ~300 bytes an entry, 128 MiB is 400,000 entries, several times the largest real layer' },
} as const satisfies Record<string, Limit>;

export type LimitName = keyof typeof LIMITS;

/** A one-line error naming where the limit was passed, the value and the limit with its reason. */
export function limitError(name: LimitName, where: string, value: number | string): NydusError {
  const l = LIMITS[name];
  return new NydusError('SOURCE', `${where}: ${value} exceeds ${name} (${l.value}): ${l.why}`);
}

/** Throws unless value <= the limit. */
export function checkLimit(name: LimitName, where: string, value: number): void {
  if (value > LIMITS[name].value) throw limitError(name, where, value);
}

const DOT = 0x2e;

/**
 * Why `name` cannot be one directory entry's name (empty, ".", "..", a "/" or NUL byte, longer
 * than NAME_MAX), or undefined when it can. Names are raw bytes: any other byte is allowed.
 * The tar source asks only about components its normalising flagged (`odd` in sources/tar.ts:
 * too long or a NUL; normalising already drops empty, "." and "/" and refuses ".."): a rule
 * added here needs its flag there too.
 */
export function badName(name: Uint8Array): string | undefined {
  const n = name.length;
  if (n === 0) return 'empty name';
  if (n > LIMITS.NAME_MAX.value) return `name of ${n} bytes (NAME_MAX is ${LIMITS.NAME_MAX.value})`;
  if (name[0] === DOT && (n === 1 || (n === 2 && name[1] === DOT))) return `name "${n === 1 ? '.' : '..'}" is not an entry`;
  for (let i = 0; i < n; i++) {
    if (name[i] === 0x2f) return 'name contains "/"';
    if (name[i] === 0) return 'name contains a NUL byte';
  }
  return undefined;
}

const BLOB_ID = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Why `id` cannot be a blob id, or undefined when it can. A blob id is data that we also use as
 * a file name (in -D, --blob-cache-dir, export), so it is 1-64 of [A-Za-z0-9._-] and neither "."
 * nor "..": never a path. Upstream's ids are 64 hex digits; `--blob-id` may choose others.
 */
export function badBlobId(id: string): string | undefined {
  if (!BLOB_ID.test(id)) return `blob id ${JSON.stringify(id.length > 80 ? `${id.slice(0, 80)}…` : id)} must be 1-64 characters of [A-Za-z0-9._-]`;
  if (id === '.' || id === '..') return `blob id ${JSON.stringify(id)} is not a file name`;
  return undefined;
}
