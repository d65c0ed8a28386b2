// A blob id is data, never a path: `create --blob-id` and merge's id lists are refused at the flag
// when they are not one file name, and nothing is written outside -D or --blob-cache-dir.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nydusImage, nydusImageOk } from './cli-runner.js';

let work = '';
let src = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-blob-id-'));
  src = join(work, 'src');
  await mkdir(src);
  await writeFile(join(src, 'f'), 'data\n');
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const BAD = ['../x', '../../escape', '/abs', 'a/b', '..', '.', 'x'.repeat(65), 'sp ace', 'nul\u0001'];

describe('blob ids are data, never paths', () => {
  it('create --blob-id refuses ids that are not one file name (-D and --blob-cache-dir): usage, one line, nothing written', async () => {
    for (const [i, id] of BAD.entries()) {
      for (const mode of ['-D', '--blob-cache-dir'] as const) {
        const top = join(work, `case-${i}-${mode.length}`);
        const dir = join(top, 'out', 'dir');
        await mkdir(dir, { recursive: true });
        const r = await nydusImage(['create', '--blob-id', id, mode, dir, '-B', join(top, 'boot'), src]);
        expect(r.code, `${id}: ${r.stderr.toString()}`).toBe(2);
        const lines = r.stderr.toString().trim().split('\n');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(/--blob-id.*blob id/);
        // Nothing anywhere: not in the dir, not beside it, not above it.
        expect(await readdir(dir)).toEqual([]);
        expect(await readdir(join(top, 'out'))).toEqual(['dir']);
        expect(await readdir(top)).toEqual(['out']);
      }
    }
  });

  it('create --blob-id with a plain name writes <dir>/<id>', async () => {
    const dir = join(work, 'good');
    await mkdir(dir);
    await nydusImageOk(['create', '--blob-id', 'layer-1.v2_x', '-D', dir, '-B', join(work, 'good.boot'), src]);
    expect(await readdir(dir)).toEqual(['layer-1.v2_x']);
  });

  it('merge refuses --original-blob-ids items that are paths (usage, one line)', async () => {
    const dir = join(work, 'm');
    await mkdir(dir);
    const boot = join(dir, 'layer.boot');
    await nydusImageOk(['create', '-D', dir, '-B', boot, src]);
    for (const id of ['../x', '/etc/passwd', '..']) {
      const out = join(work, 'merged.boot');
      const r = await nydusImage(['merge', '-B', out, '--original-blob-ids', id, boot]);
      expect(r.code, r.stderr.toString()).toBe(2);
      expect(r.stderr.toString().trim().split('\n')).toHaveLength(1);
      expect(r.stderr.toString()).toMatch(/--original-blob-ids.*blob id/);
      expect(await readdir(work)).not.toContain('merged.boot');
    }
  });
});
