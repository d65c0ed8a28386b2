// Little-endian field helpers shared by the codecs. u64 fields are returned as numbers:
// every offset and size RAFS stores fits in 2^53.
import { formatError } from '../errors.js';

const TWO_32 = 0x1_0000_0000;

export function u64(buf: Buffer, off: number, structure = 'u64', field = 'value'): number {
  const lo = buf.readUInt32LE(off);
  const hi = buf.readUInt32LE(off + 4);
  // 2^53 - 1 has 21 bits above the low word.
  if (hi >= 0x20_0000) throw formatError(structure, field, buf.readBigUInt64LE(off), 'larger than 2^53');
  return hi * TWO_32 + lo;
}

/** Two 32-bit writes for safe integers (BigInt per field was a hot spot of bootstrap writing). */
export function putU64(buf: Buffer, off: number, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0 || off < 0 || off + 8 > buf.length) {
    // Out of range (value or offset): the BigInt path throws, writing nothing, as it always did.
    buf.writeBigUInt64LE(BigInt(v), off);
    return;
  }
  buf.writeUInt32LE(v % TWO_32, off);
  buf.writeUInt32LE(Math.floor(v / TWO_32), off + 4);
}

/** putU64's bytes through a DataView, for a value already known to be a safe non-negative integer. */
export function setU64(view: DataView, off: number, v: number): void {
  view.setUint32(off, v % TWO_32, true);
  view.setUint32(off + 4, Math.floor(v / TWO_32), true);
}

/**
 * Buffer.compare's byte-wise order (-1, 0 or 1; a shorter prefix first) in JS: names are short,
 * and a loop here is cheaper than the native call, which sorting a directory makes n log n times.
 */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

/** A NUL-padded ASCII field, with the padding trimmed. */
export function cstr(buf: Buffer, off: number, len: number): string {
  const field = buf.subarray(off, off + len);
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? len : end).toString('latin1');
}

export function putCstr(buf: Buffer, off: number, len: number, s: string, structure: string, field: string): void {
  const bytes = Buffer.from(s, 'latin1');
  if (bytes.length > len) throw formatError(structure, field, s, `longer than ${len} bytes`);
  bytes.copy(buf, off);
}

export function need(buf: Buffer, off: number, size: number, structure: string): void {
  if (!Number.isSafeInteger(off) || off < 0 || off + size > buf.length) {
    throw formatError(structure, 'offset', off, `needs ${size} bytes but only ${Math.max(0, buf.length - off)} remain`);
  }
}

export const alignUp = (x: number, a: number) => Math.ceil(x / a) * a;
