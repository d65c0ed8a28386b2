// Inputs and outputs that collide: an output that is the same file as an input or as another
// output (by path, through a symlink, or by a hardlink's inode) is refused with one usage line
// naming both flags, and the input is left as it was; a source directory given as a symlink
// builds an image whose root is that directory.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { link, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nydusImage, nydusImageOk } from './cli-runner.js';
import { openImage } from '../../src/read/open.js';

let work = '';
let src = '';
let boot = '';
let blobs = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-collide-'));
  src = join(work, 'src');
  await mkdir(join(src, 'sub'), { recursive: true });
  await writeFile(join(src, 'a'), 'a\n');
  await writeFile(join(src, 'sub', 'b'), 'b\n');
  blobs = join(work, 'blobs');
  await mkdir(blobs);
  boot = join(work, 'boot');
  await nydusImageOk(['create', '-B', boot, '-D', blobs, src]);
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** Runs, expects a usage refusal naming both flags, and that `keep` still holds what it held. */
async function refused(args: string[], flags: [string, string], keep: string): Promise<void> {
  const before = await readFile(keep);
  const r = await nydusImage(args);
  expect(r.code, r.stderr.toString()).toBe(2);
  const lines = r.stderr.toString().trim().split('\n');
  expect(lines).toHaveLength(1);
  for (const f of flags) expect(lines[0]).toContain(f);
  expect(lines[0]).toMatch(/same file/);
  expect((await readFile(keep)).equals(before)).toBe(true);
}

describe('a symlinked source directory', () => {
  it('builds an image whose root is the directory it points to', async () => {
    const ln = join(work, 'src-link');
    await symlink(src, ln);
    const out = join(work, 'linked');
    await mkdir(out);
    await nydusImageOk(['create', '-B', join(out, 'boot'), '-D', out, ln]);
    const image = openImage(join(out, 'boot'));
    expect(image.root.mode & 0o170000).toBe(0o040000);
    expect(image.root.children!.map((c) => c.name.toString()).sort()).toEqual(['a', 'sub']);
  });
});

describe('outputs that are inputs or each other', () => {
  it('create -B X -b X', async () => {
    const x = join(work, 'x');
    await writeFile(x, 'precious');
    await refused(['create', '-B', x, '-b', x, src], ['--bootstrap', '--blob'], x);
  });

  it('create -b through a symlink to -B', async () => {
    const x = join(work, 'y');
    await writeFile(x, 'precious');
    await symlink(x, join(work, 'y-link'));
    await refused(['create', '-B', x, '-b', join(work, 'y-link'), src], ['--bootstrap', '--blob'], x);
  });

  it('create -B over its tar source, and --output-json over -B', async () => {
    const tar = join(work, 'layer.tar');
    await nydusImageOk(['unpack', boot, '-D', blobs, '--output', tar]);
    await refused(['create', '-t', 'tar-rafs', '-B', tar, '-D', blobs, tar], ['--bootstrap', 'source'], tar);
    const x = join(work, 'z');
    await writeFile(x, 'precious');
    await refused(['create', '-B', x, '-D', blobs, '--output-json', x, src], ['--bootstrap', '--output-json'], x);
  });

  it('create --parent-bootstrap P -B P', async () => {
    await refused(['create', '--parent-bootstrap', boot, '-B', boot, '-D', blobs, src], ['--bootstrap', '--parent-bootstrap'], boot);
  });

  it('merge -B over one of its sources', async () => {
    await refused(['merge', '-B', boot, boot], ['--bootstrap', 'source'], boot);
  });

  it('unpack B --output B, and --output a hardlink of B', async () => {
    await refused(['unpack', boot, '-D', blobs, '--output', boot], ['--output', 'BOOTSTRAP'], boot);
    const hard = join(work, 'boot-hardlink');
    await link(boot, hard);
    await refused(['unpack', '-B', boot, '-D', blobs, '--output', hard], ['--output', '--bootstrap'], boot);
  });

  it('export -O over the bootstrap through a symlink', async () => {
    const ln = join(work, 'boot-link');
    await symlink(boot, ln);
    await refused(['export', '--block', '-B', boot, '-D', blobs, '-O', ln], ['--output', '--bootstrap'], boot);
  });

  it('character devices may be named twice: create -B /dev/null -b /dev/null', async () => {
    await nydusImageOk(['create', '-B', '/dev/null', '-b', '/dev/null', src]);
  });
});
