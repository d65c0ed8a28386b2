// A large directory is stated and yielded in slices of 512 entries (src/sources/dir.ts,
// SCAN_SLICE), so the walk never holds the main thread for a whole /usr/share/man/man1. Here a
// directory of 1,300 entries (files, symlinks, subdirectories, hardlinks whose other name is two
// slices away, xattrs) must come out as the source: its entries in name order across the slices,
// its subdirectories after them, every one stated; the kernel mounts the image and shows exactly
// the source; and an entry gone between the slices fails the build with one line naming it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { linkSync, mkdirSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '../../src/builder/create.js';
import { NydusError } from '../../src/errors.js';
import { dirSource } from '../../src/sources/dir.js';
import { ENTRY_GROUPS, type EntryStage, type GroupedSource, type SourceEntry } from '../../src/pipeline/stage.js';
import { compareTrees } from '../helpers/compare.js';
import { kernelSupport, skipLoudly, withMountedImage } from '../helpers/kernel.js';
import { xattr } from '../helpers/native.js';

const ENTRIES = 1300;
const kernel = kernelSupport();
let work = '';
let src = '';

/** The big directory's names, in bytewise order (as the walk must give them). */
const names: Buffer[] = [];
/** Its regular files' names (latin1) that are all ASCII. */
const plainFiles: string[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-dir-slices-'));
  src = join(work, 'src');
  const big = join(src, 'big');
  mkdirSync(big, { recursive: true });
  for (let i = 0; i < ENTRIES; i++) {
    // Mixed case and a byte over 0x7f now and then: bytewise order is not the order of creation.
    const name = Buffer.from(`${i % 3 === 0 ? 'E' : 'e'}${String((i * 7919) % ENTRIES).padStart(4, '0')}${i % 50 === 0 ? '\xe9' : ''}`, 'latin1');
    names.push(name);
    const p = Buffer.concat([Buffer.from(`${big}/`), name]);
    switch (i % 10) {
      case 7:
        symlinkSync(`target-${i}`, p);
        break;
      case 8:
        mkdirSync(p);
        writeFileSync(Buffer.concat([p, Buffer.from('/inner')]), `inner ${i}\n`);
        break;
      case 9:
        // Another name of the first file: most of these sit in a later slice than it.
        linkSync(Buffer.concat([Buffer.from(`${big}/`), names[0]]), p);
        break;
      default:
        writeFileSync(p, `file ${i}\n`.repeat(1 + (i % 5)));
        if (i % 50 !== 0) plainFiles.push(name.toString('latin1'));
        if (i % 13 === 0) xattr.lset(p, Buffer.from('user.slice'), Buffer.from(`value ${i}`));
    }
  }
  names.sort(Buffer.compare);
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const isDir = (e: SourceEntry) => (e.node.mode & 0o170000) === 0o040000;

describe('a directory larger than one slice', () => {
  it('is yielded a slice at a time: its entries in name order, then its subdirectories', () => {
    const groups = [...(dirSource(src) as GroupedSource)[ENTRY_GROUPS]()];
    const bigGroups = groups.filter((g) => g.some((e) => e.parent?.name.toString() === 'big' && !isDir(e)) || g[0]?.node.name.toString() === 'big');
    // 1,300 names in slices of 512: three groups hold its non-directories (the first also holds
    // the directory itself), none of them the whole directory.
    expect(bigGroups.length).toBe(3);
    expect(bigGroups[0][0].node.name.toString()).toBe('big');
    const nonDirs = bigGroups.flat().filter((e) => e.parent?.name.toString() === 'big');
    expect(nonDirs.every((e) => !isDir(e))).toBe(true);
    // Every entry came out, each stated (symlinks with their targets), in bytewise name order.
    const subdirs = groups.filter((g) => g[0] && isDir(g[0]) && g[0].parent?.name.toString() === 'big').map((g) => g[0]);
    expect(nonDirs.length + subdirs.length).toBe(ENTRIES);
    const walked = [...nonDirs, ...subdirs].map((e) => e.node.name);
    expect(walked.map((n) => n.toString('latin1'))).toEqual(
      [...names.filter((n) => !subdirs.some((d) => d.node.name.equals(n))), ...names.filter((n) => subdirs.some((d) => d.node.name.equals(n)))].map((n) => n.toString('latin1')),
    );
    for (const e of nonDirs) if ((e.node.mode & 0o170000) === 0o120000) expect(e.node.target?.toString()).toMatch(/^target-\d+$/);
    // The subdirectories come after the last slice, each followed by its own file.
    const lastSlice = groups.indexOf(bigGroups[2]);
    expect(groups.findIndex((g) => g[0] && isDir(g[0]) && g[0].parent?.name.toString() === 'big')).toBeGreaterThan(lastSlice);
    // The 130 other names of one file, in every slice, all point at the one walked first.
    const links = nonDirs.filter((e) => e.node.linkTo !== undefined);
    expect(links.length).toBe(ENTRIES / 10);
    const target = links[0].node.linkTo!;
    expect(links.every((e) => e.node.linkTo === target)).toBe(true);
    expect(nonDirs.some((e) => e.node === target)).toBe(true);
    expect(links.every((e) => Buffer.compare(target.name, e.node.name) < 0)).toBe(true);
  });

  it('mounts under the kernel as exactly the source (0 and 2 threads)', async (ctx) => {
    if (!kernel.ok) return skipLoudly(ctx, `kernel cannot mount EROFS here: ${kernel.why}`);
    for (const threads of [0, 2]) {
      const out = join(work, `out-${threads}`);
      const cache = join(out, 'cache');
      await mkdir(cache, { recursive: true });
      // The cache's .blob.data is the blob as the kernel takes it for a device.
      await create({ source: src, bootstrap: join(out, 'boot'), blobCacheDir: cache, threads });
      const data = (await readdir(cache)).filter((f) => f.endsWith('.blob.data'));
      expect(data.length).toBe(1);
      const diffs = await withMountedImage(join(out, 'boot'), [join(cache, data[0])], (mnt) => compareTrees(src, mnt, { ignoreRootMtime: true }));
      expect(diffs).toEqual([]);
    }
  }, 120_000);

  it('an entry removed after the first slice went fails the build with one line naming it', async () => {
    // Removed as the directory's first entry passes: the walk has stated only the first slice.
    const last = plainFiles.sort()[plainFiles.length - 1];
    const victim = join(src, 'big', last);
    expect(names.findIndex((n) => n.toString('latin1') === last)).toBeGreaterThanOrEqual(1024);
    let removed = false;
    const meddler: EntryStage = {
      name: 'meddler',
      kind: 'entry',
      create: () =>
        async function* (entries: AsyncIterable<SourceEntry>) {
          for await (const e of entries) {
            if (!removed && e.parent?.name.toString() === 'big') {
              unlinkSync(victim);
              removed = true;
            }
            yield e;
          }
        },
    };
    const out = join(work, 'out-removed');
    await mkdir(out);
    const err = await create({ source: src, bootstrap: join(out, 'boot'), blob: join(out, 'blob'), stages: [meddler] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(removed).toBe(true);
    expect(err).toBeInstanceOf(NydusError);
    expect((err as NydusError).message).toBe(`${victim}: no such file or directory`);
    expect(await readdir(out)).toEqual([]);
  });
});
