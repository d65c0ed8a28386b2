// The eStargz TOC, stargz.index.json (stargz-snapshotter docs/estargz.md, estargz/types.go;
// upstream builder/src/stargz.rs reads the same fields): `version` 1 and `entries`, one per tar
// entry and one more per extra chunk of a large regular file. The JSON is hostile: every field
// is checked for its type and range here, where it is read, and named in the error.
import { NydusError } from '../../errors.js';

export type TocType = 'dir' | 'reg' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'chunk';
const TYPES: ReadonlySet<string> = new Set<TocType>(['dir', 'reg', 'symlink', 'hardlink', 'char', 'block', 'fifo', 'chunk']);

export interface TocEntry {
  name: string;
  type: TocType;
  size: number;
  /** Unix seconds from `modtime` (RFC 3339); 0 when absent. */
  mtime: number;
  linkName: string;
  mode: number;
  uid: number;
  gid: number;
  devMajor: number;
  devMinor: number;
  /** Name -> base64 value, as stored. */
  xattrs: Array<[string, string]>;
  digest: string;
  /** Offset of the gzip member holding this entry's data (reg and chunk with data). */
  offset: number;
  chunkOffset: number;
  chunkSize: number;
  chunkDigest: string;
  innerOffset: number;
}

export interface Toc {
  version: number;
  entries: TocEntry[];
}

const U32_MAX = 0xffff_ffff;

/** Parses and checks the TOC JSON; `where` names it in errors (a path, or "TOC of <blob>"). */
export function parseToc(text: string, where: string): Toc {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new NydusError('FORMAT', `stargz: the TOC is not JSON: ${(e as Error).message.split('\n')[0]}`, { path: where });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new NydusError('FORMAT', 'stargz: the TOC is not a JSON object', { path: where });
  const d = doc as Record<string, unknown>;
  if (d.version !== 1) throw new NydusError('FORMAT', `stargz: unsupported index version ${JSON.stringify(d.version)}`, { path: where });
  if (!Array.isArray(d.entries)) throw new NydusError('FORMAT', 'stargz: the TOC has no "entries" array', { path: where });
  if (d.entries.length === 0) throw new NydusError('FORMAT', 'stargz: TOC array is empty', { path: where });
  const entries = d.entries.map((e, i) => parseEntry(e, i, where));
  return { version: 1, entries };
}

function parseEntry(raw: unknown, i: number, where: string): TocEntry {
  const at = `entries[${i}]`;
  const bad = (field: string, why: string) => new NydusError('FORMAT', `stargz: ${at}${field ? `.${field}` : ''}: ${why}`, { path: where });
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('', 'not an object');
  const e = raw as Record<string, unknown>;
  const str = (k: string): string => {
    const v = e[k];
    if (v === undefined || v === null) return '';
    if (typeof v !== 'string') throw bad(k, `${JSON.stringify(v).slice(0, 40)} is not a string`);
    return v;
  };
  const num = (k: string, max = Number.MAX_SAFE_INTEGER): number => {
    const v = e[k];
    if (v === undefined || v === null) return 0;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw bad(k, `${JSON.stringify(v).slice(0, 40)} is not an integer from 0 to ${max}`);
    return v;
  };
  const name = str('name');
  if (name === '') throw bad('name', 'empty name');
  const type = str('type');
  if (!TYPES.has(type)) throw bad('type', `invalid type ${JSON.stringify(type.slice(0, 40))} (${name})`);
  const xattrs: Array<[string, string]> = [];
  const xv = e.xattrs;
  if (xv !== undefined && xv !== null) {
    if (typeof xv !== 'object' || Array.isArray(xv)) throw bad('xattrs', 'not an object');
    for (const [k, v] of Object.entries(xv as Record<string, unknown>)) {
      if (typeof v !== 'string') throw bad(`xattrs[${JSON.stringify(k.slice(0, 40))}]`, 'value is not a base64 string');
      xattrs.push([k, v]);
    }
  }
  const modtime = str('modtime');
  let mtime = 0;
  if (modtime !== '') {
    const ms = Date.parse(modtime);
    // Go writes the zero time as 0001-01-01T00:00:00Z: before the epoch, stored as 0 like an absent one.
    if (Number.isFinite(ms) && ms > 0) mtime = Math.floor(ms / 1000);
  }
  return {
    name, type: type as TocType, size: num('size'), mtime, linkName: str('linkName'), mode: num('mode', U32_MAX),
    uid: num('uid', U32_MAX), gid: num('gid', U32_MAX), devMajor: num('devMajor', U32_MAX), devMinor: num('devMinor', U32_MAX),
    xattrs, digest: str('digest'), offset: num('offset'), chunkOffset: num('chunkOffset'), chunkSize: num('chunkSize'),
    chunkDigest: str('chunkDigest'), innerOffset: num('innerOffset'),
  };
}

/** The 32 digest bytes of a "sha256:<64 hex>" chunk digest, or undefined when it is not one. */
export function chunkDigestBytes(d: string): Buffer | undefined {
  return /^sha256:[0-9a-f]{64}$/.test(d) ? Buffer.from(d.slice(7), 'hex') : undefined;
}
