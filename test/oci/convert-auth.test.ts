// Auth and TLS through `convert` (issue 13): a small image on an anonymous registry converted to a
// target with htpasswd basic auth and to one with bearer tokens from an issuer started here (the
// registry checks the tokens itself), the credentials coming from a Docker config.json in a
// temporary $DOCKER_CONFIG; wrong credentials make bin/nydusify.js exit non-zero with one stderr
// line naming the registry and 401, and no tag is written; a self-signed TLS target is refused
// without --target-insecure (one line) and works with it.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convert } from '../../src/oci/convert.js';
import { sha256Of, type Digest } from '../../src/oci/digest.js';
import { MEDIA } from '../../src/oci/media-types.js';
import { RegistryClient } from '../../src/oci/registry.js';
import { REPO } from '../cli/cli-runner.js';
import { pushImage, type OciLayer } from '../helpers/oci.js';
import { caught, registryMissing, selfSignedCert, startRegistry, startTokenIssuer, type TestRegistry, type TokenIssuer } from '../helpers/registry.js';
import { hasTool, run } from '../helpers/tools.js';
import { prng } from '../helpers/tree.js';

const missing = registryMissing() ?? (hasTool('openssl') ? undefined : 'openssl is not installed (TLS and token signing certificates)');
if (missing) process.stderr.write(`\n!!! SKIPPED (${missing}): test/oci/convert-auth.test.ts\n`);

const NYDUSIFY = join(REPO, 'bin', 'nydusify.js');
const MTIME = new Date(1_600_000_000_000);

/** A gzip tar layer made in memory: a directory, a file of `size` bytes and a symlink. */
async function layerTar(seed: number, size: number): Promise<OciLayer> {
  const pack = tar.pack();
  const parts: Buffer[] = [];
  pack.on('data', (c) => parts.push(c as Buffer));
  const done = new Promise<void>((r) => pack.on('end', () => r()));
  pack.entry({ name: `l${seed}/`, type: 'directory', mode: 0o755, mtime: MTIME });
  pack.entry({ name: `l${seed}/data`, mode: 0o644, mtime: MTIME }, prng(seed, size));
  pack.entry({ name: `l${seed}/link`, type: 'symlink', linkname: 'data', mtime: MTIME });
  pack.finalize();
  await done;
  const t = Buffer.concat(parts);
  return { data: gzipSync(t, { level: 1 }), mediaType: MEDIA.OCI_LAYER_GZIP, diffId: sha256Of(t) };
}

/** Pushes a two-layer OCI image as `repo:tag` through `client`. */
async function pushSmallImage(client: RegistryClient, repo: string, tag: string): Promise<void> {
  await pushImage(client, repo, tag, [await layerTar(1, 300_000), await layerTar(2, 50_000)]);
}

/** A Docker config dir whose config.json gives `user:password` for `host`. */
async function dockerConfig(dir: string, host: string, user: string, password: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } } }));
  return dir;
}

/** The converted target has the source's two blob layers plus the bootstrap layer, all present. */
async function expectConverted(client: RegistryClient, repo: string, tag: string): Promise<void> {
  const m = await client.getManifest(repo, tag);
  const layers = (JSON.parse(m.bytes.toString()) as { layers: Array<{ digest: Digest; size: number; annotations?: Record<string, string> }> }).layers;
  expect(layers).toHaveLength(3);
  expect(layers.at(-1)!.annotations?.['containerd.io/snapshot/nydus-bootstrap']).toBe('true');
  for (const l of layers) expect(await client.headBlob(repo, l.digest)).toBe(l.size);
}

let work = '';
let source: TestRegistry;

beforeAll(async () => {
  if (missing) return;
  work = await mkdtemp(join(tmpdir(), 'nydus-convert-auth-'));
  source = await startRegistry();
  const c = new RegistryClient(source.host, { plainHttp: true, credentials: null });
  await pushSmallImage(c, 'app', 'v1');
  await c.close();
}, 60_000);

afterAll(async () => {
  await source?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(missing)('convert to a target with htpasswd basic auth', () => {
  let target: TestRegistry;
  beforeAll(async () => {
    target = await startRegistry({ auth: { htpasswd: { alice: 'wonderland' } } });
  }, 30_000);
  afterAll(async () => {
    await target?.stop();
  });

  it('converts with the credentials of the Docker config', async () => {
    const cfg = await dockerConfig(join(work, 'basic-ok'), target.host, 'alice', 'wonderland');
    const r = await convert({ source: `${source.host}/app:v1`, target: `${target.host}/app:nydus`, plainHttp: true, env: { ...process.env, DOCKER_CONFIG: cfg }, workDir: join(work, 'w-basic') });
    expect(r.manifests[0]!.blobs).toHaveLength(2);
    const check = new RegistryClient(target.host, { plainHttp: true, credentials: { username: 'alice', password: 'wonderland' } });
    try {
      await expectConverted(check, 'app', 'nydus');
    } finally {
      await check.close();
    }
  }, 60_000);

  it('fails in one stderr line naming the registry and 401 with wrong credentials, and writes no tag (CLI)', async () => {
    const cfg = await dockerConfig(join(work, 'basic-bad'), target.host, 'alice', 'wrong');
    const r = await run(process.execPath, [NYDUSIFY, 'convert', '--source', `${source.host}/app:v1`, '--target', `${target.host}/app:bad`, '--plain-http', '--work-dir', join(work, 'w-bad')], {
      cwd: work, env: { ...process.env, DOCKER_CONFIG: cfg }, timeoutMs: 60_000,
    });
    expect(r.code).toBe(1);
    const lines = r.stderr.toString().trim().split('\n');
    process.stderr.write(`\nCLI with wrong credentials: ${lines.join(' | ')}\n`);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(target.host);
    expect(lines[0]).toMatch(/\b401\b/);
    const check = new RegistryClient(target.host, { plainHttp: true, credentials: { username: 'alice', password: 'wonderland' } });
    try {
      expect(await check.headManifest('app', 'bad')).toBeUndefined();
    } finally {
      await check.close();
    }
  }, 60_000);
});

describe.skipIf(missing)('convert to a target with bearer tokens', () => {
  let issuer: TokenIssuer;
  let target: TestRegistry;
  beforeAll(async () => {
    issuer = await startTokenIssuer(work, { bob: 'builder' });
    target = await startRegistry({ auth: { token: issuer } });
  }, 30_000);
  afterAll(async () => {
    await target?.stop();
    await issuer?.stop();
  });

  it('converts with a token the issuer grants for the Docker config credentials', async () => {
    const cfg = await dockerConfig(join(work, 'token-ok'), target.host, 'bob', 'builder');
    await convert({ source: `${source.host}/app:v1`, target: `${target.host}/tok/app:nydus`, plainHttp: true, env: { ...process.env, DOCKER_CONFIG: cfg }, workDir: join(work, 'w-token') });
    expect(issuer.requests.filter((q) => q.user === 'bob').flatMap((q) => q.scopes)).toContain('repository:tok/app:pull,push');
    const check = new RegistryClient(target.host, { plainHttp: true, credentials: { username: 'bob', password: 'builder' } });
    try {
      await expectConverted(check, 'tok/app', 'nydus');
    } finally {
      await check.close();
    }
  }, 60_000);

  it('fails in one line naming the registry and 401 when the token server refuses, and writes no tag', async () => {
    const cfg = await dockerConfig(join(work, 'token-bad'), target.host, 'bob', 'wrong');
    const e = await caught(convert({ source: `${source.host}/app:v1`, target: `${target.host}/tok/app:bad`, plainHttp: true, env: { ...process.env, DOCKER_CONFIG: cfg }, workDir: join(work, 'w-token-bad') }));
    expect(e.message).toContain(target.host);
    expect(e.message).toMatch(/\b401\b/);
    expect(e.exit).toBe(1);
    const check = new RegistryClient(target.host, { plainHttp: true, credentials: { username: 'bob', password: 'builder' } });
    try {
      expect(await check.headManifest('tok/app', 'bad')).toBeUndefined();
    } finally {
      await check.close();
    }
  }, 60_000);
});

describe.skipIf(missing)('convert to a self-signed TLS target', () => {
  let target: TestRegistry;
  let src: RegistryClient;
  beforeAll(async () => {
    const dir = join(work, 'tls');
    await mkdir(dir);
    target = await startRegistry({ tls: await selfSignedCert(dir) });
    // The source lives on the same TLS registry (--plain-http would apply to both ends).
    src = new RegistryClient(target.host, { insecure: true, credentials: null });
    await pushSmallImage(src, 'app', 'v1');
  }, 30_000);
  afterAll(async () => {
    await src?.close();
    await target?.stop();
  });

  it('is refused without --target-insecure (one line, no tag) and works with it', async () => {
    const env = { ...process.env, DOCKER_CONFIG: await dockerConfig(join(work, 'tls-cfg'), 'none.example', 'x', 'y') };
    const base = { source: `${target.host}/app:v1`, sourceInsecure: true, env, pushRetryDelayMs: 10 };
    const e = await caught(convert({ ...base, target: `${target.host}/app:strict`, workDir: join(work, 'w-tls-strict') }));
    expect(e.message).toContain(target.host);
    expect(e.message).toContain('TLS certificate not trusted');
    expect(e.message).toContain('--target-insecure');
    expect(await src.headManifest('app', 'strict')).toBeUndefined();
    await convert({ ...base, target: `${target.host}/app:nydus`, targetInsecure: true, workDir: join(work, 'w-tls') });
    await expectConverted(src, 'app', 'nydus');
  }, 60_000);
});
