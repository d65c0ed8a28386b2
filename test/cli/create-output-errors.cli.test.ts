// An output that is an existing directory is refused before any work, with one usage line
// naming the flag (it ended a finished build with a bare "EISDIR"-style line); the directory is
// left as it was and no temporary is left beside it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nydusImage, nydusImageOk } from './cli-runner.js';

let work = '';
let src = '';
let boot = '';
let blobs = '';
let dir = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-output-dir-'));
  src = join(work, 'src');
  await mkdir(src);
  await writeFile(join(src, 'f'), 'f\n');
  blobs = join(work, 'blobs');
  await mkdir(blobs);
  boot = join(work, 'boot');
  await nydusImageOk(['create', '-B', boot, '-D', blobs, src]);
  dir = join(work, 'a-dir');
  await mkdir(dir);
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const CASES: Array<[string, () => string[], string]> = [
  ['create -B DIR', () => ['create', '-B', dir, '-D', blobs, src], '--bootstrap'],
  ['create -b DIR', () => ['create', '-B', join(work, 'b2'), '-b', dir, src], '--blob'],
  ['create --output-json DIR', () => ['create', '-B', join(work, 'b3'), '-D', blobs, '--output-json', dir, src], '--output-json'],
  ['merge -B DIR', () => ['merge', '-B', dir, boot], '--bootstrap'],
  ['unpack --output DIR', () => ['unpack', boot, '-D', blobs, '--output', dir], '--output'],
  ['export -O DIR', () => ['export', '--block', '-B', boot, '-D', blobs, '-O', dir], '--output'],
];

describe('an output that is a directory', () => {
  for (const [name, args, flag] of CASES) {
    it(`${name}: one usage line naming ${flag}, nothing written`, async () => {
      const before = (await readdir(work)).sort();
      const r = await nydusImage(args());
      expect(r.code, r.stderr.toString()).toBe(2);
      const lines = r.stderr.toString().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toBe(`Error: ${flag} ${dir} is a directory: give a file path`);
      expect(await readdir(dir)).toEqual([]);
      expect((await readdir(work)).sort()).toEqual(before);
    });
  }
});
