// Little-endian field helpers shared by the codecs. u64 fields are returned as numbers:
// every offset and size RAFS stores fits in 2^53.
import { formatError } from '../errors.js';

export function u64(buf: Buffer, off: number, structure = 'u64', field = 'value'): number {
  const v = buf.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw formatError(structure, field, v, 'larger than 2^53');
  return Number(v);
}

export function putU64(buf: Buffer, off: number, v: number): void {
  buf.writeBigUInt64LE(BigInt(v), off);
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
  if (off < 0 || off + size > buf.length) {
    throw formatError(structure, 'offset', off, `needs ${size} bytes but only ${Math.max(0, buf.length - off)} remain`);
  }
}

export const alignUp = (x: number, a: number) => Math.ceil(x / a) * a;
