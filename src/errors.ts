// The one error type for everything a user can cause: a code, a one-line message, an exit status.
export type ErrorCode =
  | 'USAGE' // bad flags or flag values
  | 'SOURCE' // the input tree, tar or bootstrap cannot be read or is not valid
  | 'FORMAT' // bytes on disk do not decode as the format says
  | 'OUTPUT' // the output cannot be written where it was asked for
  | 'UNSUPPORTED' // a feature upstream has that we do not build yet
  | 'INTERNAL';

const EXIT: Record<ErrorCode, number> = {
  USAGE: 2,
  SOURCE: 1,
  FORMAT: 1,
  OUTPUT: 1,
  UNSUPPORTED: 1,
  INTERNAL: 70,
};

export class NydusError extends Error {
  readonly code: ErrorCode;
  readonly exit: number;
  readonly path?: string;

  constructor(code: ErrorCode, message: string, opts: { path?: string; cause?: unknown } = {}) {
    super(opts.path !== undefined ? `${opts.path}: ${message}` : message, { cause: opts.cause });
    this.name = 'NydusError';
    this.code = code;
    this.exit = EXIT[code];
    this.path = opts.path;
  }
}

/** A format error naming the structure, field and the bad value. */
export function formatError(structure: string, field: string, value: unknown, why: string): NydusError {
  return new NydusError('FORMAT', `${structure}.${field} = ${String(value)}: ${why}`);
}

/** A file path for a message: long ones keep their two ends. */
export function showPath(abs: Buffer): string {
  const p = abs.toString();
  return p.length <= 240 ? p : `${p.slice(0, 100)}…(${abs.length} bytes)…${p.slice(-100)}`;
}

/** A regular file that ended before the size its stat gave (it changed while the build read it). */
export function fileShrank(path: Buffer, size: number): NydusError {
  return new NydusError('SOURCE', `file shrank while reading (expected ${size} bytes)`, { path: path.toString() });
}

/** Wraps a Node fs error (ENOENT, EACCES, ...) into a one-line user error naming the path. */
export function fsError(code: ErrorCode, path: string, err: unknown): NydusError {
  const e = err as NodeJS.ErrnoException;
  const why =
    e?.code === 'ENOENT' ? 'no such file or directory'
    : e?.code === 'EACCES' || e?.code === 'EPERM' ? 'permission denied'
    : e?.code === 'ENOTDIR' ? 'not a directory'
    : e?.code === 'EISDIR' ? 'is a directory'
    : e?.code === 'ENOSPC' ? 'no space left on device'
    : (e?.message ?? String(err));
  return new NydusError(code, why, { path, cause: err });
}
