// A source tree built in code to break image builders: every file type, edge sizes, names that
// are not UTF-8, odd owners and modes, nanosecond times and xattrs everywhere they can go.
// Needs root (device nodes, chown, trusted.* xattrs) and a filesystem with xattrs (ext4, tmpfs).
import { link, lchown, chmod, lstat, mkdir, open, readdir, symlink, writeFile, truncate } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { xattr } from './native.js';
import { runOk } from './tools.js';

export type EntryKind = 'regular' | 'directory' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

export interface TreeManifest {
  /** The directory the tree was built in. */
  root: string;
  /** Every path made, relative to root, root itself excluded; one entry per hard link name. */
  entries: Buffer[];
  byKind: Record<EntryKind, Buffer[]>;
  /** Names of the same inode; each group has at least two. */
  hardlinkGroups: Buffer[][];
  /** Paths whose bytes are not valid UTF-8. */
  nonUtf8: Buffer[];
  xattrs: Array<{ path: Buffer; name: string; size: number }>;
  /** Paths with an explicit owner: uid and gid as set by lchown. */
  owners: Array<{ path: Buffer; uid: number; gid: number }>;
  /** Every path's mtime (root included, as an empty Buffer) in nanoseconds since the epoch. */
  mtimes: Array<{ path: Buffer; ns: bigint }>;
  devices: Array<{ path: Buffer; kind: 'char' | 'block'; major: number; minor: number }>;
  /** The directory whose dirents span many blocks, and how many entries it holds. */
  manyDir: Buffer;
  manyEntries: number;
  /** The deepest directory. */
  deepest: Buffer;
  /** The sparse file larger than 4 GiB, when built with big. */
  bigSparse: Buffer | null;
  counts: Record<EntryKind, number> & { total: number; hardlinkGroups: number; xattrs: number; nonUtf8: number };
}

export interface HostileTreeOptions {
  /** Also make a sparse file larger than 4 GiB with data past 4 GiB. */
  big?: boolean;
  /** Files in the many-entries directory (default 3000). */
  manyEntries?: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Joins a root and a relative byte path into an absolute byte path. */
export function joinPath(root: string | Buffer, rel: Buffer | string): Buffer {
  const r = typeof root === 'string' ? Buffer.from(root) : root;
  const p = typeof rel === 'string' ? Buffer.from(rel) : rel;
  if (p.length === 0) return Buffer.from(r);
  return Buffer.concat([r, Buffer.from('/'), p]);
}

/** Deterministic bytes: mulberry32 seeded per call. */
/** A plain source dir of regular files (parents made as needed), every entry's mtime set to `mtimeSec`. */
export async function writeSourceDir(dir: string, files: Record<string, Buffer | string>, mtimeSec: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [rel, data] of Object.entries(files)) {
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    await writeFile(join(dir, rel), data);
  }
  await chmod(dir, 0o755);
  await runOk('find', [dir, '-exec', 'touch', '-h', '-d', `@${mtimeSec}`, '{}', '+']);
}

export function prng(seed: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  let a = seed >>> 0;
  let i = 0;
  while (i < size) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    t = (t ^ (t >>> 14)) >>> 0;
    for (let k = 0; k < 4 && i < size; k++, i++) out[i] = (t >>> (k * 8)) & 0xff;
  }
  return out;
}

/** Mostly random bytes with runs of text and zeros, so chunks differ in how well they compress. */
function variedData(seed: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  const pick = prng(seed ^ 0x5bd1e995, Math.ceil(size / (16 * KiB)) + 1);
  const text = Buffer.from('the quick brown fox jumps over the lazy nydus chunk; ');
  for (let off = 0, n = 0; off < size; off += 16 * KiB, n++) {
    const len = Math.min(16 * KiB, size - off);
    const kind = pick[n]! % 8;
    if (kind < 6) prng(seed + n, len).copy(out, off);
    else if (kind === 6) for (let i = 0; i < len; i++) out[off + i] = text[(i + n) % text.length]!;
    // kind 7 stays zero
  }
  return out;
}

class Builder {
  readonly m: TreeManifest;
  private readonly mknods: Array<{ p: string; mode: number; major: number; minor: number }> = [];
  private readonly modes: Array<{ path: Buffer; mode: number }> = [];
  private readonly times = new Map<string, bigint>();
  private seq = 0;

  constructor(readonly root: string) {
    const kinds = (): Record<EntryKind, Buffer[]> => ({
      regular: [], directory: [], symlink: [], char: [], block: [], fifo: [], socket: [],
    });
    this.m = {
      root, entries: [], byKind: kinds(), hardlinkGroups: [], nonUtf8: [], xattrs: [], owners: [],
      mtimes: [], devices: [], manyDir: Buffer.alloc(0), manyEntries: 0, deepest: Buffer.alloc(0),
      bigSparse: null,
      counts: { regular: 0, directory: 0, symlink: 0, char: 0, block: 0, fifo: 0, socket: 0, total: 0, hardlinkGroups: 0, xattrs: 0, nonUtf8: 0 },
    };
  }

  abs(rel: Buffer): Buffer {
    return joinPath(this.root, rel);
  }

  private record(rel: Buffer, kind: EntryKind): Buffer {
    this.m.entries.push(rel);
    this.m.byKind[kind].push(rel);
    if (!isUtf8(rel)) this.m.nonUtf8.push(rel);
    // Default times: distinct seconds and nanoseconds for every entry, all reproducible.
    const n = BigInt(++this.seq);
    this.times.set(rel.toString('latin1'), (1_600_000_000n + n * 977n) * 1_000_000_000n + ((n * 123_456_791n) % 1_000_000_000n));
    return rel;
  }

  async dir(rel: Buffer | string): Promise<Buffer> {
    const p = bytes(rel);
    await mkdir(this.abs(p));
    return this.record(p, 'directory');
  }

  async file(rel: Buffer | string, data: Buffer | string = ''): Promise<Buffer> {
    const p = bytes(rel);
    await writeFile(this.abs(p), data);
    return this.record(p, 'regular');
  }

  async sparse(rel: Buffer | string, size: number, pieces: Array<{ at: number; data: Buffer }>): Promise<Buffer> {
    const p = bytes(rel);
    const fh = await open(this.abs(p), 'w');
    try {
      for (const { at, data } of pieces) await fh.write(data, 0, data.length, at);
    } finally {
      await fh.close();
    }
    await truncate(this.abs(p), size);
    return this.record(p, 'regular');
  }

  async symlink(rel: Buffer | string, target: Buffer | string): Promise<Buffer> {
    const p = bytes(rel);
    await symlink(bytes(target), this.abs(p));
    return this.record(p, 'symlink');
  }

  async hardlink(existing: Buffer, rel: Buffer | string): Promise<Buffer> {
    const p = bytes(rel);
    await link(this.abs(existing), this.abs(p));
    let group = this.m.hardlinkGroups.find((g) => g[0]!.equals(existing));
    if (!group) {
      group = [existing];
      this.m.hardlinkGroups.push(group);
    }
    group.push(p);
    return this.record(p, 'regular');
  }

  special(rel: Buffer | string, kind: 'char' | 'block' | 'fifo' | 'socket', major = 0, minor = 0): Buffer {
    const p = bytes(rel);
    this.mknods.push({ p: this.abs(p).toString('hex'), mode: FILE_TYPE[kind] | 0o644, major, minor });
    if (kind === 'char' || kind === 'block') this.m.devices.push({ path: p, kind, major, minor });
    return this.record(p, kind);
  }

  /** mknod for everything queued by special(); Node has no mknod. */
  async flushSpecials(): Promise<void> {
    if (this.mknods.length === 0) return;
    await python(MKNOD_PY, JSON.stringify(this.mknods));
    this.mknods.length = 0;
  }

  setXattr(rel: Buffer, name: string, value: Buffer): void {
    xattr.lset(this.abs(rel), Buffer.from(name), value);
    this.m.xattrs.push({ path: rel, name, size: value.length });
  }

  async chown(rel: Buffer, uid: number, gid: number): Promise<void> {
    await lchown(this.abs(rel), uid, gid);
    this.m.owners.push({ path: rel, uid, gid });
  }

  /** Applied after chown, which clears setuid and setgid. */
  mode(rel: Buffer, mode: number): void {
    this.modes.push({ path: rel, mode });
  }

  mtime(rel: Buffer, sec: bigint, nsec: bigint): void {
    this.times.set(rel.toString('latin1'), sec * 1_000_000_000n + nsec);
  }

  async finish(): Promise<void> {
    for (const { path, mode } of this.modes) await chmod(this.abs(path), mode);
    this.times.set('', this.times.get('') ?? 1_650_000_000_555_555_555n);
    // Names of one inode carry one time: the first name's.
    for (const [first, ...rest] of this.m.hardlinkGroups) {
      const ns = this.times.get(first!.toString('latin1'))!;
      for (const p of rest) this.times.set(p.toString('latin1'), ns);
    }
    // Directories last: creating children bumped their mtimes; setting a time changes none.
    const isDir = new Set(this.m.byKind.directory.map((d) => d.toString('latin1')));
    isDir.add('');
    const order = [...this.times.entries()].sort(([a], [b]) => Number(isDir.has(a)) - Number(isDir.has(b)));
    const ops = order.map(([rel, ns]) => ({ p: this.abs(Buffer.from(rel, 'latin1')).toString('hex'), ns: ns.toString() }));
    await python(UTIME_PY, JSON.stringify(ops));
    this.m.mtimes = order.map(([rel, ns]) => ({ path: Buffer.from(rel, 'latin1'), ns }));
    const c = this.m.counts;
    for (const k of Object.keys(this.m.byKind) as EntryKind[]) c[k] = this.m.byKind[k].length;
    c.total = this.m.entries.length;
    c.hardlinkGroups = this.m.hardlinkGroups.length;
    c.xattrs = this.m.xattrs.length;
    c.nonUtf8 = this.m.nonUtf8.length;
  }
}

function bytes(p: Buffer | string): Buffer {
  return typeof p === 'string' ? Buffer.from(p) : p;
}

function isUtf8(b: Buffer): boolean {
  return Buffer.from(b.toString('utf8'), 'utf8').equals(b);
}

async function python(script: string, input: string): Promise<void> {
  await runOk('python3', ['-c', script], { input });
}

const MKNOD_PY =
  'import os,sys,json\nfor o in json.load(sys.stdin):\n  os.mknod(bytes.fromhex(o["p"]), o["mode"], os.makedev(o["major"], o["minor"]))\n';
const UTIME_PY =
  'import os,sys,json\nfor o in json.load(sys.stdin):\n  n=int(o["ns"])\n  os.utime(bytes.fromhex(o["p"]), ns=(n, n), follow_symlinks=False)\n';

const FILE_TYPE = { char: 0o020000, block: 0o060000, fifo: 0o010000, socket: 0o140000 } as const;

/** mknod(2), which Node lacks: a device, FIFO or socket node at a byte path (the umask applies). */
export async function mknod(
  path: Buffer | string,
  kind: keyof typeof FILE_TYPE,
  perm = 0o644,
  major = 0,
  minor = 0,
): Promise<void> {
  await python(MKNOD_PY, JSON.stringify([{ p: bytes(path).toString('hex'), mode: FILE_TYPE[kind] | perm, major, minor }]));
}

/** Sets atime and mtime to exactly ns nanoseconds since the epoch, on the path itself (not a symlink's target). */
export async function setMtimeNs(path: Buffer | string, ns: bigint): Promise<void> {
  await python(UTIME_PY, JSON.stringify([{ p: bytes(path).toString('hex'), ns: ns.toString() }]));
}

/** Builds the hostile tree inside root (created, must not exist yet) and lists what it made. */
export async function buildHostileTree(root: string, opts: HostileTreeOptions = {}): Promise<TreeManifest> {
  if (process.getuid?.() !== 0) throw new Error('buildHostileTree needs root: device nodes, chown and trusted.* xattrs');
  await mkdir(root, { recursive: false });
  const b = new Builder(root);
  const B = (...parts: Array<string | number[] | Buffer>): Buffer =>
    Buffer.concat(parts.map((x) => (typeof x === 'string' ? Buffer.from(x) : Buffer.from(x))));

  // Regular files at the sizes where block, chunk and 32-bit boundaries fall.
  await b.dir('files');
  await b.file('files/empty');
  await b.file('files/one-byte', 'x');
  await b.file('files/exact-4096', prng(1, 4096));
  await b.file('files/exact-1MiB', prng(2, MiB));
  await b.file('files/1MiB-plus-1', prng(3, MiB + 1));
  const varied = variedData(4, 3.5 * MiB + 12_345);
  await b.file('files/varied.bin', varied);
  await b.file('files/compressible.txt', Buffer.from('nydus '.repeat(Math.ceil((2 * MiB) / 6)).slice(0, 2 * MiB)));
  await b.sparse('files/sparse.bin', 5 * MiB + 3, [{ at: 2 * MiB + 100, data: prng(5, 10_000) }]);
  if (opts.big) {
    b.m.bigSparse = await b.sparse('files/big-sparse.bin', 4 * GiB + MiB + 7, [
      { at: 0, data: prng(6, 4096) },
      { at: 4 * GiB - 2048, data: prng(7, 4096) },
      { at: 4 * GiB + 12_345, data: prng(8, 8192) },
    ]);
  }
  // The same bytes twice, and a file sharing only its first MiB with another.
  const dup = prng(9, 1.5 * MiB);
  await b.file('files/dup-a.bin', dup);
  await b.file('files/dup-b.bin', dup);
  await b.file('files/dup-prefix.bin', Buffer.concat([varied.subarray(0, MiB), prng(10, 777)]));

  // A directory whose dirents span many blocks.
  const many = opts.manyEntries ?? 3000;
  b.m.manyDir = await b.dir('many');
  b.m.manyEntries = many;
  for (let i = 0; i < many; i++) {
    const len = 1 + ((i * 37) % 120);
    const name = `${String(i).padStart(5, '0')}-${'n'.repeat(len)}`;
    await b.file(`many/${name}`, i % 500 === 0 ? prng(100 + i, i + 1) : '');
  }

  // Names: bytes that are not UTF-8, the longest allowed, ones sorting before "." and odd characters.
  await b.dir('names');
  await b.file(B('names/', [0xff, 0xfe, 0x41]), 'not utf-8\n');
  const badDir = await b.dir(B('names/', [0xc3, 0x28], '-dir'));
  await b.file(B(badDir, '/', [0x80]), 'lone continuation byte\n');
  await b.file(B('names/', 'a'.repeat(255)), 'long name\n');
  await b.file(B('names/', 'z'.repeat(200), [0xe9], 'y'.repeat(54)), 'long latin-1 name\n');
  for (const n of ['!a', '+x', '-x', ',c', "'q", '#h', '$d', '%p', '&a', '(p', ')p', '*s']) await b.file(`names/${n}`, n);
  await b.file('names/with space\nand newline', 'newline\n');
  await b.file('names/ leading-space', '');
  await b.file('names/back\\slash:colon', '');
  await b.file('names/..dots', '');
  await b.file('names/.hidden', '');
  await b.file('names/caf\u00e9', 'nfc\n');
  await b.file('names/cafe\u0301', 'nfd\n');
  await b.file('names/\u{1f600}', 'emoji\n');

  // Empty directories, nested, and a deep chain.
  await b.dir('empty-dirs');
  await b.dir('empty-dirs/a');
  await b.dir('empty-dirs/b');
  await b.dir('empty-dirs/b/c');
  await b.dir('empty-dirs/b/c/d');
  let deep = 'deep';
  await b.dir(deep);
  for (let i = 1; i <= 20; i++) {
    deep += `/d${String(i).padStart(2, '0')}`;
    await b.dir(deep);
  }
  b.m.deepest = Buffer.from(deep);
  await b.file(`${deep}/leaf`, 'bottom\n');

  // Symlinks.
  await b.dir('links');
  await b.symlink('links/short', 'x');
  const longTarget = Array.from({ length: 500 }, (_, i) => `c${String(i % 100).padStart(2, '0')}-long/`).join('').slice(0, 3999) + 'T';
  await b.symlink('links/long', longTarget);
  await b.symlink('links/dangling', 'does/not/exist');
  await b.symlink('links/absolute', '/etc/passwd');
  await b.symlink('links/to-dir', '../deep');
  await b.symlink('links/to-file', '../files/one-byte');
  await b.symlink('links/non-utf8-target', B('../names/', [0xff, 0xfe, 0x41]));
  await b.symlink(B('links/non-utf8-name-', [0xfe]), 'plain');

  // Hard links: three names in three directories, and an empty file with two.
  await b.dir('hard');
  await b.dir('hard/a');
  await b.dir('hard/b');
  const h1 = await b.file('hard/a/one', prng(11, 70_000));
  await b.hardlink(h1, 'hard/b/two');
  await b.hardlink(h1, 'links/three');
  const e1 = await b.file('hard/empty-one');
  await b.hardlink(e1, 'hard/b/empty-two');

  // Devices, FIFOs and a socket.
  await b.dir('special');
  b.special('special/null', 'char', 1, 3);
  b.special('special/high-minor', 'char', 259, 300_000);
  b.special('special/loop0', 'block', 7, 0);
  b.special('special/sda1', 'block', 8, 1);
  b.special('special/fifo', 'fifo');
  b.special('special/fifo-2', 'fifo');
  b.special('special/socket', 'socket');
  await b.flushSpecials();

  // Modes.
  await b.dir('modes');
  b.mode(await b.file('modes/setuid', '#!/bin/sh\n'), 0o4755);
  b.mode(await b.file('modes/setgid', '#!/bin/sh\n'), 0o2755);
  b.mode(await b.file('modes/sticky', ''), 0o1644);
  b.mode(await b.file('modes/all-bits', ''), 0o7777);
  b.mode(await b.file('modes/none', 'unreadable\n'), 0o000);
  b.mode(await b.file('modes/all', ''), 0o777);
  b.mode(await b.dir('modes/setgid-dir'), 0o2775);
  b.mode(await b.dir('modes/sticky-dir'), 0o1777);
  const closed = await b.dir('modes/closed-dir');
  await b.file('modes/closed-dir/inside', 'root reads this anyway\n');
  b.mode(closed, 0o000);
  b.mode(await b.dir('modes/write-only-dir'), 0o300);
  b.mode(Buffer.from('special/fifo-2'), 0o600);
  b.mode(Buffer.from('special/null'), 0o666);

  // Owners, around the 16-bit boundary and up to the largest chown can set (2^32-1 means "unchanged").
  await b.dir('owners');
  for (const [name, uid, gid] of [
    ['root', 0, 0],
    ['u1000', 1000, 1000],
    ['u65535', 65535, 65535],
    ['u65536', 65536, 65536],
    ['umax', 4294967294, 4294967294],
    ['mixed', 1000, 65536],
  ] as const) {
    await b.chown(await b.file(`owners/${name}`, name), uid, gid);
  }
  await b.chown(await b.symlink('owners/link', 'u1000'), 65536, 1000);
  await b.chown(await b.dir('owners/dir'), 1000, 4294967294);
  await b.chown(Buffer.from('special/high-minor'), 65537, 7);
  await b.chown(Buffer.from('hard/a/one'), 1001, 1002);
  await b.chown(Buffer.from('modes/setuid'), 1000, 1000);
  await b.chown(Buffer.from('modes/setgid'), 0, 1000);

  // Times: exact nanoseconds on files, directories and symlinks, and the edges.
  await b.dir('times');
  b.mtime(await b.file('times/ns', ''), 1_700_000_000n, 123_456_789n);
  b.mtime(await b.file('times/max-ns', ''), 1_700_000_001n, 999_999_999n);
  b.mtime(await b.file('times/zero-ns', ''), 1_700_000_002n, 0n);
  b.mtime(await b.file('times/one-ns', ''), 1_700_000_003n, 1n);
  b.mtime(await b.file('times/epoch', ''), 0n, 0n);
  b.mtime(await b.file('times/y2038', ''), 2n ** 31n + 1n, 500_000_000n);
  b.mtime(await b.file('times/y2106', ''), 2n ** 32n + 5n, 42n);
  b.mtime(await b.symlink('times/link', 'ns'), 1_700_000_004n, 444_444_444n);
  b.mtime(await b.dir('times/dir'), 1_700_000_005n, 555_555_555n);
  b.mtime(Buffer.from('times'), 1_700_000_006n, 666_666_666n);

  // Xattrs of every namespace a user tree carries, on files, a directory and a symlink.
  await b.dir('xattrs');
  const xf = await b.file('xattrs/file', 'has xattrs\n');
  b.setXattr(xf, 'user.plain', Buffer.from('hello'));
  b.setXattr(xf, 'user.empty', Buffer.alloc(0));
  b.setXattr(xf, 'user.binary', Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
  b.setXattr(xf, 'trusted.overlay.opaque', Buffer.from('y'));
  b.setXattr(xf, 'security.nydus-test', Buffer.from('label'));
  const xb = await b.file('xattrs/big-value', '');
  b.setXattr(xb, 'user.big', prng(12, 3000));
  const xd = await b.dir('xattrs/dir');
  b.setXattr(xd, 'user.dir', Buffer.from('on a directory'));
  b.setXattr(xd, 'trusted.dir', Buffer.from('t'));
  b.setXattr(xd, 'security.dir', Buffer.alloc(0));
  await b.file('xattrs/dir/child', '');
  const xl = await b.symlink('xattrs/link', 'file');
  b.setXattr(xl, 'trusted.link', Buffer.from('on a symlink'));
  // A shared-looking xattr: the same name and value on several inodes.
  for (const p of ['files/one-byte', 'files/exact-4096', 'names/!a']) b.setXattr(Buffer.from(p), 'user.shared', Buffer.from('same everywhere'));
  b.setXattr(B('names/', [0xff, 0xfe, 0x41]), 'user.on-non-utf8', Buffer.from([0xff, 0x00, 0xfe]));
  b.setXattr(h1, 'user.hardlinked', Buffer.from('once for three names'));

  b.mode(Buffer.alloc(0), 0o755);
  await b.finish();
  return b.m;
}

/** Bytes of every file under `dir` (0 when it does not exist, or entries vanish while it walks): a work dir's size, sampled. */
export async function treeBytes(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  let n = 0;
  for (const name of names) {
    const st = await lstat(join(dir, name)).catch(() => undefined);
    if (st?.isDirectory()) n += await treeBytes(join(dir, name));
    else if (st) n += st.size;
  }
  return n;
}
