// gzip members as an eStargz blob lays them out (RFC 1952; stargz-snapshotter estargz/gzip.go):
// the member header, the first bytes of one member's data, and the footer that says where the
// TOC starts. A member is hostile input: its output is bounded by what the caller asks for
// (plus a fixed slack), never by what the deflate data could expand to.
import * as zlib from 'node:zlib';
import { NydusError } from '../../errors.js';

/** The eStargz footer: an empty gzip member whose extra field holds the TOC offset. */
export const FOOTER_SIZE = 51;
/** The legacy stargz footer (extra field without the SG subfield header). */
export const LEGACY_FOOTER_SIZE = 47;

const FHCRC = 0x02;
const FEXTRA = 0x04;
const FNAME = 0x08;
const FCOMMENT = 0x10;
const FRESERVED = 0xe0;
/** Output past the asked size one inflate pass may produce before it is cut short. */
const SLACK = 1 << 20;

/** Length of the gzip member header at the start of `buf`; throws when it is not one. */
export function memberHeaderLength(buf: Buffer, where: string): number {
  const bad = (why: string) => new NydusError('FORMAT', `${where}: ${why}`);
  if (buf.length < 10) throw bad(`${buf.length} bytes cannot hold a gzip header`);
  if (buf[0] !== 0x1f || buf[1] !== 0x8b) throw bad('not a gzip member (no 1f 8b magic)');
  if (buf[2] !== 8) throw bad(`gzip compression method ${buf[2]} is not deflate`);
  const flags = buf[3]!;
  if ((flags & FRESERVED) !== 0) throw bad(`gzip header has reserved flag bits 0x${flags.toString(16)}`);
  let at = 10;
  if (flags & FEXTRA) {
    if (at + 2 > buf.length) throw bad('gzip header ends inside its extra field');
    at += 2 + buf.readUInt16LE(at);
  }
  for (const f of [FNAME, FCOMMENT]) {
    if (flags & f) {
      const nul = buf.indexOf(0, at);
      if (nul < 0) throw bad('gzip header ends inside its file name or comment');
      at = nul + 1;
    }
  }
  if (flags & FHCRC) at += 2;
  if (at > buf.length) throw bad('gzip header is longer than the bytes present');
  return at;
}

/** The bytes given held fewer than asked: the member is cut short there (more bytes may help). */
export class ShortGzipMember extends NydusError {
  constructor(message: string) {
    super('FORMAT', message);
  }
}

/**
 * Stored bytes that always hold `size` bytes of one member's output: a deflate literal takes at
 * most 15 bits, and block headers are a few hundred bytes each. Upstream's bound
 * (gzipSizeBound) assumes stored blocks and can be short when a dynamic block also codes the tar
 * headers that follow a file's data in its member.
 */
export const gzipReadBound = (size: number) => 2 * size + (64 << 10);

function inflatePass(body: Buffer, cap: number): Buffer | 'too-large' {
  try {
    // A sync flush: a member cut short (its size is an upper bound) yields what it holds.
    return zlib.inflateRawSync(body, { finishFlush: zlib.constants.Z_SYNC_FLUSH, maxOutputLength: cap });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return 'too-large';
    throw e;
  }
}

/**
 * The first `size` bytes a gzip member decompresses to. `buf` starts at the member and may end
 * before it does or run into the next one: only the first `size` bytes are needed (an eStargz
 * member goes on with the tar headers after a file's data). One pass in the usual case; when the
 * data expands past `size` + 1 MiB, the shortest prefix of it that yields `size` bytes is searched
 * (a deflate byte never stands for more than a few KiB, so such a prefix exists).
 */
export function inflateMemberPrefix(buf: Buffer, size: number, where: string): Buffer {
  const body = buf.subarray(memberHeaderLength(buf, where));
  const cap = size + SLACK;
  let out: Buffer | undefined;
  try {
    const first = inflatePass(body, cap);
    if (first !== 'too-large') {
      out = first;
    } else {
      let lo = 0;
      let hi = body.length;
      while (hi - lo > 1 && out === undefined) {
        const mid = lo + Math.floor((hi - lo) / 2);
        const got = inflatePass(body.subarray(0, mid), cap);
        if (got === 'too-large') hi = mid;
        else if (got.length >= size) out = got;
        else lo = mid;
      }
      if (out === undefined) throw new NydusError('FORMAT', `${where}: gzip data expands past ${cap} bytes before it holds ${size}`);
    }
  } catch (e) {
    if (e instanceof NydusError) throw e;
    throw new NydusError('FORMAT', `${where}: corrupt gzip data: ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  if (out.length < size) throw new ShortGzipMember(`${where}: gzip data ends after ${out.length} of ${size} bytes (truncated or corrupt blob)`);
  return out.subarray(0, size);
}

/**
 * The TOC offset an eStargz footer (51 bytes, SG subfield) or a legacy stargz footer (47 bytes)
 * holds: the last bytes of the blob. Returns undefined when `tail` ends in neither.
 */
export function parseFooter(tail: Buffer): { tocOffset: number; footerSize: number } | undefined {
  const tryOne = (size: number): number | undefined => {
    if (tail.length < size) return undefined;
    const f = tail.subarray(tail.length - size);
    if (f[0] !== 0x1f || f[1] !== 0x8b || f[2] !== 8 || (f[3]! & FEXTRA) === 0) return undefined;
    const xlen = f.readUInt16LE(10);
    let sub: Buffer;
    if (size === FOOTER_SIZE) {
      if (xlen !== 26 || f[12] !== 0x53 || f[13] !== 0x47 || f.readUInt16LE(14) !== 22) return undefined;
      sub = f.subarray(16, 38);
    } else {
      if (xlen !== 22) return undefined;
      sub = f.subarray(12, 34);
    }
    const text = sub.toString('latin1');
    if (!/^[0-9a-fA-F]{16}STARGZ$/.test(text)) return undefined;
    const off = Number.parseInt(text.slice(0, 16), 16);
    return Number.isSafeInteger(off) ? off : undefined;
  };
  for (const size of [FOOTER_SIZE, LEGACY_FOOTER_SIZE]) {
    const tocOffset = tryOne(size);
    if (tocOffset !== undefined) return { tocOffset, footerSize: size };
  }
  return undefined;
}
