// `nydus-image export --block` as users run it: the default output name, the one stdout line of
// --verity (and that veritysetup accepts exactly those options), FIFO output, and one-line errors
// with no file left behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nydusImage, nydusImageOk, UPSTREAM } from './cli-runner.js';
import { hasTool, runOk } from '../helpers/tools.js';

const BLOB = 'be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef';
let work = '';
let dir = '';
let boot = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-export-cli-'));
  // The fixture directory is read-only; the default output goes next to the blobs.
  dir = join(work, 'image');
  await mkdir(dir);
  boot = join(dir, 'rafs-v6-2.2.boot');
  await copyFile(join(UPSTREAM, 'bootstrap', 'rafs-v6-2.2.boot'), boot);
  await copyFile(join(UPSTREAM, 'blobs', BLOB), join(dir, BLOB));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const VERITY_LINE = /^dm-verity options: --no-superblock --format=1 -s "" --hash=sha256 --data-block-size=(512|4096) --hash-block-size=4096 --data-blocks (\d+) --hash-offset (\d+) ([0-9a-f]{64})\n$/;

function oneErrorLine(stderr: Buffer): string {
  const lines = stderr.toString().trim().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe('export --block', () => {
  it('writes <localfs-dir>/<bootstrap file name>.disk and prints nothing on stdout', async () => {
    const r = await nydusImageOk(['export', '--block', '-B', boot, '-D', dir]);
    expect(r.stdout.toString()).toBe('');
    const disk = join(dir, 'rafs-v6-2.2.boot.disk');
    expect((await stat(disk)).size).toBe(521 * 4096);
    expect((await readFile(disk)).subarray(0, 20480).equals(await readFile(boot))).toBe(true);
    expect((await readdir(dir)).sort()).toEqual([BLOB, 'rafs-v6-2.2.boot', 'rafs-v6-2.2.boot.disk'].sort());
    await rm(disk);
  });

  it('--verity prints exactly one stdout line, and veritysetup verify accepts those very options', async () => {
    const disk = join(work, 'verity.disk');
    const r = await nydusImageOk(['export', '--block', '--bootstrap', boot, '--localfs-dir', dir, '--output', disk, '--verity', '--threads', '1']);
    const m = VERITY_LINE.exec(r.stdout.toString());
    expect(m, r.stdout.toString()).not.toBeNull();
    expect(m![1]).toBe('4096');
    expect(Number(m![2])).toBe(521);
    expect(Number(m![3])).toBe(521 * 4096);
    expect((await stat(disk)).size).toBe((521 + 6) * 4096);
    if (hasTool('veritysetup')) {
      // The printed options, split as a shell would (only -s "" needs care).
      const opts = r.stdout.toString().trim().replace(/^dm-verity options: /, '').split(' ').map((a) => (a === '""' ? '' : a));
      const root = opts.pop()!;
      await runOk('veritysetup', ['verify', ...opts, disk, disk, root]);
    }
  });

  it('the --blob-dir spelling and a FIFO output (written in place, front to back)', async () => {
    const fifo = join(work, 'disk.fifo');
    await runOk('mkfifo', [fifo]);
    const chunks: Buffer[] = [];
    const reading = new Promise<void>((resolve, reject) => {
      createReadStream(fifo).on('data', (c) => chunks.push(c as Buffer)).on('end', resolve).on('error', reject);
    });
    const r = await nydusImageOk(['export', '--block', '-B', boot, '--blob-dir', dir, '-O', fifo]);
    await reading;
    expect(r.stdout.toString()).toBe('');
    const plain = join(work, 'plain.disk');
    await nydusImageOk(['export', '--block', '-B', boot, '-D', dir, '-O', plain]);
    expect(Buffer.concat(chunks).equals(await readFile(plain))).toBe(true);
    const refused = await nydusImage(['export', '--block', '-B', boot, '-D', dir, '-O', fifo, '--verity']);
    expect(refused.code).toBe(2);
    expect(oneErrorLine(refused.stderr)).toMatch(/--verity .* must be a regular file/);
  });

  it('a missing blob: one line naming the blob file, exit 1, no disk and no temporary file', async () => {
    const empty = join(work, 'empty');
    await mkdir(empty);
    const lone = join(empty, 'boot');
    await copyFile(boot, lone);
    const r = await nydusImage(['export', '--block', '-B', lone, '-D', empty, '--verity']);
    expect(r.code).toBe(1);
    expect(r.stdout.toString()).toBe('');
    expect(oneErrorLine(r.stderr)).toBe(`Error: ${join(empty, BLOB)}: no such file or directory`);
    expect(await readdir(empty)).toEqual(['boot']);
  });

  it('a truncated blob: one line naming the blob file, no disk left', async () => {
    const short = join(work, 'short');
    await mkdir(short);
    await copyFile(boot, join(short, 'boot'));
    await writeFile(join(short, BLOB), (await readFile(join(dir, BLOB))).subarray(0, 5000));
    const r = await nydusImage(['export', '--block', '-B', join(short, 'boot'), '-D', short]);
    expect(r.code).toBe(1);
    expect(oneErrorLine(r.stderr)).toMatch(new RegExp(`^Error: ${join(short, BLOB)}: blob is shorter than the bootstrap needs: \\d+ bytes, file has 5000$`));
    expect((await readdir(short)).sort()).toEqual([BLOB, 'boot'].sort());
  });

  it('refuses -C/--config as not supported yet', async () => {
    const cfg = join(work, 'entry.json');
    await writeFile(cfg, '{}');
    const r = await nydusImage(['export', '--block', '-C', cfg]);
    expect(r.code).toBe(1);
    expect(oneErrorLine(r.stderr)).toMatch(/--config is not supported yet/);
  });

  it('usage errors exit 2 in one line', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['export', '-B', boot, '-D', dir], /missing --block/],
      [['export', '--block'], /-C\/--config.*-D\/--localfs-dir.*missing/],
      [['export', '--block', '-B', boot], /-B\/--bootstrap needs -D\/--localfs-dir/],
      [['export', '--block', '-D', dir], /-D\/--localfs-dir needs -B\/--bootstrap/],
      [['export', '--block', '-B', boot, '-D', dir, '--threads', '0'], /invalid thread number 0, valid range: \[1-1024\]/],
      [['export', '--block', '-B', boot, '-D', dir, '--threads', 'many'], /invalid thread number configuration: many/],
    ];
    for (const [args, pattern] of cases) {
      const r = await nydusImage(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(oneErrorLine(r.stderr)).toMatch(pattern);
    }
    expect((await readdir(dir)).sort()).toEqual([BLOB, 'rafs-v6-2.2.boot'].sort());
  });
});
