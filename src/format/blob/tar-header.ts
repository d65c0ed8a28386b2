// The 512-byte GNU tar header in front of each blob section (blob.md §2.1): mode, uid, gid
// all NUL, a 7-digit checksum, the GNU magic "ustar  ".
import { formatError } from '../../errors.js';
import { need } from '../util.js';
import { checksumOf } from '../tar/header.js';

export const SIZE = 512;

export function encode(name: string, size: number): Buffer {
  const b = Buffer.alloc(SIZE);
  b.write(name, 0, 100, 'latin1');
  if (size < 8 * 1024 ** 3) {
    b.write(size.toString(8).padStart(11, '0'), 124, 'latin1');
  } else {
    // GNU base-256 for sizes of 8 GiB and more: 0x80 marker, the value big-endian in the last 8 bytes.
    b.writeUInt8(0x80, 124);
    b.writeBigUInt64BE(BigInt(size), 128);
  }
  b.write('00000000000', 136, 'latin1');
  b.write('0', 156, 'latin1');
  b.write('ustar ', 257, 'latin1');
  b.write(' ', 263, 'latin1');
  b.write(checksumOf(b).toString(8).padStart(7, '0'), 148, 'latin1');
  return b;
}

export interface SectionHeader {
  name: string;
  size: number;
}

export function decode(buf: Buffer, off: number): SectionHeader {
  need(buf, off, SIZE, 'tar_header');
  const h = buf.subarray(off, off + SIZE);
  if (h.toString('latin1', 257, 263) !== 'ustar ' || h.toString('latin1', 263, 265) !== ' \0') {
    throw formatError('tar_header', 'magic', JSON.stringify(h.toString('latin1', 257, 265)), 'not a GNU tar header');
  }
  if (h[156] !== 0x30) throw formatError('tar_header', 'typeflag', h[156], "expected '0'");
  const sum = checksumOf(h);
  const stored = parseInt(h.toString('latin1', 148, 156).replace(/[\0 ]/g, ''), 8);
  if (stored !== sum) throw formatError('tar_header', 'chksum', stored, `expected ${sum}`);
  const nul = h.subarray(0, 100).indexOf(0);
  const name = h.toString('latin1', 0, nul < 0 ? 100 : nul);
  const size = (h[124] & 0x80) !== 0 ? Number(h.readBigUInt64BE(128)) : parseInt(h.toString('latin1', 124, 136).replace(/[\0 ]/g, '') || '0', 8);
  return { name, size };
}
