// `create -t tar-tarfs` from outside (tar-merge-export.md §6, §7, §9): the hostile tree, tarred by
// GNU tar, built the way the snapshotter calls us (--blob-id, a FIFO) and judged by the kernel
// with the tar itself as the blob device; then `export --block [--verity]` of that image mounted
// alone and checked by veritysetup. Also: stdin and FIFO input give the file's bootstrap, -J,
// and bad input failing in one line with nothing left behind.
//
// The root: GNU tar's "./" entry replaces the synthetic root's attributes (mode, owner, mtime
// seconds, xattrs), so the mounted root must equal the source root like every other entry. A tar
// without "./" gets 040755 0:0 mtime 0 (test/builder/tarfs.test.ts checks that on the fixture).
// Tar keeps whole seconds only (upstream ignores PAX mtime): mtimes are compared in seconds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareTrees, showPath } from '../helpers/compare.js';
import { attachLoop, kernelSupport, mountErofs, skipLoudly, type SkipContext } from '../helpers/kernel.js';
import { hasTool, run, runOk } from '../helpers/tools.js';
import { buildHostileTree, joinPath, prng } from '../helpers/tree.js';
import { loggedBlobIds, nydusImage, nydusImageOk, UPSTREAM } from './cli-runner.js';

const kernel = kernelSupport();
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** GNU tar does not archive sockets ("socket ignored"). */
const notInTar = (rel: Buffer) => rel.toString('latin1') === 'special/socket';

let work = '';
/** The hostile tree and its tar (root only). */
let hostile: { src: string; tar: string; id: string } | undefined;
/** A small tree any user can make, and its tar. */
let plain = { tar: '', id: '' };

async function gnuTar(src: string, out: string): Promise<string> {
  await runOk('tar', ['--format=pax', '--xattrs', '--xattrs-include=*', '--numeric-owner', '-C', src, '-cf', out, '.']);
  return sha256(await readFile(out));
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-tarfs-cli-'));
  const p = join(work, 'plain-src');
  await mkdir(join(p, 'd/e'), { recursive: true });
  await writeFile(join(p, 'small'), 'small\n');
  await writeFile(join(p, 'd/big.bin'), prng(41, 2.5 * 1024 * 1024 + 17));
  await writeFile(join(p, 'd/e/mid.bin'), prng(42, 70_001));
  await runOk('ln', [join(p, 'd/big.bin'), join(p, 'd/e/big-link')]);
  await runOk('ln', ['-s', '../small', join(p, 'd/sym')]);
  plain = { tar: join(work, 'plain.tar'), id: '' };
  plain.id = await gnuTar(p, plain.tar);
  if (kernel.ok) {
    const src = join(work, 'hostile-src');
    await buildHostileTree(src);
    const tar = join(work, 'hostile.tar');
    hostile = { src, tar, id: await gnuTar(src, tar) };
  }
}, 300_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function needHostile(ctx: SkipContext): { src: string; tar: string; id: string } {
  if (!kernel.ok) return skipLoudly(ctx, `kernel cannot mount EROFS here: ${kernel.why}`);
  if (!hostile) throw new Error('the hostile tree was not built');
  return hostile;
}

/** Every entry's mtime in whole seconds, by relative path (the root as ""). */
async function mtimeSeconds(root: string, ignore: (rel: Buffer) => boolean): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  const visit = async (rel: Buffer): Promise<void> => {
    const abs = joinPath(root, rel);
    const st = await lstat(abs, { bigint: true });
    out.set(rel.toString('latin1'), st.mtimeNs / 1_000_000_000n);
    if (!st.isDirectory()) return;
    for (const name of await readdir(abs, { encoding: 'buffer' })) {
      const c = rel.length === 0 ? Buffer.from(name) : Buffer.concat([rel, Buffer.from('/'), name]);
      if (!ignore(c)) await visit(c);
    }
  };
  await visit(Buffer.alloc(0));
  return out;
}

/** The mounted tree must be the source: everything compareTrees sees but mtime, then mtimes in seconds. */
async function expectSameTree(src: string, mnt: string): Promise<void> {
  expect(await compareTrees(src, mnt, { skip: ['mtime'], ignore: notInTar })).toEqual([]);
  const [e, a] = await Promise.all([mtimeSeconds(src, notInTar), mtimeSeconds(mnt, notInTar)]);
  const diffs = [...e].filter(([p, s]) => a.get(p) !== s).map(([p, s]) => `${showPath(Buffer.from(p, 'latin1'))}: ${s} != ${a.get(p)}`);
  expect(diffs).toEqual([]);
  expect(a.size).toBe(e.size);
}

/** Builds like the snapshotter's tarfs manager: --blob-id, --blob-dir, a FIFO fed by another process. */
async function buildFromFifo(tar: string, dir: string, id: string): Promise<string> {
  const fifo = join(dir, '..', `${id.slice(0, 8)}-${Date.now()}.fifo`);
  await runOk('mkfifo', [fifo]);
  const writer = run('sh', ['-c', 'cat "$1" > "$2"', 'sh', tar, fifo]);
  const boot = join(dir, '..', `${id.slice(0, 8)}-${Date.now()}.boot.tmp`);
  await nydusImageOk(['create', '--type', 'tar-tarfs', '--bootstrap', boot, '--blob-id', id, '--blob-dir', dir, fifo]);
  expect((await writer).code).toBe(0);
  return boot;
}

describe('the hostile tree through GNU tar and tar-tarfs, judged by the kernel', () => {
  let image = { boot: '', cache: '' };

  it('the snapshotter\'s argv from a FIFO: the tar copied as <id>, mounted with it as device=, equals the source', async (ctx) => {
    const h = needHostile(ctx);
    const cache = join(work, 'cache');
    await mkdir(cache);
    const boot = await buildFromFifo(h.tar, cache, h.id);
    expect(await readdir(cache)).toEqual([h.id]);
    expect((await readFile(join(cache, h.id))).equals(await readFile(h.tar))).toBe(true);
    image = { boot, cache };

    const loop = await attachLoop(join(cache, h.id));
    try {
      const m = await mountErofs(boot, { devices: [loop.dev] });
      try {
        await expectSameTree(h.src, m.dir);
      } finally {
        await m.unmount();
      }
    } finally {
      await loop.detach();
    }
  }, 300_000);

  it('the same tar from a file with -J: the same bootstrap, and --output-json lists the tar as the one blob', async (ctx) => {
    const h = needHostile(ctx);
    if (!image.boot) throw new Error('the FIFO build did not run');
    const dir = join(work, 'from-file');
    await mkdir(dir);
    const json = join(work, 'from-file.json');
    const r = await nydusImageOk(['create', '-t', 'tar-tarfs', '-B', join(work, 'from-file.boot'), '-D', dir, '-J', json, h.tar]);
    expect((await readFile(join(work, 'from-file.boot'))).equals(await readFile(image.boot))).toBe(true);
    expect(loggedBlobIds(r.stderr)).toEqual([h.id]);
    expect(r.stderr.toString()).toContain(`data blob size: 0x${(await readFile(h.tar)).length.toString(16)}`);
    const out = JSON.parse(await readFile(json, 'utf8')) as Record<string, unknown>;
    expect(Object.keys(out)).toEqual(['version', 'bootstrap', 'blobs', 'external_bootstrap', 'external_blobs', 'trace', 'fs_version', 'compressor']);
    expect(out).toMatchObject({ bootstrap: join(work, 'from-file.boot'), blobs: [h.id], external_bootstrap: '', external_blobs: [], fs_version: '6', compressor: 'none' });
  }, 300_000);

  it('export --block: the disk (bootstrap + the tar at its 512 KiB-aligned slot) mounts alone and equals the source', async (ctx) => {
    const h = needHostile(ctx);
    if (!image.boot) throw new Error('the FIFO build did not run');
    const disk = join(work, 'layer.disk');
    const r = await nydusImageOk(['export', '--block', '--localfs-dir', image.cache, '--bootstrap', image.boot, '--output', disk]);
    expect(r.stdout.toString()).toBe('');
    const bootLen = (await readFile(image.boot)).length;
    const tarLen = (await readFile(h.tar)).length;
    const mapped = Math.ceil(bootLen / 0x80000) * 0x80000;
    expect((await lstat(disk)).size).toBe(mapped + tarLen);
    const m = await mountErofs(disk, { loop: true });
    try {
      await expectSameTree(h.src, m.dir);
    } finally {
      await m.unmount();
    }
  }, 300_000);

  it('export --block --verity: 512-byte data blocks, and veritysetup verify accepts the tree', async (ctx) => {
    const h = needHostile(ctx);
    if (!image.boot) throw new Error('the FIFO build did not run');
    if (!hasTool('veritysetup')) skipLoudly(ctx, 'veritysetup is not on PATH');
    const disk = join(work, 'layer-verity.disk');
    const r = await nydusImageOk(['export', '--block', '--localfs-dir', image.cache, '--bootstrap', image.boot, '--output', disk, '--verity']);
    const line = r.stdout.toString();
    const m = /^dm-verity options: --no-superblock --format=1 -s "" --hash=sha256 --data-block-size=512 --hash-block-size=4096 --data-blocks (\d+) --hash-offset (\d+) ([0-9a-f]{64})\n?$/.exec(line);
    expect(m, line).not.toBeNull();
    const [blocks, hashOffset, root] = [Number(m![1]), Number(m![2]), m![3]!];
    const bootLen = (await readFile(image.boot)).length;
    expect(blocks).toBe((Math.ceil(bootLen / 0x80000) * 0x80000 + (await readFile(h.tar)).length) / 512);
    expect(hashOffset).toBe(Math.ceil((blocks * 512) / 4096) * 4096);
    await runOk('veritysetup', [
      'verify', '--no-superblock', '--format=1', '-s', '', '--hash=sha256', '--data-block-size=512', '--hash-block-size=4096',
      '--data-blocks', String(blocks), '--hash-offset', String(hashOffset), disk, disk, root,
    ]);
    const mounted = await mountErofs(disk, { loop: true });
    try {
      expect(await compareTrees(h.src, mounted.dir, { skip: ['mtime'], ignore: notInTar })).toEqual([]);
    } finally {
      await mounted.unmount();
    }
  }, 300_000);

});

describe('stdin and FIFO input', () => {
  it('"-" and a FIFO give the file\'s bootstrap; the copy in -D is the input, named by its sha256', async () => {
    const ref = join(work, 'plain-file');
    await mkdir(ref);
    await nydusImageOk(['create', '-t', 'tar-tarfs', '-B', join(ref, 'boot'), '-D', ref, plain.tar]);
    const tar = await readFile(plain.tar);

    const viaStdin = join(work, 'plain-stdin');
    await mkdir(viaStdin);
    const r = await nydusImageOk(['create', '-t', 'tar-tarfs', '-B', join(viaStdin, 'boot'), '-D', viaStdin, '-'], { input: tar });
    expect(loggedBlobIds(r.stderr)).toEqual([plain.id]);
    expect((await readdir(viaStdin)).sort()).toEqual([plain.id, 'boot'].sort());
    expect((await readFile(join(viaStdin, 'boot'))).equals(await readFile(join(ref, 'boot')))).toBe(true);
    expect((await readFile(join(viaStdin, plain.id))).equals(tar)).toBe(true);

    const viaFifo = join(work, 'plain-fifo');
    await mkdir(viaFifo);
    const boot = await buildFromFifo(plain.tar, viaFifo, plain.id);
    expect((await readFile(boot)).equals(await readFile(join(ref, 'boot')))).toBe(true);
    expect(await readdir(viaFifo)).toEqual([plain.id]);
    expect((await readFile(join(viaFifo, plain.id))).equals(tar)).toBe(true);
  });

  it('the kernel reads every file of the plain tree through the tar', async (ctx) => {
    if (!kernel.ok) skipLoudly(ctx, `kernel cannot mount EROFS here: ${kernel.why}`);
    const dir = join(work, 'plain-mount');
    await mkdir(dir);
    await nydusImageOk(['create', '-t', 'tar-tarfs', '-B', join(dir, 'boot'), '-D', dir, plain.tar]);
    const loop = await attachLoop(join(dir, plain.id));
    try {
      const m = await mountErofs(join(dir, 'boot'), { devices: [loop.dev] });
      try {
        expect(await compareTrees(join(work, 'plain-src'), m.dir, { skip: ['mtime'] })).toEqual([]);
      } finally {
        await m.unmount();
      }
    } finally {
      await loop.detach();
    }
  });
});

describe.concurrent('bad input and refused flags: one line, non-zero exit, nothing left behind', () => {
  const bad: Array<{ name: string; make?: (file: string) => Promise<unknown>; args?: (dir: string) => string[]; code: number; error: RegExp }> = [
    {
      name: 'a tar truncated inside file data',
      make: async (f) => writeFile(f, (await readFile(join(UPSTREAM, 'tar', 'all-entry-type.tar'))).subarray(0, 2055)),
      code: 1,
      error: /truncated tar/,
    },
    {
      name: 'a tar cut inside a header',
      make: async (f) => writeFile(f, (await readFile(plain.tar)).subarray(0, 1000)),
      code: 1,
      error: /truncated tar: the input ends inside the .*header/,
    },
    {
      name: 'gzip input (tar-tarfs never decompresses)',
      make: async (f) => writeFile(f, gzipSync(await readFile(plain.tar))),
      code: 1,
      error: /bad tar header at tar offset 0.*\(the input is gzip data/,
    },
    { name: 'no -D', args: (dir) => ['-B', join(dir, 'boot')], code: 2, error: /--blob-dir/ },
    { name: '-b', args: (dir) => ['-B', join(dir, 'boot'), '-b', join(dir, 'blob')], code: 2, error: /conflicts with --blob$/ },
    { name: '--chunk-dict', args: (dir) => ['-B', join(dir, 'boot'), '-D', join(dir, 'blobs'), '--chunk-dict', join(dir, 'nothing')], code: 2, error: /conflicts with --chunk-dict/ },
    { name: '--features blob-toc', args: (dir) => ['-B', join(dir, 'boot'), '-D', join(dir, 'blobs'), '--features', 'blob-toc'], code: 2, error: /conflicts with --features blob-toc/ },
    { name: '--blob-inline-meta', args: (dir) => ['-D', join(dir, 'blobs'), '--blob-inline-meta'], code: 2, error: /conflicts with --blob-inline-meta/ },
  ];

  for (const b of bad) {
    it(b.name, async ({ expect }) => {
      const dir = join(work, `bad-${b.name.replace(/\W+/g, '_')}`);
      await mkdir(join(dir, 'blobs'), { recursive: true });
      const input = join(dir, 'input.tar');
      if (b.make) await b.make(input);
      else await writeFile(input, await readFile(plain.tar));
      const args = b.args ? b.args(dir) : ['-B', join(dir, 'boot'), '-D', join(dir, 'blobs')];
      const r = await nydusImage(['create', '-t', 'tar-tarfs', ...args, input]);
      expect(r.code).toBe(b.code);
      const err = r.stderr.toString().trimEnd();
      expect(err.split('\n'), err).toHaveLength(1);
      expect(err).toMatch(/^Error: /);
      expect(err).toMatch(b.error);
      expect(r.stdout.toString()).toBe('');
      expect((await readdir(dir)).sort()).toEqual(['blobs', 'input.tar']);
      expect(await readdir(join(dir, 'blobs'))).toEqual([]);
    });
  }
});
