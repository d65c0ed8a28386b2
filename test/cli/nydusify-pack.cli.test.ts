// `nydusify pack` (alias build) as users run it (bin/nydusify.js): upstream's artifacts in the
// output directory, each image read back by unpack + GNU tar equal to what it must hold; a layer
// on --parent-bootstrap and a build against --chunk-dict store only what is new, under the new
// blob's sha256; --nydus-image exec's that program with upstream's argv and makes the same bytes;
// bad flags and configs end in one line, non-zero, with nothing written.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openImage } from '../../src/read/open.js';
import { BIN, nydusImageOk } from './cli-runner.js';
import { MiB, errorLine, makePackSources, nydusifyIn, outputBlobs, untarEquals } from './pack-fixture.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let work = '';
let nydusify: ReturnType<typeof nydusifyIn>['nydusify'];
let nydusifyOk: ReturnType<typeof nydusifyIn>['ok'];

/** unpack (blobs from blobDir, named by id) → GNU tar → compared with `expected`. */
async function unpackEquals(boot: string, blobDir: string, expected: string): Promise<void> {
  const x = await mkdtemp(join(work, 'x-'));
  await nydusImageOk(['unpack', '--bootstrap', boot, '--blob-dir', blobDir, '--output', join(x, 'out.tar')]);
  await untarEquals(join(x, 'out.tar'), expected);
}

let base = '';
let layer = '';
let merged = '';
let dictUser = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydusify-pack-cli-'));
  ({ base, layer, merged, dictUser } = await makePackSources(work));
  ({ nydusify, ok: nydusifyOk } = nydusifyIn(work));
}, 120_000);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('nydusify pack', () => {
  it('writes <name>.meta, <name>.blob and output.json; the image reads back equal to the source', async () => {
    const out = join(work, 'plain');
    const r = await nydusifyOk(['pack', '--source-dir', base, '--name', 'app', '--output-dir', out]);
    expect((await readdir(out)).sort()).toEqual(['app.blob', 'app.meta', 'output.json']);
    const blobs = await outputBlobs(out);
    expect(blobs).toHaveLength(1);
    // Not layered, not pushed: the blob keeps its name, and its id is its sha256.
    expect(sha256(await readFile(join(out, 'app.blob')))).toBe(blobs[0]);
    expect(openImage(join(out, 'app.meta')).blobs.map((b) => b.blobId)).toEqual(blobs);
    expect(r.stderr.toString()).toContain(`successfully built Nydus image (bootstrap:'${join(out, 'app.meta')}', blob:'${join(out, 'app.blob')}')`);
    const blobDir = join(work, 'plain-blobs');
    await mkdir(blobDir);
    await copyFile(join(out, 'app.blob'), join(blobDir, blobs[0]!));
    await unpackEquals(join(out, 'app.meta'), blobDir, base);
  });

  it('defaults the output directory to ./.nydus-build-output; build and the old flag names are aliases', async () => {
    const cwd = await mkdtemp(join(work, 'cwd-'));
    await nydusifyOk(['build', '--target-dir', base, '--bootstrap', 'img.boot'], cwd);
    // A name with an extension is the bootstrap's file name; the blob drops the extension.
    expect((await readdir(join(cwd, '.nydus-build-output'))).sort()).toEqual(['img.blob', 'img.boot', 'output.json']);
    await nydusifyOk(['pack', '--source-dir', base, '--meta', 'again'], cwd);
    expect(existsSync(join(cwd, '.nydus-build-output', 'again.meta'))).toBe(true);
  });

  it('layers on --parent-bootstrap: only the new data is stored, under <out>/<sha256>, and the merged view reads back', async () => {
    const out = join(work, 'layered');
    await nydusifyOk(['pack', '--source-dir', base, '--name', 'base', '-o', out]);
    const [parentId] = await outputBlobs(out);
    const r = await nydusifyOk(['pack', '--source-dir', layer, '--name', 'layer', '-o', out, '--parent-bootstrap', join(out, 'base.meta')]);
    const blobs = await outputBlobs(out);
    // The parent's blob first, then the new one: the blob the parent does not have.
    expect(blobs).toHaveLength(2);
    expect(blobs[0]).toBe(parentId);
    const newId = blobs[1]!;
    const newBlob = join(out, newId);
    expect(sha256(await readFile(newBlob))).toBe(newId);
    expect(existsSync(join(out, 'layer.blob'))).toBe(false);
    expect(r.stderr.toString()).toContain(`blob:'${newBlob}'`);
    // The copy of the base's 2 MiB file is referenced in the parent's blob: the new blob holds
    // about the new 1 MiB file (incompressible) and little else.
    const size = (await stat(newBlob)).size;
    expect(size).toBeGreaterThan(1 * MiB);
    expect(size).toBeLessThan(1.5 * MiB);
    await copyFile(join(out, 'base.blob'), join(out, parentId!));
    await unpackEquals(join(out, 'layer.meta'), out, merged);
  });

  it('deduplicates against --chunk-dict: the dict blob is referenced, the new blob holds only what the dict lacks', async () => {
    const dictOut = join(work, 'dict');
    await nydusifyOk(['pack', '--source-dir', base, '--name', 'dict', '-o', dictOut]);
    const [dictId] = await outputBlobs(dictOut);
    const plainOut = join(work, 'no-dict');
    await nydusifyOk(['pack', '--source-dir', dictUser, '--name', 'u', '-o', plainOut]);
    const plainSize = (await stat(join(plainOut, 'u.blob'))).size;

    const out = join(work, 'with-dict');
    const r = await nydusifyOk(['pack', '--source-dir', dictUser, '--name', 'u', '-o', out, '--chunk-dict', `bootstrap=${join(dictOut, 'dict.meta')}`]);
    const blobs = await outputBlobs(out);
    expect(blobs).toContain(dictId);
    const newIds = blobs.filter((b) => b !== dictId);
    expect(newIds).toHaveLength(1);
    // Neither layered nor pushed: the new blob keeps its <name>.blob name.
    const newBlob = join(out, 'u.blob');
    expect(sha256(await readFile(newBlob))).toBe(newIds[0]);
    expect(r.stderr.toString()).toContain(`blob:'${newBlob}'`);
    const size = (await stat(newBlob)).size;
    expect(size).toBeLessThan(plainSize - 3 * MiB);
    expect(size).toBeGreaterThan(512 * 1024);
    const blobDir = join(work, 'dict-blobs');
    await mkdir(blobDir);
    await copyFile(join(dictOut, 'dict.blob'), join(blobDir, dictId!));
    await copyFile(newBlob, join(blobDir, newIds[0]!));
    await unpackEquals(join(out, 'u.meta'), blobDir, dictUser);
  });

  it('--fs-version 5 writes a RAFS v5 bootstrap (and layers v5 on v5) that reads back equal to the source', async () => {
    const out = join(work, 'v5');
    await nydusifyOk(['pack', '--source-dir', base, '--name', 'base', '-o', out, '--fs-version', '5']);
    await nydusifyOk(['pack', '--source-dir', layer, '--name', 'layer', '-o', out, '--fs-version', '5', '--parent-bootstrap', join(out, 'base.meta')]);
    const blobs = await outputBlobs(out);
    expect(blobs).toHaveLength(2);
    // Our reader and nydus-image inspect both see a v5 superblock.
    for (const name of ['base.meta', 'layer.meta']) expect(openImage(join(out, name)).version, name).toBe(5);
    const inspect = await nydusImageOk(['inspect', join(out, 'layer.meta')]);
    expect(inspect.stdout.toString()).toMatch(/^RAFS v5 bootstrap, /);
    expect((JSON.parse(await readFile(join(out, 'output.json'), 'utf8')) as { fs_version: string }).fs_version).toBe('5');
    // The base's blob, not yet named by its id (it was neither layered nor pushed), goes beside the layer's.
    await copyFile(join(out, 'base.blob'), join(out, blobs[0]!));
    const alone = join(work, 'v5-base-blobs');
    await mkdir(alone);
    await copyFile(join(out, 'base.blob'), join(alone, blobs[0]!));
    await unpackEquals(join(out, 'base.meta'), alone, base);
    await unpackEquals(join(out, 'layer.meta'), out, merged);
  });

  it('--nydus-image exec\'s that program with upstream\'s argv and makes the same bootstrap and blob', async () => {
    const launcher = join(work, 'nydus-image');
    const argvLog = join(work, 'argv.log');
    await writeFile(launcher, `#!/bin/sh\nprintf '%s\\n' "$*" >> ${argvLog}\nexec ${process.execPath} ${BIN} "$@"\n`);
    await chmod(launcher, 0o755);
    const inproc = join(work, 'inproc');
    const ext = join(work, 'ext');
    for (const [out, extra] of [[inproc, []], [ext, ['--nydus-image', launcher]]] as const) {
      await nydusifyOk(['pack', '--source-dir', base, '--name', 'p', '-o', out, '--compressor', 'lz4_block', '--chunk-size', '0x10000', ...extra]);
      await nydusifyOk(['pack', '--source-dir', layer, '--name', 'c', '-o', out, '--parent-bootstrap', join(out, 'p.meta'), '--chunk-size', '0x10000', ...extra]);
    }
    expect((await readFile(argvLog, 'utf8')).trim().split('\n')).toEqual([
      `create --bootstrap ${ext}/p.meta --log-level warn --whiteout-spec oci --output-json ${ext}/output.json --blob ${ext}/p.blob --fs-version 6 --compressor lz4_block --chunk-size 0x10000 ${base}`,
      `create --parent-bootstrap ${ext}/p.meta --bootstrap ${ext}/c.meta --log-level warn --whiteout-spec oci --output-json ${ext}/output.json --blob ${ext}/c.blob --fs-version 6 --compressor zstd --chunk-size 0x10000 ${layer}`,
    ]);
    expect((await readdir(ext)).sort()).toEqual((await readdir(inproc)).sort());
    for (const f of await readdir(inproc)) {
      if (f === 'output.json') continue;
      expect((await readFile(join(ext, f))).equals(await readFile(join(inproc, f))), f).toBe(true);
    }
  });
});

describe('nydusify pack refuses bad flags in one line, writing nothing', () => {
  const s3 = (cfg: object) => ['--backend-push', '--backend-type', 's3', '--backend-config', JSON.stringify(cfg)];
  const cases: Array<[label: string, args: () => string[], message: RegExp]> = [
    ['no --source-dir', () => ['--name', 'n'], /source-dir/],
    ['no --name', () => ['--source-dir', base], /name/],
    ['a missing source', () => ['--source-dir', join(work, 'nope'), '--name', 'n'], /failed to check source directory: .*nope: no such file/],
    ['a file as source', () => ['--source-dir', join(base, 'etc/conf'), '--name', 'n'], /is not a directory/],
    ['a name with a slash', () => ['--source-dir', base, '--name', 'a/b'], /invalid --name "a\/b"/],
    ['--compact without a backend configuration (upstream needs one)', () => ['--source-dir', base, '--name', 'n', '--compact'], /backend configuration is empty/],
    ['--fs-version 7', () => ['--source-dir', base, '--name', 'n', '--fs-version', '7'], /--fs-version: must be 5 or 6/],
    ['--compressor gzip', () => ['--source-dir', base, '--name', 'n', '--compressor', 'gzip'], /--compressor/],
    ['--chunk-size 0x3000', () => ['--source-dir', base, '--name', 'n', '--chunk-size', '0x3000'], /chunk size 0x3000/],
    ['--chunk-dict of another type', () => ['--source-dir', base, '--name', 'n', '--chunk-dict', 'db=/x'], /chunk-dict type "db"/],
    ['--chunk-dict without type', () => ['--source-dir', base, '--name', 'n', '--chunk-dict', '/x'], /expected bootstrap=PATH/],
    ['a parent that is no bootstrap', () => ['--source-dir', base, '--name', 'n', '--parent-bootstrap', join(base, 'etc/conf')], /parent bootstrap: /],
    ['a missing --nydus-image', () => ['--source-dir', base, '--name', 'n', '--nydus-image', join(work, 'no-such-builder')], /cannot run it: ENOENT/],
    ['--backend-push without config', () => ['--source-dir', base, '--name', 'n', '--backend-push'], /backend configuration is empty/],
    ['--backend-type localfs', () => ['--source-dir', base, '--name', 'n', '--backend-push', '--backend-type', 'localfs', '--backend-config', '{"dir":"/tmp"}'], /backend type "localfs".*oss or s3/],
    ['a config that is no JSON', () => ['--source-dir', base, '--name', 'n', '--backend-push', '--backend-config', '{"endpoint":'], /backend-config/],
    ['an OSS config without endpoint', () => ['--source-dir', base, '--name', 'n', ...s3({}).slice(0, 1), '--backend-config', '{"bucket_name":"b"}'], /endpoint/],
    ['an S3 config without region', () => ['--source-dir', base, '--name', 'n', ...s3({ bucket_name: 'b' })], /region/],
    ['an S3 config without bucket_name', () => ['--source-dir', base, '--name', 'n', ...s3({ region: 'r' })], /bucket_name/],
    ['a number as bucket_name', () => ['--source-dir', base, '--name', 'n', ...s3({ region: 'r', bucket_name: 7 })], /bucket_name.*string/],
    ['both config flags', () => ['--source-dir', base, '--name', 'n', '--backend-push', '--backend-config', '{}', '--backend-config-file', 'x.json'], /--backend-config (conflicts|cannot be used) with --backend-config-file/],
    ['a missing config file', () => ['--source-dir', base, '--name', 'n', '--backend-push', '--backend-config-file', join(work, 'none.json')], /none\.json/],
  ];
  for (const [label, args, message] of cases) {
    it(label, async () => {
      const out = join(work, 'refused', label.replace(/\W+/g, '-'));
      const r = await nydusify(['pack', ...args(), '-o', out]);
      expect(r.code, r.stderr.toString()).not.toBe(0);
      expect(r.code).not.toBe(70);
      expect(errorLine(r)).toMatch(message);
      expect(existsSync(out), `${out} was left behind`).toBe(false);
    });
  }
});
