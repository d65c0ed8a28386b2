// nydusify convert with a storage backend (issue 16; spec §1.3-1.4, §4.2): the blobs go to S3 or
// localfs, the manifest lists the bootstrap layer only, and nydusify check reads the blobs from
// that backend. Also nydus-image create / check / unpack with the registry backend. Every server
// is a real process on 127.0.0.1: docker-registry and s3rver.
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MEDIA } from '../../src/oci/media-types.js';
import { sha256Of } from '../../src/oci/digest.js';
import { buildLayerDir, tarLayer, writeOciLayout } from '../helpers/oci.js';
import { registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { hasTool, runOk, type RunResult } from '../helpers/tools.js';
import { startS3, type S3Server } from '../helpers/s3.js';
import { prng } from '../helpers/tree.js';
import { loggedBlobId, nydusImage, nydusImageOk, nydusify as runNydusify, nydusifyOk, nydusifyWorkDir, skopeoRaw } from './cli-runner.js';

const missing = registryMissing() ?? (hasTool('skopeo') ? undefined : 'skopeo is not on PATH');
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/cli/nydusify-backend.cli.test.ts\n`);

let work = '';
let reg: TestRegistry;
let s3: S3Server;
let env: NodeJS.ProcessEnv;

const nydusify = (args: readonly string[]): Promise<RunResult> => runNydusify(args, { cwd: work, env });
const ok = (args: readonly string[]): Promise<RunResult> => nydusifyOk(args, { cwd: work, env });
const raw = skopeoRaw;

beforeAll(async () => {
  if (missing) return;
  ({ work, env } = await nydusifyWorkDir('nydusify-backend-'));
  [reg, s3] = await Promise.all([startRegistry(), startS3()]);
  await buildLayerDir(join(work, 'l0'), [
    { kind: 'dir', path: '.', mtime: 1_600_000_000 },
    { kind: 'file', path: 'hello', data: 'hello\n', mtime: 1_600_000_000 },
    { kind: 'file', path: 'big', data: prng(3, 3 << 20), mtime: 1_600_000_000 },
  ]);
  await buildLayerDir(join(work, 'l1'), [
    { kind: 'dir', path: '.', mtime: 1_600_000_000 },
    { kind: 'file', path: 'second', data: prng(4, 200_000), mtime: 1_600_000_000 },
    { kind: 'symlink', path: 'link', target: 'hello', mtime: 1_600_000_000 },
  ]);
  const layers = [];
  for (const l of ['l0', 'l1']) {
    const tar = await tarLayer(join(work, l), join(work, `${l}.tar`));
    layers.push({ data: gzipSync(tar), mediaType: MEDIA.OCI_LAYER_GZIP, diffId: sha256Of(tar) });
  }
  await writeOciLayout(join(work, 'oci'), 'v1', layers);
  await runOk('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${join(work, 'oci')}:v1`, `docker://${reg.host}/app/src:v1`]);
}, 300_000);

afterAll(async () => {
  await Promise.allSettled([reg?.stop(), s3?.stop()]);
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(missing)('nydusify convert --backend-type', () => {
  it('s3: blobs in the bucket, the manifest and config carry the bootstrap only; check reads the blobs back from S3', async () => {
    const conf = JSON.stringify(s3.config({ object_prefix: 'nydus/' }));
    const target = `${reg.host}/app/dst:s3`;
    await ok(['convert', '--source', `${reg.host}/app/src:v1`, '--target', target, '--plain-http', '--backend-type', 's3', '--backend-config', conf]);
    const m = await raw(target);
    expect(m.layers).toHaveLength(1);
    const boot = m.layers[0];
    expect(boot.annotations['containerd.io/snapshot/nydus-bootstrap']).toBe('true');
    const c = await raw(target, true);
    expect(c.rootfs.diff_ids).toEqual([boot.annotations['containerd.io/uncompressed']]);
    expect(c.history).toEqual([{ created_by: 'Nydus Converter', comment: 'Nydus Bootstrap Layer' }]);
    const keys = (await s3.keys()).filter((k) => k.startsWith('nydus/'));
    expect(keys).toHaveLength(2);
    expect(keys.every((k) => /^nydus\/[0-9a-f]{64}$/.test(k))).toBe(true);
    expect(await s3.uploads()).toEqual([]);
    // The registry holds no blob layer: only the bootstrap and config.
    for (const k of keys) {
      const head = await fetch(`http://${reg.host}/v2/app/dst/blobs/sha256:${k.slice(6)}`, { method: 'HEAD' });
      expect(head.status).toBe(404);
    }

    await ok(['check', '--source', `${reg.host}/app/src:v1`, '--target', target, '--plain-http', '--work-dir', join(work, 'chk'),
      '--target-backend-type', 's3', '--target-backend-config', conf]);
    // Without the backend its blobs cannot be read: the check fails.
    const blind = await nydusify(['check', '--source', `${reg.host}/app/src:v1`, '--target', target, '--plain-http', '--work-dir', join(work, 'chk2')]);
    expect(blind.code).not.toBe(0);
    // A blob corrupted in the bucket is found.
    const { PutObjectCommand } = await import('@aws-sdk/client-s3');
    const big = keys.map(async (k) => ({ k, data: await s3.get(k) }));
    const biggest = (await Promise.all(big)).sort((a, b) => b.data.length - a.data.length)[0]!;
    const bad = Buffer.from(biggest.data);
    bad[10] ^= 0x55;
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: biggest.k, Body: bad }));
    const caught = await nydusify(['check', '--source', `${reg.host}/app/src:v1`, '--target', target, '--plain-http', '--work-dir', join(work, 'chk3'),
      '--target-backend-type', 's3', '--target-backend-config', conf]);
    expect(caught.code).not.toBe(0);
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: biggest.k, Body: biggest.data }));
  }, 300_000);

  it('oss (ali-oss against the loopback server checking OSS signatures): convert, then check through OSS; pack pushes there too', async () => {
    const oss = await startS3({ bucket: 'nydus-oss', mode: 'oss' });
    try {
      const base = { endpoint: `127.0.0.1:${oss.port}`, scheme: 'http', bucket_name: 'nydus-oss', access_key_id: 'S3RVER', access_key_secret: 'S3RVER' };
      const conf = JSON.stringify({ ...base, object_prefix: 'img/' });
      const target = `${reg.host}/app/dst:oss`;
      await ok(['convert', '--source', `${reg.host}/app/src:v1`, '--target', target, '--plain-http', '--backend-type', 'oss', '--backend-config', conf]);
      expect((await raw(target)).layers).toHaveLength(1);
      expect((await oss.keys()).filter((k) => /^img\/[0-9a-f]{64}$/.test(k))).toHaveLength(2);
      await ok(['check', '--source', `${reg.host}/app/src:v1`, '--target', target, '--plain-http', '--work-dir', join(work, 'chk-oss'),
        '--target-backend-type', 'oss', '--target-backend-config', conf]);
      const packed = await ok(['pack', '--source-dir', join(work, 'l1'), '-o', join(work, 'pack-oss'), '--name', 'l1', '--backend-push', '--backend-type', 'oss',
        '--backend-config', JSON.stringify({ ...base, meta_prefix: 'm/', blob_prefix: 'b/' })]);
      const id = /push blob ([0-9a-f]{64})/.exec(packed.stderr.toString())![1]!;
      expect(await oss.keys()).toEqual(expect.arrayContaining([`b/${id}`, 'm/l1']));
      expect(await oss.uploads()).toEqual([]);
      expect(oss.ossSignaturesOk).toBeGreaterThan(10);
    } finally {
      await oss.stop();
    }
  }, 300_000);

  it('localfs: blobs as <dir>/<hex>; check reads them there', async () => {
    const dir = join(work, 'lfs');
    await mkdir(dir);
    const cfgFile = join(work, 'lfs.json');
    await writeFile(cfgFile, JSON.stringify({ dir }));
    const target = `${reg.host}/app/dst:localfs`;
    await ok(['convert', '--source', `${reg.host}/app/src:v1`, '--target', target, '--plain-http', '--backend-type', 'localfs', '--backend-config-file', cfgFile]);
    expect((await readdir(dir)).filter((f) => /^[0-9a-f]{64}$/.test(f))).toHaveLength(2);
    expect((await raw(target)).layers).toHaveLength(1);
    await ok(['check', '--source', `${reg.host}/app/src:v1`, '--target', target, '--plain-http', '--work-dir', join(work, 'chk4'),
      '--target-backend-type', 'localfs', '--target-backend-config-file', cfgFile]);
  }, 300_000);

  it('refuses a bad backend config in one line before touching a registry', async () => {
    const r = await nydusify(['convert', '--source', `${reg.host}/app/src:v1`, '--target', `${reg.host}/app/dst:never`, '--plain-http', '--backend-type', 's3', '--backend-config', '{"bucket_name":"b"}']);
    expect(r.code).toBe(2);
    expect(r.stderr.toString().trim()).toBe('Error: backend config (s3): missing required field "region"');
    const none = await fetch(`http://${reg.host}/v2/app/dst/manifests/never`, { method: 'HEAD' });
    expect(none.status).toBe(404);
  }, 60_000);
});

describe.skipIf(missing)('nydus-image with the registry backend', () => {
  it('create puts the blob in the repository by digest; check and unpack read it back by ranged gets', async () => {
    const src = join(work, 'l0');
    const conf = JSON.stringify({ host: reg.host, repo: 'blobs/store', scheme: 'http' });
    const boot = join(work, 'reg.boot');
    const r = await nydusImageOk(['create', '-B', boot, '--backend-type', 'registry', '--backend-config', conf, src]);
    const id = loggedBlobId(r.stderr);
    const head = await fetch(`http://${reg.host}/v2/blobs/store/blobs/sha256:${id}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    await nydusImageOk(['check', boot, '--backend-type', 'registry', '--backend-config', conf]);
    const local = join(work, 'reg-local');
    await mkdir(local);
    await nydusImageOk(['create', '-B', join(local, 'boot'), '-b', join(local, 'blob'), src]);
    await nydusImageOk(['unpack', join(local, 'boot'), '--blob', join(local, 'blob'), '--output', join(local, 'a.tar')]);
    await nydusImageOk(['unpack', boot, '--backend-type', 'registry', '--backend-config', conf, '--output', join(local, 'b.tar')]);
    expect((await readFile(join(local, 'b.tar'))).equals(await readFile(join(local, 'a.tar')))).toBe(true);
    // With blob-toc the blob id is not the file's sha256: the registry cannot hold it by id.
    const toc = await nydusImage(['create', '-B', join(work, 'toc.boot'), '--features', 'blob-toc', '--backend-type', 'registry', '--backend-config', conf, src]);
    expect(toc.code).toBe(2);
    expect(toc.stderr.toString().trim().split('\n')).toHaveLength(1);
    expect(toc.stderr.toString()).toMatch(/not its blob id/);
  }, 120_000);
});
