// Sparse tar members, which upstream refuses ('S') or stores as written (PAX GNU.sparse.*), are
// expanded to regular files with zeros in the holes: GNU tar's old GNU format (with extension
// blocks) and PAX sparse formats 0.0, 0.1 and 1.0, read from files, odd slices and gzip, and
// compared byte for byte with the files tar read, including one past 8 GiB read in bounded memory.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { tarSource, type TarEntry, type TarSourceOptions } from '../../src/sources/tar.js';
import { NydusError } from '../../src/errors.js';
import type { ContentReader } from '../../src/pipeline/stage.js';
import { runOk } from '../helpers/tools.js';
import { prng } from '../helpers/tree.js';
import { gnuSparse } from './craft.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const L = (b: Buffer) => b.toString('latin1');

interface Piece {
  at: number;
  data: Buffer;
}
/** A file as written: its size and the data written into it; everything else reads as zeros. */
interface Model {
  size: number;
  pieces: Piece[];
}

let work = '';
let src = '';
let bigSrc = '';
const files = new Map<string, Model>();
/** Holes just under SPARSE_HOLES_MAX (1 GiB), data at both ends. */
const big: Model = {
  size: GiB + 4097,
  pieces: [
    { at: 1000, data: prng(21, 5000) },
    { at: GiB / 2 + 123, data: prng(22, 70_000) },
    { at: GiB - 10, data: prng(23, 100) },
    { at: GiB + 4096, data: Buffer.from('z') },
  ],
};
/** 8 GiB of holes: more than SPARSE_HOLES_MAX. */
const huge: Model = { size: 8 * GiB + 1, pieces: [{ at: 8 * GiB, data: Buffer.from('z') }] };

async function writeSparse(path: string, m: Model): Promise<void> {
  const fh = await open(path, 'w');
  try {
    for (const { at, data } of m.pieces) await fh.write(data, 0, data.length, at);
    await fh.truncate(m.size);
  } finally {
    await fh.close();
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-tar-sparse-'));
  src = join(work, 'src');
  await mkdir(join(src, 'd'), { recursive: true });
  files.set('/holes', { size: 4 * MiB + 5, pieces: [{ at: 0, data: prng(1, 100) }, { at: MiB + 3, data: prng(2, 9000) }, { at: 4 * MiB, data: prng(3, 5) }] });
  files.set('/d/hole-at-end', { size: 3 * MiB, pieces: [{ at: 10, data: prng(4, 20_000) }] });
  files.set('/d/all-hole', { size: 5 * MiB + 1, pieces: [] });
  // 60 regions: more than the 4 of the header and the 21 of one extension block.
  files.set('/many', { size: 8 * MiB, pieces: Array.from({ length: 60 }, (_, i) => ({ at: i * 128 * KiB + (i % 7) * 513, data: prng(100 + i, 1 + ((i * 37) % 3000)) })) });
  files.set('/dense', { size: 7000, pieces: [{ at: 0, data: prng(5, 7000) }] });
  for (const [p, m] of files) await writeSparse(join(src, p), m);
  await writeFile(join(src, 'plain'), 'plain text\n');
  const bigDir = join(work, 'big');
  await mkdir(bigDir);
  bigSrc = join(bigDir, 'big');
  await writeSparse(bigSrc, big);
  await writeSparse(join(bigDir, 'huge'), huge);
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

let zeros = Buffer.alloc(0);

/** What the file holds in [at, at + n) (a shared zero buffer when no piece is there). */
function expected(m: Model, at: number, n: number): Buffer {
  if (!m.pieces.some((p) => p.at < at + n && p.at + p.data.length > at)) {
    if (zeros.length < n) zeros = Buffer.alloc(n);
    return zeros.subarray(0, n);
  }
  const out = Buffer.alloc(n);
  for (const p of m.pieces) {
    const s = Math.max(at, p.at);
    const e = Math.min(at + n, p.at + p.data.length);
    if (s < e) p.data.copy(out, s - at, s - p.at, e - p.at);
  }
  return out;
}

/** Reads the whole content as the chunker does (awaiting only promises) in pieces of step bytes, checking each against the model. */
async function check(path: string, r: ContentReader, m: Model, step: number): Promise<void> {
  const buf = Buffer.allocUnsafe(step);
  let at = 0;
  while (at < m.size) {
    const want = Math.min(step, m.size - at);
    const x = r.read(buf, 0, want);
    const n = typeof x === 'number' ? x : await x;
    if (n === 0) throw new Error(`${path}: content ended at ${at} of ${m.size}`);
    if (!buf.subarray(0, n).equals(expected(m, at, n))) throw new Error(`${path}: bytes ${at}..${at + n} differ`);
    at += n;
  }
  const after = r.read(Buffer.alloc(1), 0, 1);
  expect(typeof after === 'number' ? after : await after).toBe(0);
  r.close();
}

/** Runs the source, checks every regular file against its model; returns path → size of the regular files. */
async function readTar(input: string | NodeJS.ReadableStream, models: Map<string, Model>, step: number, opts?: TarSourceOptions): Promise<Record<string, number>> {
  const sizes: Record<string, number> = {};
  for await (const e of tarSource(input, opts) as AsyncGenerator<TarEntry>) {
    if (!e.open) continue;
    const path = L(e.node.path);
    sizes[path] = e.node.size;
    const m = models.get(path);
    if (m) {
      expect(e.node.size).toBe(m.size);
      expect(e.node.mode & 0o170000).toBe(0o100000);
      await check(path, e.open(), m, step);
    }
  }
  return sizes;
}

function sliced(buf: Buffer, sizes = [1, 7, 511, 513]): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0, i = 0; at < buf.length; i++) {
        const n = sizes[i % sizes.length]!;
        yield buf.subarray(at, at + n);
        at += n;
      }
    })(),
  );
}

async function failure(input: string | NodeJS.ReadableStream, opts?: TarSourceOptions): Promise<NydusError> {
  try {
    await readTar(input, new Map(), MiB, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(NydusError);
    expect((e as NydusError).code).toBe('SOURCE');
    return e as NydusError;
  }
  throw new Error('expected the tar source to fail');
}

const FORMATS: Array<[string, string[]]> = [
  ['gnu', ['--format=gnu']],
  ['pax 1.0', ['--format=pax', '--sparse-version=1.0']],
  ['pax 0.1', ['--format=pax', '--sparse-version=0.1']],
  ['pax 0.0', ['--format=pax', '--sparse-version=0.0']],
];
const ENTRIES = ['holes', 'd', 'many', 'dense', 'plain'];

describe('sparse tar members', () => {
  it('the model matches the files on disk, which are sparse', async () => {
    for (const [p, m] of files) expect((await readFile(join(src, p))).equals(expected(m, 0, m.size))).toBe(true);
    const st = await stat(join(src, 'd/all-hole'), { bigint: true });
    expect(st.blocks * 512n).toBeLessThan(st.size / 4n);
  });

  describe.each(FORMATS)('GNU tar --sparse %s', (label, args) => {
    let tar: Buffer;
    // The files are made in the outer beforeAll, after this callback runs.
    let all = new Map<string, Model>();
    let sizes: Record<string, number> = {};

    beforeAll(async () => {
      all = new Map([...files, ['/plain', { size: 11, pieces: [{ at: 0, data: Buffer.from('plain text\n') }] }]]);
      sizes = Object.fromEntries([...all].map(([p, m]) => [p, m.size]));
      const out = join(work, `${label.replace(/\W/g, '_')}.tar`);
      await runOk('tar', ['--sparse', ...args, '-C', src, '-cf', out, ...ENTRIES]);
      tar = await readFile(out);
    });

    it('is really sparse: far smaller than its files', () => {
      const total = [...files.values()].reduce((a, m) => a + m.size, 0);
      expect(tar.length).toBeLessThan(total / 10);
      if (label === 'gnu') expect(tar[156]).toBe('S'.charCodeAt(0));
      else expect(L(tar).includes('GNU.sparse.')).toBe(true);
    });

    it('reads every file at its real size with zeros in the holes: file, odd slices, gzip', async () => {
      const path = join(work, `${label.replace(/\W/g, '_')}.tar`);
      expect(await readTar(path, all, MiB)).toEqual(sizes);
      expect(await readTar(sliced(tar), all, 4099)).toEqual(sizes);
      const gz = zlib.gzipSync(tar);
      expect(await readTar(sliced(gz, [3, 1, 4096, 9]), all, 1000)).toEqual(sizes);
    });

    it('skips sparse data the consumer does not read, and half-read files', async () => {
      let n = 0;
      const seen: string[] = [];
      for await (const e of tarSource(sliced(tar, [513, 1, 2000]))) {
        if (!e.open) continue;
        seen.push(L(e.node.path));
        if (n++ % 2 === 0) {
          const r = e.open();
          const x = r.read(Buffer.alloc(3000), 0, 3000);
          expect(typeof x === 'number' ? x : await x).toBeGreaterThan(0);
        }
      }
      expect(seen.sort()).toEqual(Object.keys(sizes).sort());
    });

    it('sparse: refuse (the default for plain tar, as tarfs reads it) does as upstream', async () => {
      if (label === 'gnu') {
        expect((await failure(sliced(tar), { sparse: 'refuse' })).message).toMatch(/: unsupported gnu sparse file extension from tar header$/);
        expect((await failure(sliced(tar), { gzip: 'never' })).message).toMatch(/: unsupported gnu sparse file extension from tar header$/);
      } else {
        // Stored as written: the map and regions as the data, under the name the header carries.
        const got = await readTar(sliced(tar), new Map(), MiB, { gzip: 'never' });
        expect(got['/plain']).toBe(11);
        if (label !== 'pax 0.0') expect(Object.keys(got).some((p) => /\/GNUSparseFile\.\d+\/holes$/.test(p))).toBe(true);
        if (label === 'pax 0.0') expect(got['/holes']).toBeLessThan(MiB);
        else expect(got['/holes']).toBeUndefined();
      }
    });
  });

  it.each(FORMATS)('a file past 1 GiB with holes just under SPARSE_HOLES_MAX (%s), from a file and gzip', async (label, args) => {
    const out = join(work, `big-${label.replace(/\W/g, '_')}.tar`);
    await runOk('tar', ['--sparse', ...args, '-C', join(work, 'big'), '-cf', out, 'big']);
    const tar = await readFile(out);
    expect(tar.length).toBeLessThan(2 * MiB);
    const models = new Map([['/big', big]]);
    expect(await readTar(out, models, 16 * MiB)).toEqual({ '/big': big.size });
    expect(await readTar(Readable.from([zlib.gzipSync(tar)]), models, 16 * MiB)).toEqual({ '/big': big.size });
  }, 120_000);

  it.each(FORMATS)('a file of 8 GiB of holes (%s) is refused before any hole is read', async (label, args) => {
    const out = join(work, `huge-${label.replace(/\W/g, '_')}.tar`);
    await runOk('tar', ['--sparse', ...args, '-C', join(work, 'big'), '-cf', out, 'huge']);
    expect((await failure(out)).message).toMatch(/^\/huge: sparse member of 8589934593 bytes storing \d+: \d+ bytes of holes exceeds SPARSE_HOLES_MAX \(1073741824\): /);
  });
});

describe('hand-made old-GNU sparse maps', () => {
  const end = Buffer.alloc(1024);

  it('extension blocks, zero-length regions and a region ending the file', async () => {
    const regions: Array<[number, number]> = Array.from({ length: 30 }, (_, i) => [i * 1000, i % 3 === 0 ? 0 : 10 + i]);
    regions.push([40_000, 7]);
    const stored = regions.reduce((a, [, s]) => a + s, 0);
    const data = prng(9, stored);
    const m: Model = { size: 40_007, pieces: [] };
    let at = 0;
    for (const [o, s] of regions) {
      if (s > 0) m.pieces.push({ at: o, data: data.subarray(at, at + s) });
      at += s;
    }
    const tar = Buffer.concat([gnuSparse('x', 40_007, regions, data), end]);
    expect(await readTar(sliced(tar, [5, 512, 3]), new Map([['/x', m]]), 333)).toEqual({ '/x': 40_007 });
  });

  it.each<[string, number, Array<[number, number]>, Buffer | undefined, RegExp]>([
    ['overlapping regions', 100, [[0, 10], [5, 10]], undefined, /^\/x: sparse map region at 5 overlaps or precedes the one ending at 10$/],
    ['a region past the real size', 100, [[95, 10]], undefined, /^\/x: sparse map region 95\+10 ends past the file's 100 bytes$/],
    ['a map that does not add up to the data', 100, [[0, 10]], Buffer.alloc(20), /^\/x: sparse map describes 10 bytes of data but the member holds 20$/],
  ])('refuses %s', async (_, realSize, regions, data, message) => {
    const tar = Buffer.concat([gnuSparse('x', realSize, regions, data), end]);
    expect((await failure(sliced(tar))).message).toMatch(message);
  });

  it('a tar cut inside the extension blocks or the regions is truncated', async () => {
    const regions: Array<[number, number]> = Array.from({ length: 10 }, (_, i) => [i * 100, 10]);
    const tar = gnuSparse('x', 1000, regions);
    expect((await failure(sliced(tar.subarray(0, 700)))).message).toBe('/x: truncated tar: the input ends inside a GNU sparse extension header at tar offset 512');
    expect((await failure(sliced(tar.subarray(0, 1024 + 50)))).message).toMatch(/^\/x: truncated tar: the input ends 50 bytes into the entry's 100 bytes of data$/);
  });
});
