#!/usr/bin/env node
// The staged equivalent of `nydusify convert`, for bench/convert.js: every source layer is
// pulled to disk first, then each is built by our `nydus-image create -t tar-rafs` CLI (gzip -dc
// piped in), the bootstraps are merged by `nydus-image merge`, and only then are the blobs, the
// bootstrap layer, the config and the manifest pushed. Each step runs its layers concurrently
// (builds bounded by the number of cores, as convert's default), so the baseline is not slowed
// by serialising what could overlap within a stage; only the stages are sequential.
//
//   node bench/convert-staged.js SOURCE_REF TARGET_REF WORK_DIR     (plain HTTP registries)
//
// Uses the built library (dist/) for the registry client.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { RegistryClient } = await import(path.join(ROOT, 'dist/oci/registry.js'));
const { MEDIA } = await import(path.join(ROOT, 'dist/oci/media-types.js'));

const [srcRef, dstRef, work] = process.argv.slice(2);
if (!work) {
  console.error('usage: node bench/convert-staged.js SOURCE_REF TARGET_REF WORK_DIR');
  process.exit(2);
}
const split = (ref) => {
  const slash = ref.indexOf('/');
  const colon = ref.lastIndexOf(':');
  return { host: ref.slice(0, slash), repo: ref.slice(slash + 1, colon), tag: ref.slice(colon + 1) };
};
const src = split(srcRef);
const dst = split(dstRef);

function sh(cmd) {
  return new Promise((resolve, reject) => {
    const p = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('exit', (code, sig) => (code === 0 ? resolve() : reject(new Error(`${cmd}: exit ${code ?? sig}`))));
    p.on('error', reject);
  });
}

async function bounded(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  }));
  return out;
}

const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
const NYDUS_IMAGE = `${q(process.execPath)} ${q(path.join(ROOT, 'bin/nydus-image.js'))}`;
const sha256File = async (file) => {
  const h = crypto.createHash('sha256');
  await pipeline(fs.createReadStream(file), h);
  return `sha256:${h.digest('hex')}`;
};

fs.mkdirSync(work, { recursive: true });
const from = new RegistryClient(src.host, { plainHttp: true, credentials: null });
const to = new RegistryClient(dst.host, { plainHttp: true, credentials: null });
try {
  // 1. pull every layer (and the config) to disk
  const m = await from.getManifest(src.repo, src.tag);
  const manifest = JSON.parse(m.bytes.toString());
  const { config } = await from.getConfig(src.repo, manifest.config);
  const layers = manifest.layers;
  await Promise.all(layers.map(async (l, i) => {
    await pipeline(await from.getBlob(src.repo, l.digest, l.size), fs.createWriteStream(path.join(work, `layer${i}.tar.gz`)));
  }));

  // 2. build each layer (gzip -dc | nydus-image create -t tar-rafs), then merge
  const cores = os.cpus().length;
  const built = await bounded(layers, cores, async (_, i) => {
    const w = (n) => q(path.join(work, n));
    await sh(`gzip -dc ${w(`layer${i}.tar.gz`)} | ${NYDUS_IMAGE} create -t tar-rafs --log-level warn --whiteout-spec oci --fs-version 6 ` +
      `--compressor zstd --chunk-size 0x100000 -B ${w(`boot${i}`)} -b ${w(`blob${i}`)} -J ${w(`build${i}.json`)} /dev/stdin`);
    // The builder names the blob by its sha256 (the blob id), so no second pass over it is needed.
    const hex = JSON.parse(fs.readFileSync(path.join(work, `build${i}.json`), 'utf8')).blobs[0];
    return { hex, size: fs.statSync(path.join(work, `blob${i}`)).size };
  });
  fs.mkdirSync(path.join(work, 'bootstrap/image'), { recursive: true });
  await sh(`${NYDUS_IMAGE} merge --log-level warn --blob-digests ${built.map((b) => b.hex).join(',')} --blob-sizes ${built.map((b) => b.size).join(',')} -B ${q(path.join(work, 'bootstrap/image/image.boot'))} ` +
    layers.map((_, i) => q(path.join(work, `boot${i}`))).join(' '));
  await sh(`tar -cf ${q(path.join(work, 'bootstrap.tar'))} -C ${q(path.join(work, 'bootstrap'))} image`);
  const diffBoot = await sha256File(path.join(work, 'bootstrap.tar'));
  await sh(`gzip -n ${q(path.join(work, 'bootstrap.tar'))}`);

  // 3. push the blobs, the bootstrap layer, the config and the manifest
  const blobs = await Promise.all(layers.map(async (_, i) => {
    const r = await to.pushBlob(dst.repo, () => fs.createReadStream(path.join(work, `blob${i}`)), { digest: `sha256:${built[i].hex}`, size: built[i].size });
    return { mediaType: MEDIA.NYDUS_BLOB, digest: r.digest, size: r.size, annotations: { 'containerd.io/snapshot/nydus-blob': 'true' } };
  }));
  const bootFile = path.join(work, 'bootstrap.tar.gz');
  const boot = await to.pushBlob(dst.repo, fs.createReadStream(bootFile));
  config.rootfs = { type: 'layers', diff_ids: [...blobs.map((b) => b.digest), diffBoot] };
  const cfgBytes = Buffer.from(JSON.stringify(config));
  const cfg = await to.pushBlob(dst.repo, Readable.from([cfgBytes]));
  const out = {
    schemaVersion: 2, mediaType: MEDIA.OCI_MANIFEST,
    config: { mediaType: MEDIA.OCI_CONFIG, digest: cfg.digest, size: cfg.size },
    layers: [...blobs, { mediaType: MEDIA.OCI_LAYER_GZIP, digest: boot.digest, size: boot.size, annotations: { 'containerd.io/snapshot/nydus-bootstrap': 'true', 'containerd.io/snapshot/nydus-fs-version': '6' } }],
  };
  await to.putManifest(dst.repo, dst.tag, Buffer.from(JSON.stringify(out)), MEDIA.OCI_MANIFEST);
} finally {
  await from.close();
  await to.close();
}
