#!/usr/bin/env node
// Benchmark (issue 13): `nydusify convert` of a ~500 MB image between two loopback
// docker-registry processes, beside `skopeo copy` of the same image and beside the staged
// equivalent (bench/convert-staged.js: pull every layer to disk, build each with our
// `nydus-image create -t tar-rafs`, merge, then push), all measured in the same run.
//
//   node bench/convert.js [--json]       (run `npm run build` first: it runs bin/ and dist/)
//
// Environment:
//   BENCH_CONVERT_MB      image size: regular-file bytes taken from the tree (default 500)
//   BENCH_CONVERT_TREE    tree the layers are cut from (default /usr/share), in walk order
//   BENCH_CONVERT_LAYERS  number of gzip layers (default 3)
//   BENCH_TMPDIR          parent of the scratch dir (default os.tmpdir())
//   BENCH_TIME_BIN        GNU time (default /usr/bin/time)
//   BENCH_CONVERT_CHECK   '1': afterwards (untimed) `nydusify check` each Nydus target against the source
//   BENCH_CONVERT         '0' skips this benchmark (npm run bench runs it after bench/run.js)
//
// Setup (untimed): the tree's entries, up to the size, are cut into layers by bytes, each a GNU
// tar through `gzip -6`; they are pushed as an OCI image to the source registry. Then each
// scenario runs once under `/usr/bin/time -f '%e %M'` (wall s, peak RSS KiB of the largest
// process), with TMPDIR and its work dir in a fresh directory whose size is sampled every 100 ms
// (peak disk). Every scenario pushes to its own repository of the target registry.
// Exit code is 0 regardless of results: this is a benchmark, not a test.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, outputSize } from './lib.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MB = 1024 * 1024;
const TIME_BIN = process.env.BENCH_TIME_BIN || '/usr/bin/time';
const SIZE_MB = Number(process.env.BENCH_CONVERT_MB || 500);
const TREE = process.env.BENCH_CONVERT_TREE || '/usr/share';
const NLAYERS = Math.max(1, Number(process.env.BENCH_CONVERT_LAYERS || 3));
const JSON_OUT = process.argv.includes('--json');
const q = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;


const ping = (url) => new Promise((resolve) => {
  const req = http.get(`${url}/v2/`, { timeout: 1000 }, (res) => {
    res.resume();
    resolve(true);
  });
  req.on('error', () => resolve(false));
  req.on('timeout', () => req.destroy());
});

/** A plain-HTTP docker-registry on 127.0.0.1 with its storage under dir. */
async function startRegistry(dir) {
  fs.mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(config, [
    'version: 0.1', 'log:', '  level: warn', '  accesslog:', '    disabled: true',
    'storage:', '  filesystem:', `    rootdirectory: ${path.join(dir, 'data')}`, '  maintenance:', '    uploadpurging:', '      enabled: false',
    'http:', `  addr: 127.0.0.1:${port}`, `  secret: ${crypto.randomBytes(16).toString('hex')}`, '',
  ].join('\n'));
  // Its stderr (404s of HEAD probes at level warn) goes to a file beside its storage.
  const proc = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'registry.log'), 'w')] });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  while (proc.exitCode === null && Date.now() < deadline && !(await ping(url))) await new Promise((r) => setTimeout(r, 50));
  if (proc.exitCode !== null || Date.now() >= deadline) {
    proc.kill('SIGKILL');
    throw new Error('docker-registry did not start');
  }
  return { host: `127.0.0.1:${port}`, stop: () => proc.kill('SIGTERM') };
}

/** Entries of the tree in walk order (parents first) with the bytes of regular files, up to `budget` bytes. */
function pickEntries(root, budget) {
  const out = [];
  let total = 0;
  const stack = ['.'];
  while (stack.length && total < budget) {
    const rel = stack.pop();
    let ents;
    try {
      ents = fs.readdirSync(path.join(root, rel), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? 1 : -1));
    } catch {
      continue;
    }
    for (const e of ents) {
      const p = rel === '.' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        out.push({ p, bytes: 0 });
        stack.push(p);
      } else if (e.isFile() || e.isSymbolicLink()) {
        const bytes = e.isFile() ? fs.lstatSync(path.join(root, p)).size : 0;
        out.push({ p, bytes });
        total += bytes;
      }
    }
  }
  return { entries: out, total };
}

function timed(name, argv, work, logDir) {
  fs.mkdirSync(work, { recursive: true });
  const timeFile = path.join(logDir, `${name}.time`);
  const errFile = path.join(logDir, `${name}.stderr`);
  const haveTime = fs.existsSync(TIME_BIN);
  const full = haveTime ? [TIME_BIN, '-o', timeFile, '-f', '%e %M', ...argv] : argv;
  const err = fs.openSync(errFile, 'w');
  const t0 = process.hrtime.bigint();
  const child = spawn(full[0], full.slice(1), { stdio: ['ignore', 'ignore', err], env: { ...process.env, TMPDIR: work } });
  let peakDisk = 0;
  const sample = () => (peakDisk = Math.max(peakDisk, outputSize(work)));
  const timer = setInterval(sample, 100);
  return new Promise((resolve) => {
    child.on('exit', (code, sig) => {
      const hr = Number(process.hrtime.bigint() - t0) / 1e9;
      clearInterval(timer);
      sample();
      fs.closeSync(err);
      let wall = hr;
      let rssKiB = null;
      if (haveTime) {
        const last = fs.readFileSync(timeFile, 'utf8').trim().split('\n').at(-1).split(' ');
        wall = Number(last[0]);
        rssKiB = Number(last[1]);
      }
      const ok = code === 0;
      resolve({ name, cmd: argv.join(' '), ok, wall, rssKiB, peakDisk, err: ok ? '' : `exit ${code ?? sig}: ${fs.readFileSync(errFile, 'utf8').trim().split('\n').slice(-8).join('\n')}` });
    });
  });
}

async function main() {
  if (process.env.BENCH_CONVERT === '0') return;
  if (!fs.existsSync(path.join(ROOT, 'dist/oci/convert.js'))) throw new Error('dist/ is missing: run `npm run build` first');
  const scratch = fs.mkdtempSync(path.join(process.env.BENCH_TMPDIR || os.tmpdir(), 'nydus-bench-convert-'));
  const regs = [];
  try {
    // ---- setup: layers, registries, the source image
    const t0 = Date.now();
    const { entries, total } = pickEntries(TREE, SIZE_MB * MB);
    const per = total / NLAYERS;
    const groups = Array.from({ length: NLAYERS }, () => []);
    let acc = 0;
    for (const e of entries) {
      groups[Math.min(NLAYERS - 1, Math.floor(acc / per))].push(e.p);
      acc += e.bytes;
    }
    const layerDir = path.join(scratch, 'layers');
    fs.mkdirSync(layerDir);
    await Promise.all(groups.map((g, i) => new Promise((resolve, reject) => {
      fs.writeFileSync(path.join(layerDir, `list${i}`), g.join('\n') + '\n');
      const f = (n) => q(path.join(layerDir, n));
      const cmd = `set -o pipefail; tar -cf - --no-recursion -C ${q(TREE)} -T ${f(`list${i}`)} | tee >(sha256sum > ${f(`diff${i}`)}) | gzip -6 -n | tee >(sha256sum > ${f(`dig${i}`)}) > ${f(`layer${i}.tar.gz`)}`;
      const p = spawn('bash', ['-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'] });
      p.on('exit', (c) => (c === 0 ? resolve() : reject(new Error(`making layer ${i}: exit ${c}`))));
    })));
    await new Promise((r) => setTimeout(r, 200)); // the process substitutions finish writing
    const layers = groups.map((_, i) => {
      const file = path.join(layerDir, `layer${i}.tar.gz`);
      const hex = (n) => fs.readFileSync(path.join(layerDir, n), 'utf8').split(' ')[0];
      return { file, digest: `sha256:${hex(`dig${i}`)}`, diffId: `sha256:${hex(`diff${i}`)}`, size: fs.statSync(file).size };
    });
    const imageBytes = layers.reduce((n, l) => n + l.size, 0);

    const src = await startRegistry(path.join(scratch, 'reg-src'));
    regs.push(src);
    const dst = await startRegistry(path.join(scratch, 'reg-dst'));
    regs.push(dst);
    const { RegistryClient } = await import(path.join(ROOT, 'dist/oci/registry.js'));
    const { MEDIA } = await import(path.join(ROOT, 'dist/oci/media-types.js'));
    const { Readable } = await import('node:stream');
    const client = new RegistryClient(src.host, { plainHttp: true, credentials: null });
    for (const l of layers) await client.pushBlob('bench/src', () => fs.createReadStream(l.file), { digest: l.digest, size: l.size });
    const cfg = Buffer.from(JSON.stringify({ architecture: os.arch() === 'x64' ? 'amd64' : os.arch(), os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) }, history: layers.map((_, i) => ({ created_by: `bench layer ${i}` })) }));
    const c = await client.pushBlob('bench/src', Readable.from([cfg]));
    await client.putManifest('bench/src', 'v1', Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: MEDIA.OCI_MANIFEST, config: { mediaType: MEDIA.OCI_CONFIG, digest: c.digest, size: c.size },
      layers: layers.map((l) => ({ mediaType: MEDIA.OCI_LAYER_GZIP, digest: l.digest, size: l.size })),
    })), MEDIA.OCI_MANIFEST);
    await client.close();
    fs.rmSync(layerDir, { recursive: true, force: true });
    console.log(`convert bench: ${NLAYERS} gzip layers of ${(total / MB).toFixed(0)} MB of files from ${TREE} (${entries.length} entries), ` +
      `${(imageBytes / MB).toFixed(0)} MB compressed; source ${src.host}, target ${dst.host}; setup ${((Date.now() - t0) / 1000).toFixed(0)} s; ${os.cpus().length} cores`);

    // ---- scenarios, each once
    const logs = path.join(scratch, 'logs');
    fs.mkdirSync(logs);
    const srcRef = `${src.host}/bench/src:v1`;
    const work = (n) => path.join(scratch, `work-${n}`);
    const scenarios = [
      ['skopeo-copy', ['skopeo', 'copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${srcRef}`, `docker://${dst.host}/bench/skopeo:v1`]],
      ['convert', [process.execPath, path.join(ROOT, 'bin/nydusify.js'), 'convert', '--source', srcRef, '--target', `${dst.host}/bench/convert:v1`, '--plain-http', '--log-level', 'warn', '--work-dir', work('convert')]],
      ['staged', [process.execPath, path.join(ROOT, 'bench/convert-staged.js'), srcRef, `${dst.host}/bench/staged:v1`, work('staged')]],
    ];
    const results = [];
    for (const [name, argv] of scenarios) {
      spawnSync('sync');
      const r = await timed(name, argv, work(name), logs);
      results.push(r);
      fs.rmSync(work(name), { recursive: true, force: true });
    }

    if (process.env.BENCH_CONVERT_CHECK === '1') {
      for (const name of ['convert', 'staged']) {
        const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/nydusify.js'), 'check', '--source', srcRef, '--target', `${dst.host}/bench/${name}:v1`, '--plain-http', '--log-level', 'warn', '--work-dir', path.join(scratch, `check-${name}`)], { encoding: 'utf8' });
        console.log(`nydusify check of the ${name} target: ${r.status === 0 ? 'passes' : `exit ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`}`);
        const report = path.join(scratch, `check-${name}`, 'check-report.json');
        if (r.status !== 0 && fs.existsSync(report)) console.log(`  first differences: ${fs.readFileSync(report, 'utf8').slice(0, 1500)}`);
      }
    }

    // ---- report
    const f = (x, d = 2) => (x == null || !Number.isFinite(x) ? 'n/a' : x.toFixed(d));
    console.log('');
    console.log('scenario      wall s   MB/s   peak RSS MB  peak disk MB');
    for (const r of results) {
      if (!r.ok) {
        console.log(`${r.name.padEnd(12)}  FAILED ${r.err}`);
        continue;
      }
      console.log(`${r.name.padEnd(12)}  ${f(r.wall).padStart(6)}  ${f(total / MB / r.wall, 1).padStart(5)}  ${f(r.rssKiB == null ? null : r.rssKiB / 1024, 1).padStart(11)}  ${f(r.peakDisk / MB, 1).padStart(12)}`);
    }
    const by = Object.fromEntries(results.filter((r) => r.ok).map((r) => [r.name, r]));
    const conv = by.convert;
    const ratioStaged = conv && by.staged ? conv.wall / by.staged.wall : null;
    const ratioSkopeo = conv && by['skopeo-copy'] ? conv.wall / by['skopeo-copy'].wall : null;
    const rssMB = conv?.rssKiB != null ? conv.rssKiB / 1024 : null;
    const verdict = (ok) => (ok == null ? 'n/a' : ok ? 'PASS' : 'MISS');
    const targets = {
      wallVsStaged: verdict(ratioStaged == null ? null : ratioStaged <= 0.7),
      peakRss: verdict(rssMB == null ? null : rssMB < 500),
    };
    console.log('');
    console.log(`convert / staged wall:       ${f(ratioStaged)} (disk ${f(conv?.peakDisk / MB, 1)} MB vs ${f(by.staged?.peakDisk / MB, 1)} MB)`);
    console.log(`convert / skopeo copy wall:  ${f(ratioSkopeo)}`);
    console.log(`target convert wall <= 0.7 x staged: ${targets.wallVsStaged}`);
    console.log(`target convert peak RSS < 500 MB:    ${targets.peakRss}${rssMB != null ? ` (${rssMB.toFixed(1)} MB)` : ''}`);
    if (JSON_OUT) {
      console.log(JSON.stringify({
        tree: TREE, fileBytes: total, imageBytes, layers: NLAYERS, cores: os.cpus().length,
        results: results.map((r) => ({ name: r.name, cmd: r.cmd, ok: r.ok, error: r.ok ? undefined : r.err, wallS: r.wall, peakRssMB: r.rssKiB == null ? null : r.rssKiB / 1024, peakDiskBytes: r.peakDisk })),
        ratios: { convertOverStaged: ratioStaged, convertOverSkopeo: ratioSkopeo }, targets,
      }, null, 2));
    }
  } finally {
    for (const r of regs) r.stop();
    await new Promise((r) => setTimeout(r, 500)); // the registries let go of their storage
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`bench convert: ${e && e.stack ? e.stack : e}`);
    process.exit(0);
  },
);
