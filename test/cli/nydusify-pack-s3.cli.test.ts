// `nydusify pack --backend-push --backend-type s3` against a real S3 server on 127.0.0.1 (s3rver in
// its own process, test/helpers/s3.ts) driven by the real AWS SDK: the bootstrap lands at
// meta_prefix + <name> and the blob at blob_prefix + <id>; the objects fetched back are the local
// artifacts, and nydus-image reads the image back from the bucket (check, unpack by ranged gets)
// equal to the source. A layer re-uploads its parent's blobs; a chunk dict keeps the new blob
// small; --nydus-image pushes the same objects; a dead server or a bad config ends in one line.
// OSS: ali-oss against s3rver's OSS mode (signatures checked), the same layout read back.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { prng, writeSourceDir } from '../helpers/tree.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy } from '../helpers/proxy.js';
import { startS3, type S3Server } from '../helpers/s3.js';
import { BIN, REPO, nydusImageOk } from './cli-runner.js';
import { MiB, errorLine, makePackSources, nydusifyIn, outputBlobs, untarEquals } from './pack-fixture.js';

const NYDUSIFY = join(REPO, 'bin', 'nydusify.js');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let work = '';
let s3: S3Server;
let nydusify: ReturnType<typeof nydusifyIn>['nydusify'];
let nydusifyOk: ReturnType<typeof nydusifyIn>['ok'];

/** Pack's config for the test server: blobs under `${p}blobs/`, bootstraps under `${p}meta/`. */
const packConfig = (p: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ ...s3.config(), meta_prefix: `${p}meta/`, blob_prefix: `${p}blobs/`, ...extra });
const push = (p: string) => ['--backend-push', '--backend-type', 's3', '--backend-config', packConfig(p)];

/**
 * The bootstrap fetched from the bucket, then read back by nydus-image check and unpack with the
 * runtime config `read` (object_prefix = the blobs' prefix; ranged gets) → GNU tar → `expected`.
 */
async function readBackEquals(server: S3Server, type: 's3' | 'oss', read: object, metaKey: string, expected: string): Promise<void> {
  const x = await mkdtemp(join(work, 'x-'));
  const boot = join(x, 'boot');
  await writeFile(boot, await server.get(metaKey));
  const backend = ['--backend-type', type, '--backend-config', JSON.stringify(read)];
  await nydusImageOk(['check', '--bootstrap', boot, ...backend]);
  await nydusImageOk(['unpack', '--bootstrap', boot, ...backend, '--output', join(x, 'out.tar')]);
  await untarEquals(join(x, 'out.tar'), expected);
}
const readS3 = (p: string, name: string, expected: string) => readBackEquals(s3, 's3', s3.config({ object_prefix: `${p}blobs/` }), `${p}meta/${name}`, expected);

const keysUnder = async (p: string) => (await s3.keys()).filter((k) => k.startsWith(p)).sort();

let base = '';
let layer = '';
let merged = '';
let dictUser = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydusify-pack-s3-'));
  s3 = await startS3();
  ({ base, layer, merged, dictUser } = await makePackSources(work));
  ({ nydusify, ok: nydusifyOk } = nydusifyIn(work));
}, 120_000);

afterAll(async () => {
  await s3?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('nydusify pack --backend-push to S3', () => {
  it('puts the blob at blob_prefix + <id> and the bootstrap at meta_prefix + <name>; the bucket reads back equal', async () => {
    const out = join(work, 'plain');
    const r = await nydusifyOk(['pack', '--source-dir', base, '--name', 'app', '-o', out, ...push('plain/')]);
    const [id] = await outputBlobs(out);
    // Pushed: the blob is renamed to its sha256 locally too.
    expect(existsSync(join(out, 'app.blob'))).toBe(false);
    expect(await keysUnder('plain/')).toEqual([`plain/blobs/${id}`, 'plain/meta/app']);
    expect(sha256(await s3.get(`plain/blobs/${id}`))).toBe(id);
    expect((await s3.get(`plain/blobs/${id}`)).equals(await readFile(join(out, id!)))).toBe(true);
    expect((await s3.get('plain/meta/app')).equals(await readFile(join(out, 'app.meta')))).toBe(true);
    expect(r.stderr.toString()).toContain(`successfully built Nydus image (bootstrap:'s3://${s3.bucket}/plain/meta/app', blob:'s3://${s3.bucket}/plain/blobs/${id}')`);
    expect(await s3.uploads()).toEqual([]);
    await readS3('plain/', 'app', base);
  });

  it('a layer on --parent-bootstrap uploads the parent\'s blob too (from <out>/<id>), then only skips it', async () => {
    const out = join(work, 'layered');
    await nydusifyOk(['pack', '--source-dir', base, '--name', 'base', '-o', out, ...push('one/')]);
    const [parentId] = await outputBlobs(out);
    // The layer goes to another prefix: the parent's blob is not there yet and is uploaded with it.
    const r = await nydusifyOk(['pack', '--source-dir', layer, '--name', 'layer', '-o', out, '--parent-bootstrap', join(out, 'base.meta'), ...push('two/')]);
    const blobs = await outputBlobs(out);
    expect(blobs[0]).toBe(parentId);
    const newId = blobs[1]!;
    expect(await keysUnder('two/')).toEqual([`two/blobs/${parentId}`, `two/blobs/${newId}`, 'two/meta/layer'].sort());
    expect(r.stderr.toString()).toContain(`push blob ${parentId}`);
    const newSize = (await s3.get(`two/blobs/${newId}`)).length;
    expect(newSize).toBeGreaterThan(1 * MiB);
    expect(newSize).toBeLessThan(1.5 * MiB);
    await readS3('two/', 'layer', merged);
    // Again to the same place: both blobs are there and kept, the bootstrap is replaced.
    const again = await nydusifyOk(['pack', '--source-dir', layer, '--name', 'layer', '-o', out, '--parent-bootstrap', join(out, 'base.meta'), ...push('two/')]);
    expect(again.stderr.toString()).toContain(`skip upload because blob exists: ${parentId}`);
    expect(again.stderr.toString()).toContain(`skip upload because blob exists: ${newId}`);
    expect(again.stderr.toString()).toContain('push bootstrap layer');
  });

  it('a parent blob neither in the bucket nor in the output dir: one line, and no bootstrap pushed', async () => {
    const parentOut = join(work, 'elsewhere');
    await nydusifyOk(['pack', '--source-dir', base, '--name', 'base', '-o', parentOut]);
    const [parentId] = await outputBlobs(parentOut);
    const out = join(work, 'orphan');
    const r = await nydusify(['pack', '--source-dir', layer, '--name', 'layer', '-o', out, '--parent-bootstrap', join(parentOut, 'base.meta'), ...push('orphan/')]);
    expect(r.code).toBe(1);
    expect(errorLine(r)).toBe(`Error: blob ${parentId} of the parent bootstrap is neither in the backend nor at ${join(out, parentId!)}`);
    expect(await keysUnder('orphan/meta/')).toEqual([]);
  });

  it('with --chunk-dict the dict\'s blob is kept and the new blob holds only what the dict lacks', async () => {
    const dictOut = join(work, 'dict');
    await nydusifyOk(['pack', '--source-dir', base, '--name', 'dict', '-o', dictOut, ...push('dict/')]);
    const [dictId] = await outputBlobs(dictOut);
    const plainOut = join(work, 'dict-none');
    await nydusifyOk(['pack', '--source-dir', dictUser, '--name', 'u', '-o', plainOut, ...push('nodict/')]);
    const [plainId] = await outputBlobs(plainOut);
    const out = join(work, 'dict-user-out');
    const r = await nydusifyOk(['pack', '--source-dir', dictUser, '--name', 'u', '-o', out, '--chunk-dict', `bootstrap=${join(dictOut, 'dict.meta')}`, ...push('dict/')]);
    const blobs = await outputBlobs(out);
    expect(blobs).toContain(dictId);
    const newId = blobs.find((b) => b !== dictId)!;
    expect(r.stderr.toString()).toContain(`push blob ${newId}`);
    // The dict's blob is not the new blob: it is not pushed again.
    expect(r.stderr.toString()).not.toContain(`push blob ${dictId}`);
    expect(await keysUnder('dict/')).toEqual([`dict/blobs/${dictId}`, `dict/blobs/${newId}`, 'dict/meta/dict', 'dict/meta/u'].sort());
    const withDict = (await s3.get(`dict/blobs/${newId}`)).length;
    const without = (await s3.get(`nodict/blobs/${plainId}`)).length;
    expect(withDict).toBeLessThan(without - 3 * MiB);
    await readS3('dict/', 'u', dictUser);
  });

  it('--nydus-image pushes the same objects as the in-process build', async () => {
    const launcher = join(work, 'nydus-image');
    await writeFile(launcher, `#!/bin/sh\nexec ${process.execPath} ${BIN} "$@"\n`);
    await chmod(launcher, 0o755);
    await nydusifyOk(['pack', '--source-dir', base, '--name', 'app', '-o', join(work, 'in'), ...push('in/')]);
    await nydusifyOk(['pack', '--source-dir', base, '--name', 'app', '-o', join(work, 'ext'), '--nydus-image', launcher, ...push('ext/')]);
    const inKeys = await keysUnder('in/');
    expect(inKeys).toHaveLength(2);
    expect((await keysUnder('ext/')).map((k) => k.slice('ext/'.length))).toEqual(inKeys.map((k) => k.slice('in/'.length)));
    for (const k of inKeys) expect((await s3.get(`ext/${k.slice('in/'.length)}`)).equals(await s3.get(k)), k).toBe(true);
  });

  it('bad configs and an unreachable server end in one line, non-zero', async () => {
    const bad: Array<[string, RegExp]> = [
      [packConfig('bad/', { object_prefix: 'x/' }), /"meta_prefix" and "blob_prefix", not "object_prefix"/],
      [packConfig('bad/', { endpoint: `http://127.0.0.1:${s3.port}` }), /"endpoint" must not carry a scheme/],
      [packConfig('bad/', { region: 5 }), /"region" must be a string/],
      [packConfig('bad/', { bucket_nam: 'typo' }), /unknown field "bucket_nam"/],
    ];
    for (const [cfg, message] of bad) {
      const out = join(work, 'bad-config');
      const r = await nydusify(['pack', '--source-dir', base, '--name', 'n', '-o', out, '--backend-push', '--backend-type', 's3', '--backend-config', cfg]);
      expect(r.code, cfg).toBe(2);
      expect(errorLine(r)).toMatch(message);
      expect(existsSync(out)).toBe(false);
    }
    const cfgFile = join(work, 'dead.json');
    await writeFile(cfgFile, JSON.stringify({ ...s3.config(), endpoint: '127.0.0.1:1', blob_prefix: 'dead/' }));
    const r = await nydusify(['pack', '--source-dir', base, '--name', 'n', '-o', join(work, 'dead'), '--backend-push', '--backend-type', 's3', '--backend-config-file', cfgFile]);
    expect(r.code).toBe(1);
    expect(errorLine(r)).toMatch(/s3:\/\/.*dead\/[0-9a-f]{64}: .*failed/);
  });

  it('the server killed before the push: one line; restarted, a rerun completes', async () => {
    const out = join(work, 'restart');
    s3.kill();
    const r = await nydusify(['pack', '--source-dir', layer, '--name', 'l', '-o', out, ...push('restart/')]);
    expect(r.code).toBe(1);
    expect(errorLine(r)).toMatch(/^Error: s3:\/\//);
    await s3.restart();
    expect(await keysUnder('restart/')).toEqual([]);
    await nydusifyOk(['pack', '--source-dir', layer, '--name', 'l', '-o', out, ...push('restart/')]);
    expect(await keysUnder('restart/meta/')).toEqual(['restart/meta/l']);
    const [id] = await outputBlobs(out);
    expect(sha256(await s3.get(`restart/blobs/${id}`))).toBe(id);
    expect((await stat(join(out, id!))).size).toBe((await s3.get(`restart/blobs/${id}`)).length);
  });
});

describe('nydusify pack --backend-push to OSS', () => {
  // ali-oss against the same s3rver in its OSS mode: every OSS-signed request is checked against
  // Alibaba's documented V1 signature formula (test/helpers/oss-sign.mjs) before s3rver serves it.
  let oss: S3Server;
  beforeAll(async () => {
    oss = await startS3({ mode: 'oss', bucket: 'nydus-oss' });
  });
  afterAll(async () => {
    await oss?.stop();
  });
  const ossConfig = (extra: object) => ({ endpoint: `http://127.0.0.1:${oss.port}`, bucket_name: oss.bucket, access_key_id: 'S3RVER', access_key_secret: 'S3RVER', ...extra });

  it('a layer and its parent go to blob_prefix, the bootstrap to meta_prefix; the bucket reads back equal', async () => {
    const out = join(work, 'oss-out');
    await nydusifyOk(['pack', '--source-dir', base, '--name', 'base', '-o', out]);
    // The parent was not pushed: its blob is put beside the layer's under its id, as a pushed one would be.
    const [parentId] = await outputBlobs(out);
    await rename(join(out, 'base.blob'), join(out, parentId!));
    const cfg = JSON.stringify(ossConfig({ meta_prefix: 'o/meta/', blob_prefix: 'o/blobs/' }));
    // --backend-type is left out: oss is the default.
    const r = await nydusifyOk(['pack', '--source-dir', layer, '--name', 'layer', '-o', out, '--parent-bootstrap', join(out, 'base.meta'), '--backend-push', '--backend-config', cfg]);
    const blobs = await outputBlobs(out);
    expect((await oss.keys()).sort()).toEqual([...blobs.map((b) => `o/blobs/${b}`), 'o/meta/layer'].sort());
    for (const id of blobs) expect(sha256(await oss.get(`o/blobs/${id}`))).toBe(id);
    expect((await oss.get('o/meta/layer')).equals(await readFile(join(out, 'layer.meta')))).toBe(true);
    expect(r.stderr.toString()).toContain(`successfully built Nydus image (bootstrap:'oss://${oss.bucket}/o/meta/layer', blob:'oss://${oss.bucket}/o/blobs/${blobs[1]}')`);
    expect(oss.ossSignaturesOk).toBeGreaterThan(0);
    await readBackEquals(oss, 'oss', ossConfig({ object_prefix: 'o/blobs/' }), 'o/meta/layer', merged);
  });
});

describe('nydusify pack --backend-push: the S3 server killed in the middle of the blob\'s upload', () => {
  it('ends in one line with no blob and no bootstrap object, the upload aborted once the server is back; a rerun completes', async () => {
    const src = join(work, 'big-src');
    // Incompressible: the blob is about 48 MiB, three 16 MiB parts.
    await writeSourceDir(src, { 'big.bin': prng(9, 48 * MiB) }, 1_600_000_000);
    const out = join(work, 'killed');
    const uploads = join(s3.dir, s3.bucket, '._S3rver_uploads');
    const running = nydusify(['pack', '--source-dir', src, '--name', 'big', '-o', out, ...push('killed/')]);
    // The kill comes once the server receives the first part (the build before it takes a while):
    // pack has the upload's id then, so it can abort it (an upload killed while being created is
    // one no client heard of).
    let ended = false;
    void running.then(() => (ended = true));
    const hasPart = async (id: string) => (await readdir(join(uploads, id)).catch(() => [] as string[])).some((f) => /^\d+$/.test(f));
    const started = async () => existsSync(uploads) && (await Promise.all((await readdir(uploads)).map(hasPart))).some(Boolean);
    while (!ended && !(await started())) await new Promise((r) => setTimeout(r, 5));
    if (ended) throw new Error(`pack ended before any multipart upload began: ${(await running).stderr.toString()}`);
    s3.kill();
    // Back a little later, while pack still tries to abort its upload.
    const restarted = new Promise((res) => setTimeout(res, 2500)).then(() => s3.restart());
    const r = await running;
    await restarted;
    const [id] = await outputBlobs(out);
    if (r.code === 0) throw new Error('the upload finished before the server was killed: nothing was tested');
    expect(r.code).toBe(1);
    expect(errorLine(r)).toMatch(new RegExp(`^Error: s3://${s3.bucket}/killed/blobs/${id}: `));
    expect(await keysUnder('killed/')).toEqual([]);
    expect(await s3.uploads()).toEqual([]);
    await nydusifyOk(['pack', '--source-dir', src, '--name', 'big', '-o', out, ...push('killed/')]);
    expect(await keysUnder('killed/')).toEqual([`killed/blobs/${id}`, 'killed/meta/big']);
    expect(sha256(await s3.get(`killed/blobs/${id}`))).toBe(id);
  });

  it('SIGINT during the blob\'s upload: exits by the signal, the multipart upload aborted, no object left', async () => {
    const src = join(work, 'intr-src');
    // Incompressible: the blob is about 40 MiB, three parts; the interrupt comes with the second.
    await writeSourceDir(src, { 'big.bin': prng(11, 40 * MiB) }, 1_600_000_000);
    let child: ChildProcess | undefined;
    let interrupted = false;
    const proxy = await startFaultProxy(`127.0.0.1:${s3.port}`, (q) => {
      if (!interrupted && q.method === 'PUT' && /[?&]partNumber=2\b/.test(q.url)) {
        interrupted = true;
        child!.kill('SIGINT');
      }
      return 'forward';
    });
    try {
      const config = JSON.stringify({ ...s3.config(), endpoint: proxy.host, meta_prefix: 'intr/meta/', blob_prefix: 'intr/blobs/' });
      child = spawn(process.execPath, [NYDUSIFY, 'pack', '--source-dir', src, '--name', 'big', '-o', join(work, 'intr'), '--backend-push', '--backend-type', 's3', '--backend-config', config], {
        cwd: work, env: { PATH: process.env.PATH, HOME: work }, stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
      const code = await new Promise<number | null>((r) => child!.once('exit', (c, sig) => r(sig === 'SIGINT' ? 130 : c)));
      expect(interrupted, err).toBe(true);
      expect(code).toBe(130);
      expect(err).toContain('interrupted by SIGINT');
      expect(await s3.uploads()).toEqual([]);
      expect(await keysUnder('intr/')).toEqual([]);
      // The abort went to the server (not a server that never saw the upload).
      expect(proxy.seen.some((q) => q.method === 'DELETE' && /uploadId=/.test(q.url))).toBe(true);
    } finally {
      child?.kill('SIGKILL');
      await proxy.stop();
    }
  }, 120_000);
});

