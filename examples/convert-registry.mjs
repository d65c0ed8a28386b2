// Converting an image in a registry with the library, end to end, on this machine alone:
// starts a docker-registry on 127.0.0.1 (a temporary config and storage), writes a small OCI
// image as an OCI-layout directory, pushes it with the library's copy(), converts it with
// convert() and prints the result; then stops the registry and removes what it made.
//
// Run after `npm run build`: node examples/convert-registry.mjs
// Needs `docker-registry` (Debian: apt-get install docker-registry) on PATH or in /usr/bin.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { convert, copy } from '../dist/index.js';

const sha256 = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A port nobody listens on right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A tar of the given files, in memory. */
function tarOf(files) {
  return new Promise((resolve, reject) => {
    const pack = tar.pack();
    const chunks = [];
    pack.on('data', (c) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks))).on('error', reject);
    for (const f of files) {
      if (f.dir) pack.entry({ name: f.name, type: 'directory', mode: 0o755, mtime: new Date(1_600_000_000_000) });
      else pack.entry({ name: f.name, mode: f.mode ?? 0o644, mtime: new Date(1_600_000_000_000) }, f.data);
    }
    pack.finalize();
  });
}

/** An OCI image layout directory holding one image of these layers, tagged `tag`. */
function writeLayout(dir, tag, layerTars) {
  const blobs = path.join(dir, 'blobs', 'sha256');
  fs.mkdirSync(blobs, { recursive: true });
  const put = (data) => {
    const digest = sha256(data);
    fs.writeFileSync(path.join(blobs, digest.slice(7)), data);
    return { digest, size: data.length };
  };
  const layers = layerTars.map((t) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...put(gzipSync(t)) }));
  const config = put(Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/hello'] },
    rootfs: { type: 'layers', diff_ids: layerTars.map(sha256) }, history: layerTars.map(() => ({ created_by: 'examples/convert-registry.mjs' })),
  })));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers }));
  const m = put(manifest);
  fs.writeFileSync(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  }));
}

const registryBin = ['/usr/bin/docker-registry', 'docker-registry'].find((b) => spawnSync(b, ['--version']).status === 0);
if (!registryBin) {
  console.error('docker-registry is not installed (Debian: apt-get install docker-registry)');
  process.exit(3);
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nydus-example-'));
const port = await freePort();
const host = `127.0.0.1:${port}`;
fs.writeFileSync(path.join(work, 'config.yml'), [
  'version: 0.1', 'log:', '  level: warn', '  accesslog:', '    disabled: true',
  'storage:', '  filesystem:', `    rootdirectory: ${path.join(work, 'storage')}`,
  'http:', `  addr: ${host}`, `  secret: ${randomBytes(16).toString('hex')}`, '',
].join('\n'));
// Its log (a line for every 404 a HEAD gets) is shown only if it does not start.
const registry = spawn(registryBin, ['serve', path.join(work, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
let registryLog = '';
registry.stderr.on('data', (b) => (registryLog = (registryLog + b).slice(-8192)));
// An empty Docker config: no credentials from this machine are sent to the local registry.
fs.mkdirSync(path.join(work, 'docker'));
fs.writeFileSync(path.join(work, 'docker', 'config.json'), '{}');
const env = { ...process.env, DOCKER_CONFIG: path.join(work, 'docker') };

try {
  // Wait for the registry to answer.
  for (let i = 0; ; i++) {
    const up = await fetch(`http://${host}/v2/`).then(() => true, () => false);
    if (up) break;
    if (i > 200 || registry.exitCode !== null) throw new Error(`docker-registry did not start:\n${registryLog}`);
    await new Promise((r) => setTimeout(r, 50));
  }

  const layers = [
    await tarOf([{ name: 'bin/', dir: true }, { name: 'bin/hello', data: '#!/bin/sh\necho hello\n', mode: 0o755 }, { name: 'etc/', dir: true }, { name: 'etc/motd', data: 'Converted by nydus-ts.\n' }]),
    await tarOf([{ name: 'data/', dir: true }, { name: 'data/random', data: randomBytes(3 << 20) }, { name: 'etc/', dir: true }, { name: 'etc/.wh.motd', data: '' }]),
  ];
  const layout = path.join(work, 'layout');
  writeLayout(layout, 'v1', layers);

  const pushed = await copy({ source: `file://${layout}`, target: `${host}/example/app:v1`, plainHttp: true, env });
  console.log(`pushed ${pushed.target} (${pushed.blobs.copied} blobs)`);

  const result = await convert({
    source: `${host}/example/app:v1`, target: `${host}/example/app:v1-nydus`, plainHttp: true, env, workDir: path.join(work, 'tmp'),
    onProgress: (e) => console.log(`  ${e.layer >= 0 ? `layer ${e.layer + 1}/${e.layers}` : 'image'} ${e.stage} ${e.digest}`),
  });
  console.log(`converted to ${result.target}@${result.digest}`);
  for (const m of result.manifests) console.log(`  ${m.mediaType}: ${m.blobs.length} blobs, bootstrap layer ${m.bootstrap}`);
  console.log(JSON.stringify({ target: result.target, digest: result.digest, metrics: result.metrics }));
} finally {
  registry.kill('SIGTERM');
  await new Promise((r) => (registry.exitCode !== null ? r() : registry.once('exit', r)));
  fs.rmSync(work, { recursive: true, force: true });
}
