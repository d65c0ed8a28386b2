// Zstandard frame headers (RFC 8878 §3.1): enough to learn what a compressed section claims to
// hold before anything is allocated for it. A frame without a content size is refused: a reader
// bounding its memory by the claim needs the claim.
import { formatError } from '../../errors.js';

const MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE = 0x184d2a50;
const BLOCK_HEADER = 3;
const RLE_BLOCK = 1;
const RESERVED_BLOCK = 3;

/**
 * The total content size every frame in `data` declares, walking frame and block headers (no
 * decompression). Throws naming `what` when a header is cut short, reserved, or has no size.
 */
export function totalContentSize(data: Uint8Array, what: string): number {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let total = 0;
  let p = 0;
  const need = (n: number, field: string) => {
    if (p + n > b.length) throw formatError(what, field, p, `zstd data cut short (${b.length} bytes)`);
  };
  while (p < b.length) {
    need(4, 'magic');
    const magic = b.readUInt32LE(p);
    if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE) {
      need(8, 'skippable_frame');
      p += 8 + b.readUInt32LE(p + 4);
      need(0, 'skippable_frame');
      continue;
    }
    if (magic !== MAGIC) throw formatError(what, 'magic', `0x${magic.toString(16)}`, 'not a zstd frame');
    p += 4;
    need(1, 'frame_header_descriptor');
    const fhd = b[p++];
    const fcsFlag = fhd >> 6;
    const single = (fhd & 0x20) !== 0;
    const checksum = (fhd & 0x04) !== 0;
    if ((fhd & 0x08) !== 0) throw formatError(what, 'frame_header_descriptor', `0x${fhd.toString(16)}`, 'reserved bit set');
    const didSize = [0, 1, 2, 4][fhd & 3];
    const fcsSize = fcsFlag === 0 ? (single ? 1 : 0) : [0, 2, 4, 8][fcsFlag];
    if (fcsSize === 0) throw formatError(what, 'frame_content_size', 'absent', 'a zstd frame must declare its size');
    p += single ? 0 : 1;
    p += didSize;
    need(fcsSize, 'frame_content_size');
    let size: number;
    if (fcsSize === 1) size = b[p];
    else if (fcsSize === 2) size = b.readUInt16LE(p) + 256;
    else if (fcsSize === 4) size = b.readUInt32LE(p);
    else {
      const v = b.readBigUInt64LE(p);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw formatError(what, 'frame_content_size', v, 'larger than 2^53');
      size = Number(v);
    }
    p += fcsSize;
    total += size;
    for (let last = false; !last;) {
      need(BLOCK_HEADER, 'block_header');
      const h = b[p] | (b[p + 1] << 8) | (b[p + 2] << 16);
      p += BLOCK_HEADER;
      last = (h & 1) !== 0;
      const type = (h >> 1) & 3;
      if (type === RESERVED_BLOCK) throw formatError(what, 'block_type', type, 'reserved zstd block type');
      p += type === RLE_BLOCK ? 1 : h >>> 3;
      need(0, 'block');
    }
    if (checksum) {
      need(4, 'content_checksum');
      p += 4;
    }
  }
  return total;
}
