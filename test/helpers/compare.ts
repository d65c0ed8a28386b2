// Two directory trees compared entry by entry, as bytes: names, types, modes, owners, sizes,
// nanosecond mtimes, link counts, symlink targets, device numbers, xattrs, contents and
// hard-link structure. The result is a list of differences a person can read.
import type { BigIntStats } from 'node:fs';
import { lstat, open, readdir, readlink, type FileHandle } from 'node:fs/promises';
import { readXattrs } from './native.js';
import { run } from './tools.js';
import { joinPath } from './tree.js';

/** A field compareTrees can be told to leave alone. */
export type CompareField =
  | 'mode'
  | 'uid'
  | 'gid'
  | 'size'
  | 'mtime'
  | 'nlink'
  | 'dirNlink'
  | 'symlink'
  | 'rdev'
  | 'xattrs'
  | 'contents'
  | 'hardlinks';

export interface CompareOptions {
  /** Compare regular file contents (default true). */
  contents?: boolean;
  /** The root directory's mtime is not compared (a mount point, or a builder that stamps it). */
  ignoreRootMtime?: boolean;
  /** Directories' link counts are compared unless this is false (default true). */
  dirNlink?: boolean;
  /** Paths (relative, as bytes) left out on both sides, with everything beneath them. */
  ignore?: (relPath: Buffer) => boolean;
  /** Fields not compared anywhere. */
  skip?: readonly CompareField[];
  /** Xattr names not compared; security.selinux by default, since hosts label files themselves. */
  ignoreXattrs?: readonly string[];
  /** Stop listing after this many differences (default 1000); a last line counts the rest. */
  maxDiffs?: number;
}

const S_IFMT = 0o170000n;
const TYPES: Record<string, string> = {
  [String(0o100000)]: 'regular file',
  [String(0o040000)]: 'directory',
  [String(0o120000)]: 'symlink',
  [String(0o020000)]: 'char device',
  [String(0o060000)]: 'block device',
  [String(0o010000)]: 'fifo',
  [String(0o140000)]: 'socket',
};
const CHUNK = 1024 * 1024;
/** Files at least this big are compared only where either side has data (SEEK_DATA/SEEK_HOLE). */
const SPARSE_MIN = 64 * CHUNK;

/** Readable form of a relative byte path, quoted: UTF-8 where valid, \xNN for bytes that are not. */
export function showPath(rel: Buffer): string {
  return `"/${showBytes(rel)}"`;
}

function showBytes(b: Buffer): string {
  const s = b.toString('utf8');
  const valid = Buffer.from(s, 'utf8').equals(b);
  let out = '';
  if (valid) {
    for (const ch of s) out += escapeChar(ch.codePointAt(0)!, ch);
  } else {
    for (const c of b) out += c < 0x80 ? escapeChar(c, String.fromCharCode(c)) : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return out;
}

function escapeChar(code: number, ch: string): string {
  if (ch === '"' || ch === '\\') return `\\${ch}`;
  if (ch === '\n') return '\\n';
  if (code < 0x20 || code === 0x7f) return `\\x${code.toString(16).padStart(2, '0')}`;
  return ch;
}

function showValue(b: Buffer): string {
  const head = b.subarray(0, 48);
  const printable = head.every((c) => c >= 0x20 && c < 0x7f);
  const text = printable ? JSON.stringify(head.toString('latin1')) : `0x${head.toString('hex')}`;
  return `${text}${b.length > head.length ? '…' : ''} (${b.length} bytes)`;
}

function typeOf(st: BigIntStats): string {
  return TYPES[String(st.mode & S_IFMT)] ?? `type 0o${(st.mode & S_IFMT).toString(8)}`;
}

function showTime(ns: bigint): string {
  const sec = ns / 1_000_000_000n;
  const rem = ns % 1_000_000_000n;
  const neg = rem < 0n;
  return `${neg ? sec - 1n : sec}.${String(neg ? rem + 1_000_000_000n : rem).padStart(9, '0')}`;
}

/** Linux dev_t as glibc encodes it in st_rdev. */
function showDev(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

function key(st: BigIntStats): string {
  return `${st.dev}:${st.ino}`;
}

/** Compares the tree at actual against the tree at expected; an empty list means they are equal. */
export async function compareTrees(expected: string, actual: string, opts: CompareOptions = {}): Promise<string[]> {
  const skip = new Set<CompareField>(opts.skip ?? []);
  if (opts.contents === false) skip.add('contents');
  if (opts.dirNlink === false) skip.add('dirNlink');
  const ignoredXattrs = new Set(opts.ignoreXattrs ?? ['security.selinux']);
  const maxDiffs = opts.maxDiffs ?? 1000;
  const diffs: string[] = [];
  let dropped = 0;
  const diff = (rel: Buffer, what: string): void => {
    if (diffs.length < maxDiffs) diffs.push(`${showPath(rel)}: ${what}`);
    else dropped++;
  };
  const eRoot = Buffer.from(expected);
  const aRoot = Buffer.from(actual);
  // Non-directories by path: which inode each side has, for the hard-link check at the end.
  const inodes: Array<{ rel: Buffer; e: string; a: string }> = [];
  const contentsDone = new Set<string>();
  // One pair of read buffers for the whole walk; files are compared one at a time.
  const buffers = { e: Buffer.allocUnsafe(CHUNK), a: Buffer.allocUnsafe(CHUNK) };

  const compareEntry = async (rel: Buffer, e: BigIntStats, a: BigIntStats): Promise<void> => {
    const ePath = joinPath(eRoot, rel);
    const aPath = joinPath(aRoot, rel);
    const eType = typeOf(e);
    const aType = typeOf(a);
    if (eType !== aType) {
      diff(rel, `type ${eType} != ${aType}`);
      return;
    }
    const isDir = e.isDirectory();
    const isRoot = rel.length === 0;
    if (!skip.has('mode') && (e.mode & 0o7777n) !== (a.mode & 0o7777n)) {
      diff(rel, `mode 0${(e.mode & 0o7777n).toString(8).padStart(4, '0')} != 0${(a.mode & 0o7777n).toString(8).padStart(4, '0')}`);
    }
    if (!skip.has('uid') && e.uid !== a.uid) diff(rel, `uid ${e.uid} != ${a.uid}`);
    if (!skip.has('gid') && e.gid !== a.gid) diff(rel, `gid ${e.gid} != ${a.gid}`);
    if (!isDir && !skip.has('size') && e.size !== a.size) diff(rel, `size ${e.size} != ${a.size}`);
    if (!skip.has('mtime') && !(isRoot && opts.ignoreRootMtime) && e.mtimeNs !== a.mtimeNs) {
      diff(rel, `mtime ${showTime(e.mtimeNs)} != ${showTime(a.mtimeNs)}`);
    }
    if (!skip.has(isDir ? 'dirNlink' : 'nlink') && e.nlink !== a.nlink) diff(rel, `nlink ${e.nlink} != ${a.nlink}`);
    if (e.isSymbolicLink() && !skip.has('symlink')) {
      const [et, at] = await Promise.all([readlink(ePath, { encoding: 'buffer' }), readlink(aPath, { encoding: 'buffer' })]);
      if (!et.equals(at)) diff(rel, `symlink target "${showBytes(et)}" != "${showBytes(at)}"`);
    }
    if ((e.isCharacterDevice() || e.isBlockDevice()) && !skip.has('rdev') && e.rdev !== a.rdev) {
      diff(rel, `rdev ${showDev(e.rdev)} != ${showDev(a.rdev)}`);
    }
    if (!skip.has('xattrs')) compareXattrs(rel, readXattrs(ePath), readXattrs(aPath));
    if (!isDir) inodes.push({ rel, e: key(e), a: key(a) });
    if (e.isFile() && !skip.has('contents') && e.size === a.size && e.size > 0n) {
      const pair = `${key(e)}|${key(a)}`;
      if (!contentsDone.has(pair)) {
        contentsDone.add(pair);
        const at = await firstDifference(ePath, aPath, buffers.e, buffers.a, Number(e.size));
        if (at !== null) diff(rel, `contents differ from byte ${at}`);
      }
    }
    if (isDir) await compareDirs(rel, ePath, aPath);
  };

  const compareXattrs = (rel: Buffer, e: Map<string, Buffer>, a: Map<string, Buffer>): void => {
    const names = [...new Set([...e.keys(), ...a.keys()])].filter((n) => !ignoredXattrs.has(n)).sort();
    for (const n of names) {
      const ev = e.get(n);
      const av = a.get(n);
      if (ev === undefined) diff(rel, `xattr ${n} unexpected (${showValue(av!)})`);
      else if (av === undefined) diff(rel, `xattr ${n} missing (expected ${showValue(ev)})`);
      else if (!ev.equals(av)) diff(rel, `xattr ${n} ${showValue(ev)} != ${showValue(av)}`);
    }
  };

  const compareDirs = async (rel: Buffer, ePath: Buffer, aPath: Buffer): Promise<void> => {
    const [eNames, aNames] = await Promise.all([
      readdir(ePath, { encoding: 'buffer' }),
      readdir(aPath, { encoding: 'buffer' }),
    ]);
    const child = (name: Buffer): Buffer => (rel.length === 0 ? Buffer.from(name) : Buffer.concat([rel, Buffer.from('/'), name]));
    const aSet = new Set(aNames.map((n) => n.toString('latin1')));
    const eSet = new Set(eNames.map((n) => n.toString('latin1')));
    const both: Buffer[] = [];
    for (const n of [...eNames].sort(Buffer.compare)) {
      const c = child(n);
      if (opts.ignore?.(c)) continue;
      if (aSet.has(n.toString('latin1'))) both.push(c);
      else diff(c, `missing (expected ${typeOf(await lstat(joinPath(eRoot, c), { bigint: true }))})`);
    }
    for (const n of [...aNames].sort(Buffer.compare)) {
      const c = child(n);
      if (opts.ignore?.(c) || eSet.has(n.toString('latin1'))) continue;
      diff(c, `unexpected ${typeOf(await lstat(joinPath(aRoot, c), { bigint: true }))}`);
    }
    for (const c of both) {
      const [e, a] = await Promise.all([
        lstat(joinPath(eRoot, c), { bigint: true }),
        lstat(joinPath(aRoot, c), { bigint: true }),
      ]);
      await compareEntry(c, e, a);
    }
  };

  const [e, a] = await Promise.all([lstat(expected, { bigint: true }), lstat(actual, { bigint: true })]);
  await compareEntry(Buffer.alloc(0), e, a);

  if (!skip.has('hardlinks')) {
    // Paths that share an inode on one side must share one on the other, and only those.
    const check = (side: 'e' | 'a', other: 'e' | 'a', verb: string): void => {
      const groups = new Map<string, Array<{ rel: Buffer; e: string; a: string }>>();
      for (const i of inodes) groups.set(i[side], [...(groups.get(i[side]) ?? []), i]);
      for (const g of groups.values()) {
        const others = new Set(g.map((i) => i[other]));
        if (others.size > 1) {
          const names = g.map((i) => showPath(i.rel)).join(', ');
          const line = `hard links ${verb}: ${names} share one inode in ${side === 'e' ? 'expected' : 'actual'} but ${others.size} in ${other === 'e' ? 'expected' : 'actual'}`;
          if (diffs.length < maxDiffs) diffs.push(line);
          else dropped++;
        }
      }
    };
    check('e', 'a', 'split');
    check('a', 'e', 'joined');
  }
  if (dropped > 0) diffs.push(`… and ${dropped} more differences`);
  return diffs;
}

/** The first byte offset where two files of the same size differ, or null; reads 1 MiB at a time. */
async function firstDifference(a: Buffer, b: Buffer, ba: Buffer, bb: Buffer, size: number): Promise<number | null> {
  // Holes read as zeros by definition, so a range that is a hole on both sides needs no reading.
  let ranges: Array<[number, number]> = [[0, size]];
  if (size >= SPARSE_MIN) {
    const [ea, eb] = await Promise.all([dataExtents(a), dataExtents(b)]);
    if (ea && eb) ranges = mergeRanges([...ea, ...eb], size);
  }
  const fa = await open(a, 'r');
  try {
    const fb = await open(b, 'r');
    try {
      for (const [start, end] of ranges) {
        for (let pos = start; pos < end; ) {
          const want = Math.min(ba.length, end - pos);
          const [ra, rb] = await Promise.all([readFull(fa, ba, pos, want), readFull(fb, bb, pos, want)]);
          const n = Math.min(ra, rb);
          if (!ba.subarray(0, n).equals(bb.subarray(0, n))) {
            let i = 0;
            while (ba[i] === bb[i]) i++;
            return pos + i;
          }
          if (ra !== rb) return pos + n;
          if (n === 0) break;
          pos += n;
        }
      }
      // Both files may have changed size since lstat; what lies past it must match too.
      const [ta, tb] = await Promise.all([readFull(fa, ba, size, 1), readFull(fb, bb, size, 1)]);
      return ta === tb ? null : size;
    } finally {
      await fb.close();
    }
  } finally {
    await fa.close();
  }
}

const EXTENTS_PY = `import os,sys,errno,json
fd=os.open(bytes.fromhex(sys.argv[1]),os.O_RDONLY)
end=os.fstat(fd).st_size
out=[]
off=0
while off<end:
  try:
    d=os.lseek(fd,off,os.SEEK_DATA)
  except OSError as e:
    if e.errno==errno.ENXIO: break
    raise
  h=os.lseek(fd,d,os.SEEK_HOLE)
  out.append([d,h])
  off=h
print(json.dumps(out))
`;

/** The data ranges of a file as its filesystem reports them, or null when that cannot be asked. */
async function dataExtents(path: Buffer): Promise<Array<[number, number]> | null> {
  try {
    const r = await run('python3', ['-c', EXTENTS_PY, path.toString('hex')]);
    if (r.code !== 0) return null;
    return JSON.parse(r.stdout.toString()) as Array<[number, number]>;
  } catch {
    return null;
  }
}

/** Sorted, merged ranges widened to whole chunks and clipped to size. */
function mergeRanges(ranges: Array<[number, number]>, size: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const sorted = ranges
    .map(([s, e]): [number, number] => [Math.floor(s / CHUNK) * CHUNK, Math.min(size, Math.ceil(e / CHUNK) * CHUNK)])
    .sort((x, y) => x[0] - y[0]);
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** Reads want bytes into buf from pos unless the file ends first; returns how many were read. */
async function readFull(fh: FileHandle, buf: Buffer, pos: number, want: number): Promise<number> {
  let got = 0;
  while (got < want) {
    const { bytesRead } = await fh.read(buf, got, want - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}
