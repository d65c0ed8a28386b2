// `nydusify pack` (alias `build`; spec §3.1): a directory into <out>/<name>.meta and a blob,
// layered with --parent-bootstrap, deduplicated with --chunk-dict, pushed with --backend-push to
// S3 (s3rver on 127.0.0.1) under blob_prefix / meta_prefix, then read back through check.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type RunResult } from '../helpers/tools.js';
import { prng } from '../helpers/tree.js';
import { startS3, type S3Server } from '../helpers/s3.js';
import { REPO, nydusImageOk } from './cli-runner.js';

const NYDUSIFY = join(REPO, 'bin', 'nydusify.js');
let work = '';
let s3: S3Server;

const nydusify = (args: readonly string[]): Promise<RunResult> => run(process.execPath, [NYDUSIFY, ...args], { cwd: work, timeoutMs: 300_000 });
async function ok(args: readonly string[]): Promise<RunResult> {
  const r = await nydusify(args);
  if (r.code !== 0) throw new Error(`nydusify ${args.join(' ')}: exit ${r.code}\n${r.stderr.toString()}`);
  return r;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydusify-pack-'));
  await mkdir(join(work, 'base/etc'), { recursive: true });
  await writeFile(join(work, 'base/etc/os'), 'base\n');
  await writeFile(join(work, 'base/data'), prng(1, 2 << 20));
  await mkdir(join(work, 'upper'), { recursive: true });
  await writeFile(join(work, 'upper/new'), prng(2, 1 << 20));
  // The upper layer repeats the base's data: the chunk dict finds it.
  await writeFile(join(work, 'upper/copy'), prng(1, 2 << 20));
  s3 = await startS3();
}, 60_000);

afterAll(async () => {
  await s3?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('nydusify pack', () => {
  it('pushes the blob to blob_prefix + id and the bootstrap to meta_prefix + name; check reads it back', async () => {
    const conf = JSON.stringify(s3.config({ meta_prefix: 'meta/', blob_prefix: 'blobs/' }));
    const out = join(work, 'out');
    const r = await ok(['pack', '--source-dir', join(work, 'base'), '--output-dir', out, '--name', 'base', '--backend-push', '--backend-type', 's3', '--backend-config', conf]);
    const id = /blob: ([0-9a-f]{64})/.exec(r.stderr.toString())![1]!;
    expect((await readdir(out)).sort()).toEqual([id, 'base.meta'].sort());
    expect((await s3.keys()).sort()).toEqual([`blobs/${id}`, 'meta/base'].sort());
    expect(await s3.uploads()).toEqual([]);
    expect((await s3.get('meta/base')).equals(await readFile(join(out, 'base.meta')))).toBe(true);
    // Read back: the bootstrap from the bucket, its blob by ranged gets.
    await writeFile(join(work, 'base.boot'), await s3.get('meta/base'));
    const c = await nydusImageOk(['check', join(work, 'base.boot'), '--backend-type', 's3', '--backend-config', JSON.stringify(s3.config({ object_prefix: 'blobs/' }))]);
    expect(c.stdout.toString()).toContain(id);

    // A layer on it (alias `build`): only the new blob; the chunk dict keeps repeated data out of it.
    const layered = await ok(['build', '--target-dir', join(work, 'upper'), '-o', out, '--meta', 'upper', '--parent-bootstrap', join(out, 'base.meta'),
      '--chunk-dict', `bootstrap=${join(out, 'base.meta')}`, '--backend-push', '--backend-type', 's3', '--backend-config', conf]);
    const id2 = /blob: ([0-9a-f]{64})/.exec(layered.stderr.toString())![1]!;
    expect(id2).not.toBe(id);
    const size2 = (await stat(join(out, id2))).size;
    expect(size2).toBeLessThan(2 << 20);
    expect(await s3.keys()).toEqual(expect.arrayContaining([`blobs/${id2}`, 'meta/upper']));
    await writeFile(join(work, 'upper.boot'), await s3.get('meta/upper'));
    await nydusImageOk(['check', join(work, 'upper.boot'), '--backend-type', 's3', '--backend-config', JSON.stringify(s3.config({ object_prefix: 'blobs/' }))]);
    const tar = join(work, 'upper.tar');
    await nydusImageOk(['unpack', join(work, 'upper.boot'), '--backend-type', 's3', '--backend-config', JSON.stringify(s3.config({ object_prefix: 'blobs/' })), '--output', tar]);
    const listing = (await run('tar', ['-tf', tar])).stdout.toString();
    for (const f of ['etc/os', 'data', 'new', 'copy']) expect(listing).toContain(f);
  }, 300_000);

  it('without --backend-push: <out>/<name>.meta and <out>/<name>.blob, nothing pushed', async () => {
    const out = join(work, 'local');
    const before = (await s3.keys()).length;
    await ok(['pack', '--source-dir', join(work, 'base'), '--output-dir', out, '--name', 'img']);
    expect((await readdir(out)).sort()).toEqual(['img.blob', 'img.meta']);
    await nydusImageOk(['check', join(out, 'img.meta'), '--blob', join(out, 'img.blob')]);
    expect((await s3.keys()).length).toBe(before);
  }, 120_000);

  it('refuses in one line: --compact, a missing --name, a bad backend config, a file as source', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--source-dir', join(work, 'base'), '--name', 'x', '--compact'], /compaction .* not supported yet/],
      [['--source-dir', join(work, 'base')], /missing --name/],
      [['--source-dir', join(work, 'base'), '--name', 'x', '--backend-push', '--backend-type', 's3', '--backend-config', '{"bucket_name":"b"}'], /missing required field "region"/],
      [['--source-dir', join(work, 'base/data'), '--name', 'x'], /not a directory/],
      [['--source-dir', join(work, 'base'), '--name', 'x', '--backend-push'], /--backend-push needs --backend-config/],
    ];
    for (const [args, want] of cases) {
      const r = await nydusify(['pack', '-o', join(work, 'never'), ...args]);
      expect(r.code, args.join(' ')).not.toBe(0);
      const lines = r.stderr.toString().trim().split('\n');
      expect(lines, args.join(' ')).toHaveLength(1);
      expect(lines[0]).toMatch(want);
    }
    await expect(stat(join(work, 'never', 'x.meta'))).rejects.toThrow();
  }, 120_000);
});
