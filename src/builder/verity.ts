// dm-verity hash tree (format 1, no superblock, sha256, empty salt, 4096-byte hash blocks),
// computed as the data streams by (tar-merge-export.md §7.2). Pure: hash blocks are handed to
// a callback with their offset in the hash area; whoever writes the disk places them.
import * as crypto from 'node:crypto';
import { NydusError } from '../errors.js';

export const HASH_BLOCK_SIZE = 4096;
export const DIGEST_SIZE = 32;
/** Digests in one hash block. */
export const DIGESTS_PER_BLOCK = HASH_BLOCK_SIZE / DIGEST_SIZE;

// crypto.hash (Node ≥ 20.12) skips a Hash object per block, which shows at 512-byte blocks.
const sha256: (data: Uint8Array) => Buffer =
  typeof crypto.hash === 'function'
    ? (data) => crypto.hash('sha256', data, 'buffer')
    : (data) => crypto.createHash('sha256').update(data).digest();

export interface VerityLayout {
  dataBlocks: number;
  dataBlockSize: number;
  /** Where the hash area starts when it follows the data in the same file: round_up(N·B, 4096). */
  hashOffset: number;
  /** Hash blocks of each level, level 1 (digests of the data blocks) first. */
  levelBlocks: number[];
  /** Byte offset of each level (same order) inside the hash area: top level at 0, level 1 last. */
  levelOffsets: number[];
  /** Bytes of the hash area. */
  hashSize: number;
}

/** The shape of the tree for N data blocks of B bytes; N = 1 has no hash blocks at all. */
export function verityLayout(dataBlocks: number, dataBlockSize: number): VerityLayout {
  if (!Number.isSafeInteger(dataBlocks) || dataBlocks < 1) throw new NydusError('INTERNAL', `verity over ${dataBlocks} data blocks`);
  if (dataBlockSize < 512 || dataBlockSize > HASH_BLOCK_SIZE * 16 || (dataBlockSize & (dataBlockSize - 1)) !== 0) {
    throw new NydusError('INTERNAL', `verity data block size ${dataBlockSize} is not a power of two from 512`);
  }
  const levelBlocks: number[] = [];
  for (let n = dataBlocks; n > 1; ) {
    n = Math.ceil(n / DIGESTS_PER_BLOCK);
    levelBlocks.push(n);
  }
  // dm-verity stores the top level first and level 1 last.
  const levelOffsets = new Array<number>(levelBlocks.length);
  let at = 0;
  for (let k = levelBlocks.length - 1; k >= 0; k--) {
    levelOffsets[k] = at;
    at += levelBlocks[k] * HASH_BLOCK_SIZE;
  }
  const dataSize = dataBlocks * dataBlockSize;
  return {
    dataBlocks, dataBlockSize, levelBlocks, levelOffsets, hashSize: at,
    hashOffset: Math.ceil(dataSize / HASH_BLOCK_SIZE) * HASH_BLOCK_SIZE,
  };
}

interface Level {
  /** The hash block being filled; unused slots stay zero, as veritysetup leaves them. */
  block: Buffer;
  fill: number;
  /** Index of that block within its level. */
  index: number;
}

/**
 * Feeds data in slices of any size (N·B bytes in all), then digest() gives the root. Each hash
 * block is passed to onHashBlock exactly once, when complete, as a fresh buffer the callee may keep.
 */
export class VerityTree {
  readonly layout: VerityLayout;
  private readonly levels: Level[];
  private readonly carry: Buffer;
  private carried = 0;
  private blocksSeen = 0;
  private root?: Buffer;
  private zeroDigest?: Buffer;

  constructor(dataBlocks: number, dataBlockSize: number, private readonly onHashBlock: (offset: number, block: Buffer) => void) {
    this.layout = verityLayout(dataBlocks, dataBlockSize);
    this.levels = this.layout.levelBlocks.map(() => ({ block: Buffer.alloc(HASH_BLOCK_SIZE), fill: 0, index: 0 }));
    this.carry = Buffer.alloc(dataBlockSize);
  }

  update(data: Uint8Array): void {
    const B = this.layout.dataBlockSize;
    let off = 0;
    if (this.carried > 0) {
      const n = Math.min(B - this.carried, data.byteLength);
      this.carry.set(data.subarray(0, n), this.carried);
      this.carried += n;
      off = n;
      if (this.carried < B) return;
      this.carried = 0;
      this.dataBlock(sha256(this.carry));
    }
    for (; off + B <= data.byteLength; off += B) this.dataBlock(sha256(data.subarray(off, off + B)));
    if (off < data.byteLength) {
      this.carry.set(data.subarray(off), 0);
      this.carried = data.byteLength - off;
    }
  }

  /** Same as update() with n zero bytes, without hashing each zero block again. */
  zeros(n: number): void {
    const B = this.layout.dataBlockSize;
    if (this.carried > 0) {
      const head = Math.min(B - this.carried, n);
      this.update(Buffer.alloc(head));
      n -= head;
    }
    this.zeroDigest ??= sha256(Buffer.alloc(B));
    for (; n >= B; n -= B) this.dataBlock(this.zeroDigest);
    if (n > 0) this.update(Buffer.alloc(n));
  }

  /** Flushes every level's last block and returns the root digest. */
  digest(): Buffer {
    if (this.root) return this.root;
    if (this.carried > 0 || this.blocksSeen !== this.layout.dataBlocks) {
      throw new NydusError('INTERNAL', `verity got ${this.blocksSeen} blocks and ${this.carried} bytes, expected ${this.layout.dataBlocks} blocks`);
    }
    for (let k = 0; k < this.levels.length; k++) if (this.levels[k].fill > 0) this.completeBlock(k);
    const levels = this.layout.levelBlocks;
    if (!this.root || this.levels.some((l, k) => l.index !== levels[k])) throw new NydusError('INTERNAL', 'verity tree did not close');
    return this.root;
  }

  private dataBlock(d: Buffer): void {
    if (++this.blocksSeen > this.layout.dataBlocks) throw new NydusError('INTERNAL', `verity got more than ${this.layout.dataBlocks} data blocks`);
    this.push(0, d);
  }

  private push(k: number, d: Buffer): void {
    if (k === this.levels.length) {
      this.root = d;
      return;
    }
    const l = this.levels[k];
    d.copy(l.block, l.fill * DIGEST_SIZE);
    if (++l.fill === DIGESTS_PER_BLOCK) this.completeBlock(k);
  }

  private completeBlock(k: number): void {
    const l = this.levels[k];
    const block = l.block;
    this.onHashBlock(this.layout.levelOffsets[k] + l.index * HASH_BLOCK_SIZE, block);
    l.block = Buffer.alloc(HASH_BLOCK_SIZE);
    l.fill = 0;
    l.index++;
    this.push(k + 1, sha256(block));
  }
}

/** The hash area and root of a whole buffer, for tests and small inputs. */
export function verityOf(data: Uint8Array, dataBlockSize: number): { root: Buffer; hashArea: Buffer; layout: VerityLayout } {
  const blocks = data.byteLength / dataBlockSize;
  if (!Number.isInteger(blocks)) throw new NydusError('INTERNAL', `${data.byteLength} bytes is not a whole number of ${dataBlockSize}-byte blocks`);
  const layout = verityLayout(blocks, dataBlockSize);
  const hashArea = Buffer.alloc(layout.hashSize);
  const tree = new VerityTree(blocks, dataBlockSize, (off, b) => b.copy(hashArea, off));
  tree.update(data);
  return { root: tree.digest(), hashArea, layout };
}

/** The one stdout line upstream prints: the options veritysetup needs, then the root. */
export function verityOptionsLine(layout: VerityLayout, root: Buffer | string): string {
  const hex = typeof root === 'string' ? root : root.toString('hex');
  return `dm-verity options: --no-superblock --format=1 -s "" --hash=sha256 --data-block-size=${layout.dataBlockSize} --hash-block-size=${HASH_BLOCK_SIZE} --data-blocks ${layout.dataBlocks} --hash-offset ${layout.hashOffset} ${hex}`;
}
