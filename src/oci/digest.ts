// Content digests: the one check that makes a digest safe to put in a URL or a file name, and a
// pass-through that hashes and counts what flows through it, to name a blob whose digest is
// known only at its end (upload) or to prove a blob is the one asked for (pull).
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { NydusError, type ErrorCode } from '../errors.js';

export type Digest = `sha256:${string}`;

const SHA256 = /^sha256:[0-9a-f]{64}$/;

/** Shows an untrusted string in a one-line message: quoted, control characters escaped, cut short. */
export function quote(s: string, max = 80): string {
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}

/** Why `s` is not a digest this client can use, or undefined when it is `sha256:<64 lowercase hex>`. */
export function badDigest(s: unknown): string | undefined {
  if (typeof s !== 'string') return `digest is ${s === null ? 'null' : typeof s}, not a string`;
  if (SHA256.test(s)) return undefined;
  if (/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:/.test(s) && !s.startsWith('sha256:')) return `digest ${quote(s)} uses an algorithm other than sha256`;
  return `digest ${quote(s)} is not sha256:<64 lowercase hex digits>`;
}

export const isDigest = (s: unknown): s is Digest => typeof s === 'string' && SHA256.test(s);

/** Returns `s` as a Digest, or throws a one-line error prefixed by `where`. */
export function checkDigest(s: unknown, where: string, code: ErrorCode = 'SOURCE'): Digest {
  const why = badDigest(s);
  if (why !== undefined) throw new NydusError(code, `${where}: ${why}`);
  return s as Digest;
}

export const sha256Of = (data: Uint8Array | string): Digest => `sha256:${createHash('sha256').update(data).digest('hex')}`;

export interface DigestingOptions {
  /** The digest the bytes must have; the stream errors at its end when they do not. */
  expect?: Digest;
  /** The exact size the bytes must have; the stream errors as soon as more arrive, or at the end when fewer did. */
  size?: number;
  /** Builds the error for a mismatch (a one-line NydusError naming the registry and the blob). */
  mismatch?: (why: string) => Error;
}

/**
 * A pass-through that hashes (sha256) and counts the bytes flowing through it. `digest` and
 * `bytes` are final once the stream has ended. With `expect` or `size`, a mismatch destroys the
 * stream with an error instead of ending it, so a consumer never sees a clean end of wrong bytes.
 */
export class DigestingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;
  digest?: Digest;

  constructor(private readonly opts: DigestingOptions = {}) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.opts.size !== undefined && this.bytes > this.opts.size) {
      cb(this.fail(`more than the ${this.opts.size} bytes expected`));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.digest = `sha256:${this.hash.digest('hex')}`;
    if (this.opts.size !== undefined && this.bytes !== this.opts.size) {
      cb(this.fail(`${this.bytes} bytes where ${this.opts.size} were expected`));
      return;
    }
    if (this.opts.expect !== undefined && this.digest !== this.opts.expect) {
      cb(this.fail(`content has digest ${this.digest}`));
      return;
    }
    cb();
  }

  private fail(why: string): Error {
    return this.opts.mismatch?.(why) ?? new NydusError('SOURCE', why);
  }
}
