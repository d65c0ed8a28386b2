// Storage backends end to end (issue 16), every server a real process on 127.0.0.1: S3 through
// s3rver (test/helpers/s3.ts) driven by the real AWS SDK, OSS through ali-oss against the same
// server checking each request's OSS signature, localfs, and the snapshotter's http-proxy stream
// mode over a unix socket. Faults: the S3 server killed mid-upload, 503s, bad configs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, loggedBlobId, nydusImage, nydusImageOk } from './cli-runner.js';
import { prng } from '../helpers/tree.js';
import { startS3, type S3Server } from '../helpers/s3.js';
import { startFaultProxy } from '../helpers/proxy.js';

const MiB = 1 << 20;
let work = '';
let src = '';
let s3: S3Server;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-backend-cli-'));
  // > 50 MB that does not compress, so the blob takes several 16 MiB parts.
  src = join(work, 'src');
  await mkdir(join(src, 'big'), { recursive: true });
  for (let i = 0; i < 4; i++) await writeFile(join(src, 'big', `r${i}`), prng(100 + i, 14 * MiB));
  await writeFile(join(src, 'small.txt'), 'hello backends\n');
  await mkdir(join(src, 'dir/sub'), { recursive: true });
  await writeFile(join(src, 'dir/sub/f'), prng(7, 300_000));
  s3 = await startS3();
}, 60_000);

afterAll(async () => {
  await s3?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** The one line a failed run printed (and no stdout). */
function oneLine(r: { stdout: Buffer; stderr: Buffer }): string {
  expect(r.stdout.toString()).toBe('');
  const lines = r.stderr.toString().trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

const cfg = (c: Record<string, unknown>) => ['--backend-config', JSON.stringify(c)];

/** The local build of the same source, for comparing: its blob and the tar unpacked from it. */
async function localBuild(name: string): Promise<{ boot: string; blob: string; id: string; tar: Buffer }> {
  const dir = join(work, name);
  await mkdir(dir);
  const boot = join(dir, 'boot');
  const blob = join(dir, 'blob');
  const r = await nydusImageOk(['create', '-B', boot, '-b', blob, src]);
  await nydusImageOk(['unpack', boot, '--blob', blob, '--output', join(dir, 'x.tar')]);
  return { boot, blob, id: loggedBlobId(r.stderr), tar: await readFile(join(dir, 'x.tar')) };
}

let local: Awaited<ReturnType<typeof localBuild>>;

describe('S3 backend', () => {
  it('create streams a > 50 MB blob in several parts; check and unpack read it back by ranged gets, equal to the source', async () => {
    local = await localBuild('local');
    const proxy = await startFaultProxy(`127.0.0.1:${s3.port}`, () => 'forward');
    try {
      const conf = s3.config({ endpoint: proxy.host, object_prefix: 'blobs/' });
      const boot = join(work, 's3.boot');
      const r = await nydusImageOk(['create', '-B', boot, '--backend-type', 's3', ...cfg(conf), src]);
      // The SDK's Node 20 deprecation notice is not ours to print: stderr is the log only.
      expect(r.stderr.toString()).not.toMatch(/NodeVersionSupportWarning/);
      const id = loggedBlobId(r.stderr);
      expect(id).toBe(local.id);
      const parts = proxy.seen.filter((q) => q.method === 'PUT' && /[?&]partNumber=/.test(q.url));
      expect(parts.length).toBeGreaterThanOrEqual(4);
      // Only the blob, under its id: no temporary object, no open upload.
      expect(await s3.keys()).toEqual([`blobs/${id}`]);
      expect(await s3.uploads()).toEqual([]);
      expect((await s3.get(`blobs/${id}`)).equals(await readFile(local.blob))).toBe(true);
      const bootLocal = await readFile(local.boot);
      expect((await readFile(boot)).equals(bootLocal)).toBe(true);

      proxy.seen.length = 0;
      const c = await nydusImageOk(['check', boot, '--backend-type', 's3', ...cfg(conf), '-v']);
      expect(c.stdout.toString()).toContain(id);
      const gets = proxy.seen.filter((q) => q.method === 'GET');
      expect(gets.length).toBeGreaterThan(0);
      expect(gets.every((q) => typeof q.headers.range === 'string' && /^bytes=\d+-\d+$/.test(q.headers.range))).toBe(true);

      const tar = join(work, 's3.tar');
      await nydusImageOk(['unpack', boot, '--backend_type', 's3', '--backend_config', JSON.stringify(conf), '--output', tar]);
      expect((await readFile(tar)).equals(local.tar)).toBe(true);

      const disk = join(work, 's3.disk');
      await nydusImageOk(['export', '--block', '-B', boot, '--backend-type', 's3', ...cfg(conf), '-O', disk]);
      await mkdir(join(work, 'ldir'));
      await writeFile(join(work, 'ldir', id), await readFile(local.blob));
      const ldisk = join(work, 'local.disk');
      await nydusImageOk(['export', '--block', '-B', local.boot, '-D', join(work, 'ldir'), '-O', ldisk]);
      expect((await readFile(disk)).equals(await readFile(ldisk))).toBe(true);
    } finally {
      await proxy.stop();
    }
  }, 300_000);

  it('an object already there is kept unless --backend-force-push; a corrupted object fails check', async () => {
    const conf = s3.config({ object_prefix: 'blobs/' });
    const boot = join(work, 's3-again.boot');
    const r = await nydusImageOk(['create', '-B', boot, '--backend-type', 's3', ...cfg(conf), join(src, 'dir')]);
    const id = loggedBlobId(r.stderr);
    const again = await nydusImageOk(['create', '-B', boot, '--backend-type', 's3', ...cfg(conf), join(src, 'dir')]);
    expect(again.stderr.toString()).toContain('already there: kept');
    const forced = await nydusImageOk(['create', '-B', boot, '--backend-type', 's3', ...cfg(conf), '--backend-force-push', join(src, 'dir')]);
    expect(forced.stderr.toString()).not.toContain('already there');
    expect(await s3.uploads()).toEqual([]);
    expect((await s3.keys()).filter((k) => k.includes('.nydus-upload'))).toEqual([]);
    // A blob whose bytes are wrong is caught by check's digests.
    const good = await s3.get(`blobs/${id}`);
    const bad = Buffer.from(good);
    bad[100] ^= 0xff;
    const { PutObjectCommand } = await import('@aws-sdk/client-s3');
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `blobs/${id}`, Body: bad }));
    const c = await nydusImage(['check', boot, '--backend-type', 's3', ...cfg(conf)]);
    expect(c.code).toBe(1);
    expect(c.stderr.toString()).toMatch(/digest mismatch|does not decompress/);
  }, 120_000);

  it('the server killed mid-upload: one line, exit 1, no object, the upload aborted; a rerun completes', async () => {
    const conf0 = s3.config({ object_prefix: 'crash/' });
    let killed = false;
    let restarted: Promise<void> | undefined;
    const proxy = await startFaultProxy(`127.0.0.1:${s3.port}`, (q) => {
      if (!killed && q.method === 'PUT' && /[?&]partNumber=2\b/.test(q.url)) {
        killed = true;
        s3.kill();
        // Back a little later, while the build is still trying to abort its upload.
        restarted = new Promise((r) => setTimeout(r, 2500)).then(() => s3.restart());
      }
      // From the crash on, parts are refused: the build must fail, and only its abort gets through.
      if (killed && q.method === 'PUT') return { status: 503 };
      return 'forward';
    });
    try {
      const boot = join(work, 'crash.boot');
      const r = await nydusImage(['create', '-B', boot, '--backend-type', 's3', ...cfg({ ...conf0, endpoint: proxy.host }), src]);
      expect(killed).toBe(true);
      expect(r.code).toBe(1);
      expect(oneLine(r)).toMatch(/^Error: s3:\/\/nydus-blobs\/crash\/.*(uploading part|starting|failed)/);
      await restarted;
      expect(await s3.uploads()).toEqual([]);
      expect((await s3.keys()).filter((k) => k.startsWith('crash/'))).toEqual([]);
      expect(proxy.seen.some((q) => q.method === 'DELETE' && /uploadId=/.test(q.url))).toBe(true);
      await expect(stat(boot)).rejects.toThrow();
    } finally {
      await proxy.stop();
    }
    const boot = join(work, 'crash.boot');
    const again = await nydusImageOk(['create', '-B', boot, '--backend-type', 's3', ...cfg(conf0), src]);
    expect(await s3.keys()).toContain(`crash/${loggedBlobId(again.stderr)}`);
    await nydusImageOk(['check', boot, '--backend-type', 's3', ...cfg(conf0)]);
  }, 300_000);

  it('503 twice, then success: the upload succeeds', async () => {
    let refused = 0;
    const proxy = await startFaultProxy(`127.0.0.1:${s3.port}`, (q) => {
      if (q.method === 'PUT' && /[?&]partNumber=1\b/.test(q.url) && refused < 2) {
        refused++;
        return { status: 503, body: '<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>busy</Message></Error>', headers: { 'content-type': 'application/xml' } };
      }
      return 'forward';
    });
    try {
      const conf = s3.config({ endpoint: proxy.host, object_prefix: 'retry/' });
      const boot = join(work, 'retry.boot');
      const r = await nydusImageOk(['create', '-B', boot, '--backend-type', 's3', ...cfg(conf), join(src, 'dir')]);
      expect(refused).toBe(2);
      expect(await s3.keys()).toContain(`retry/${loggedBlobId(r.stderr)}`);
      await nydusImageOk(['check', boot, '--backend-type', 's3', ...cfg(conf)]);
    } finally {
      await proxy.stop();
    }
  }, 120_000);

  it('parts are signed UNSIGNED-PAYLOAD under their CRC32 header; with checksum_algorithm "" the payload hash is signed', async () => {
    const proxy = await startFaultProxy(`127.0.0.1:${s3.port}`, () => 'forward');
    try {
      const parts = () => proxy.seen.filter((q) => q.method === 'PUT' && /[?&]partNumber=/.test(q.url));
      for (const [algo, prefix] of [[undefined, 'sum/'], ['', 'nosum/']] as const) {
        const conf = s3.config({ endpoint: proxy.host, object_prefix: prefix, ...(algo !== undefined ? { checksum_algorithm: algo } : {}) });
        const boot = join(work, `${prefix.slice(0, -1)}.boot`);
        proxy.seen.length = 0;
        const r = await nydusImageOk(['create', '-B', boot, '--backend-type', 's3', ...cfg(conf), join(src, 'dir')]);
        const [part] = parts();
        expect(part).toBeDefined();
        if (algo === undefined) {
          // CRC32 (4 bytes, base64) covers the body, so the SDK does not hash it again for the signature.
          expect(part!.headers['x-amz-checksum-crc32']).toMatch(/^[A-Za-z0-9+/]{6}==$/);
          expect(part!.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
        } else {
          expect(part!.headers['x-amz-checksum-crc32']).toBeUndefined();
          expect(part!.headers['x-amz-content-sha256']).toMatch(/^[0-9a-f]{64}$/);
        }
        // The signature covers the header that was sent: the server took the part.
        expect(await s3.keys()).toContain(`${prefix}${loggedBlobId(r.stderr)}`);
        await nydusImageOk(['check', boot, '--backend-type', 's3', ...cfg(conf)]);
      }
    } finally {
      await proxy.stop();
    }
  }, 120_000);

  it('an interrupted build aborts its upload and exits by the signal', async () => {
    const conf = s3.config({ object_prefix: 'intr/' });
    const boot = join(work, 'intr.boot');
    const child = spawn(process.execPath, [BIN, 'create', '-B', boot, '--backend-type', 's3', ...cfg(conf), src], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    // Once an upload is open, interrupt.
    for (let i = 0; i < 600 && (await s3.uploads()).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.once('exit', (c, sig) => r(sig === 'SIGINT' ? 130 : c)));
    expect(code).toBe(130);
    expect(err).toContain('interrupted by SIGINT');
    expect(await s3.uploads()).toEqual([]);
    expect((await s3.keys()).filter((k) => k.startsWith('intr/'))).toEqual([]);
    await expect(stat(boot)).rejects.toThrow();
  }, 120_000);
});

describe('bad backend config: one line each, non-zero exit, nothing written', () => {
  // Refused before any connection: the endpoint need not answer.
  const good = () => ({ endpoint: '127.0.0.1:9', scheme: 'http', region: 'us-east-1', bucket_name: 'nydus-blobs', access_key_id: 'k', access_key_secret: 's' });
  const without = (k: string) => Object.fromEntries(Object.entries(good()).filter(([key]) => key !== k));
  const cases: Array<[string, string[], RegExp]> = [
    ['not JSON', ['--backend-type', 's3', '--backend-config', '{"region":'], /^Error: --backend-config is not valid JSON/],
    ['not an object', ['--backend-type', 's3', '--backend-config', '[1]'], /must be a JSON object, not array/],
    ['s3 without region', ['--backend-type', 's3', ...cfg(without('region'))], /backend config \(s3\): missing required field "region"/],
    ['s3 without bucket_name', ['--backend-type', 's3', ...cfg(without('bucket_name'))], /backend config \(s3\): missing required field "bucket_name"/],
    ['oss without endpoint', ['--backend-type', 'oss', ...cfg({ bucket_name: 'b' })], /backend config \(oss\): missing required field "endpoint"/],
    ['oss without bucket_name', ['--backend-type', 'oss', ...cfg({ endpoint: 'oss.example' })], /backend config \(oss\): missing required field "bucket_name"/],
    ['registry without host', ['--backend-type', 'registry', ...cfg({ repo: 'a/b' })], /backend config \(registry\): missing required field "host"/],
    ['registry without repo', ['--backend-type', 'registry', ...cfg({ host: 'h:5000' })], /backend config \(registry\): missing required field "repo"/],
    ['localfs without dir', ['--backend-type', 'localfs', ...cfg({})], /backend config \(localfs\): missing required field "dir"/],
    ['a wrong type', ['--backend-type', 's3', ...cfg({ ...good(), region: 5 })], /field "region" must be a string, not number/],
    ['a wrong boolean', ['--backend-type', 's3', ...cfg({ ...good(), skip_verify: 'yes' })], /field "skip_verify" must be a boolean, not string/],
    ['a scheme in the s3 endpoint', ['--backend-type', 's3', ...cfg({ ...good(), endpoint: 'http://127.0.0.1:1' })], /field "endpoint" must not carry a scheme/],
    ['a bad scheme', ['--backend-type', 's3', ...cfg({ ...good(), scheme: 'ftp' })], /field "scheme" must be http or https/],
    ['an unknown field', ['--backend-type', 's3', ...cfg({ ...good(), bucketname: 'x' })], /unknown field "bucketname"/],
    ['an unknown type', ['--backend-type', 'gcs', ...cfg({})], /unknown backend type "gcs"/],
    ['no config', ['--backend-type', 's3'], /--backend-config or --backend-config-file must be specified/],
    ['a missing config file', ['--backend-type', 's3', '--backend-config-file', '/nonexistent/b.json'], /fail to read backend config file/],
    ['a read-only type', ['--backend-type', 'http-proxy', ...cfg({ addr: '/run/x.sock' })], /http-proxy backend is read-only/],
  ];
  for (const [name, args, want] of cases) {
    it(name, async () => {
      const boot = join(work, `bad-${name.replace(/\W+/g, '-')}.boot`);
      const before = (await s3.keys()).length;
      const r = await nydusImage(['create', '-B', boot, ...args, join(src, 'dir')]);
      expect(r.code).toBe(2);
      expect(oneLine(r)).toMatch(want);
      await expect(stat(boot)).rejects.toThrow();
      expect((await s3.keys()).length).toBe(before);
    });
  }
});

describe('OSS backend (ali-oss against the loopback server in OSS mode)', () => {
  it('create, check and unpack; every request carries the documented V1 signature', async () => {
    const oss = await startS3({ bucket: 'nydus-oss', mode: 'oss' });
    try {
      const conf = { endpoint: `127.0.0.1:${oss.port}`, scheme: 'http', bucket_name: 'nydus-oss', access_key_id: 'S3RVER', access_key_secret: 'S3RVER', object_prefix: 'oss/' };
      const boot = join(work, 'oss.boot');
      const r = await nydusImageOk(['create', '-B', boot, '--backend-type', 'oss', ...cfg(conf), src]);
      const id = loggedBlobId(r.stderr);
      expect(id).toBe(local.id);
      expect(await oss.keys()).toEqual([`oss/${id}`]);
      expect(await oss.uploads()).toEqual([]);
      await nydusImageOk(['check', boot, '--backend-type', 'oss', ...cfg(conf)]);
      const tar = join(work, 'oss.tar');
      await nydusImageOk(['unpack', boot, '--backend-type', 'oss', ...cfg(conf), '--output', tar]);
      expect((await readFile(tar)).equals(local.tar)).toBe(true);
      // init, 4 parts, HEAD, complete, copy, delete, then check's HEAD and GETs: all verified.
      expect(oss.ossSignaturesOk).toBeGreaterThanOrEqual(10);
      // A wrong secret is refused by the server's check: one line, nothing stored.
      const bad = await nydusImage(['create', '-B', join(work, 'oss-bad.boot'), '--backend-type', 'oss', ...cfg({ ...conf, access_key_secret: 'wrong', object_prefix: 'bad/' }), join(src, 'dir')]);
      expect(bad.code).toBe(1);
      expect(oneLine(bad)).toMatch(/SignatureDoesNotMatch/);
      expect((await oss.keys()).filter((k) => k.startsWith('bad/'))).toEqual([]);
    } finally {
      await oss.stop();
    }
  }, 300_000);
});

describe('localfs backend', () => {
  it('create puts the blob at <dir>/<id> (or blob_file); check and export read it', async () => {
    const dir = join(work, 'lfs');
    await mkdir(dir);
    const boot = join(work, 'lfs.boot');
    const r = await nydusImageOk(['create', '-B', boot, '--backend-type', 'localfs', ...cfg({ dir }), src]);
    const id = loggedBlobId(r.stderr);
    expect(await readdir(dir)).toEqual([id]);
    expect((await readFile(join(dir, id))).equals(await readFile(local.blob))).toBe(true);
    await nydusImageOk(['check', boot, '--backend-type', 'localfs', ...cfg({ dir })]);
    const file = join(work, 'lfs-one.blob');
    await nydusImageOk(['create', '-B', join(work, 'lfs1.boot'), '--backend_type', 'localfs', '--backend_config', JSON.stringify({ blob_file: file }), src]);
    expect((await readFile(file)).equals(await readFile(local.blob))).toBe(true);
    // unpack takes localfs as upstream does: --blob-dir.
    const u = await nydusImage(['unpack', boot, '--backend-type', 'localfs', ...cfg({ dir }), '--output', join(work, 'l.tar')]);
    expect(oneLine(u)).toBe('Error: Use --blob-dir to specify localfs backend');
    await nydusImageOk(['unpack', boot, '--blob-dir', dir, '--output', join(work, 'l.tar')]);
    expect((await readFile(join(work, 'l.tar'))).equals(local.tar)).toBe(true);
  }, 120_000);
});

describe('http-proxy backend (the snapshotter\'s stream mode)', () => {
  it('unpack over a unix socket serving the blob is byte-identical to unpack --blob', async () => {
    const sock = join(work, 'proxy.sock');
    const blob = await readFile(local.blob);
    const ranges: string[] = [];
    const server = http.createServer((req, res) => {
      if (req.method === 'HEAD') return res.writeHead(200, { 'content-length': blob.length }).end();
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (!m) return res.writeHead(200, { 'content-length': blob.length }).end(blob);
      ranges.push(req.headers.range!);
      const [a, b] = [Number(m[1]), Number(m[2])];
      res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${blob.length}`, 'content-length': b - a + 1 }).end(blob.subarray(a, b + 1));
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const tar = join(work, 'proxy.tar');
      // The snapshotter's form: {"version":2,"backend":{"type":"http-proxy","http-proxy":{"addr":SOCK}}}.
      await nydusImageOk(['unpack', '--log-level', 'warn', '--bootstrap', local.boot, '--output', tar, '--backend-type', 'http-proxy',
        '--backend-config', JSON.stringify({ version: 2, backend: { type: 'http-proxy', 'http-proxy': { addr: sock } } })]);
      expect((await readFile(tar)).equals(local.tar)).toBe(true);
      expect(ranges.length).toBeGreaterThan(0);
      await nydusImageOk(['unpack', local.boot, '--output', join(work, 'proxy2.tar'), '--backend-type', 'http-proxy', ...cfg({ addr: sock })]);
      expect((await readFile(join(work, 'proxy2.tar'))).equals(local.tar)).toBe(true);
    } finally {
      await new Promise((r) => server.close(r));
    }
    // Nobody listening: one line, exit 1, no output file.
    const r = await nydusImage(['unpack', local.boot, '--output', join(work, 'none.tar'), '--backend-type', 'http-proxy', ...cfg({ addr: sock })]);
    expect(r.code).toBe(1);
    expect(oneLine(r)).toMatch(/http-proxy|ENOENT|ECONNREFUSED/);
    await expect(stat(join(work, 'none.tar'))).rejects.toThrow();
  }, 120_000);

  it('unpack over http from <addr><path>/<blob id> is byte-identical to unpack --blob', async () => {
    const blob = await readFile(local.blob);
    const paths: string[] = [];
    const server = http.createServer((req, res) => {
      paths.push(`${req.method} ${req.url}`);
      if (req.url !== `/store/blobs/${local.id}`) return res.writeHead(404).end();
      if (req.method === 'HEAD') return res.writeHead(200, { 'content-length': blob.length }).end();
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (!m) return res.writeHead(400).end();
      const [a, b] = [Number(m[1]), Math.min(Number(m[2]), blob.length - 1)];
      res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${blob.length}`, 'content-length': b - a + 1 }).end(blob.subarray(a, b + 1));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    try {
      const tar = join(work, 'proxy-http.tar');
      await nydusImageOk(['unpack', local.boot, '--output', tar, '--backend-type', 'http-proxy', ...cfg({ addr: `http://127.0.0.1:${port}`, path: '/store/blobs' })]);
      expect((await readFile(tar)).equals(local.tar)).toBe(true);
      expect(paths.length).toBeGreaterThan(0);
      expect(paths.every((p) => p.endsWith(`/store/blobs/${local.id}`))).toBe(true);
      // The wrong path: the server answers 404, unpack says so in one line and writes nothing.
      const r = await nydusImage(['unpack', local.boot, '--output', join(work, 'proxy-404.tar'), '--backend-type', 'http-proxy', ...cfg({ addr: `http://127.0.0.1:${port}`, path: '/elsewhere' })]);
      expect(r.code).toBe(1);
      expect(oneLine(r)).toContain(`/elsewhere/${local.id}`);
      await expect(stat(join(work, 'proxy-404.tar'))).rejects.toThrow();
    } finally {
      await new Promise((r) => server.close(r));
    }
  }, 120_000);
});

