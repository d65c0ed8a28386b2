#!/usr/bin/env node
// Benchmark (issue 16): `nydus-image create` of a tree with the blob streamed to an S3 server
// (--backend-type s3) beside the same build to a local file, and beside an AWS SDK upload
// (@aws-sdk/lib-storage, the same part size and concurrency) of that finished blob, in one run.
// Target: streamed wall ≤ 1.2 × the local build's wall.
//
//   node bench/backend-s3.js [TREE] [--json]       (TREE also from BENCH_TREE; default /usr/share)
//
// BENCH_BASE_ROOT=<checkout with dist built> adds, in each round, the streamed build of that
// checkout (e.g. main) with its ratio, to compare a change on a busy machine in the same rounds.
// CPU seconds: the command's (GNU time) and the S3 server's meanwhile (/proc), per row.
//
// The S3 server is s3rver on 127.0.0.1 in its own process (test/helpers/s3-server.mjs), storing
// on the same disk; it competes for the same 2 cores, as a real server would not. BENCH_RUNS
// repetitions (default 1), median reported; a warm-up walk of TREE runs first.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, haveTime, median, TIME_BIN, walkTree } from './lib.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const json = args.includes('--json');
const tree = args.find((a) => !a.startsWith('--')) ?? process.env.BENCH_TREE ?? '/usr/share';
const runs = Math.max(1, Number(process.env.BENCH_RUNS ?? 1));
const scratch = fs.mkdtempSync(path.join(process.env.BENCH_TMPDIR ?? os.tmpdir(), 'nydus-bench-s3-'));
const BIN = path.join(ROOT, 'bin', 'nydus-image.js');
const BASE = process.env.BENCH_BASE_ROOT ? path.join(path.resolve(process.env.BENCH_BASE_ROOT), 'bin', 'nydus-image.js') : undefined;
const MB = 1 << 20;



/** CPU seconds (user + system) a process has used so far, from /proc (0 where there is none). */
function cpuOf(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}
const CLK_TCK = 100;

/**
 * Runs argv (under GNU time where there is one, for its CPU seconds); returns { wall, cpu, server }:
 * wall seconds, the command's CPU seconds (null without GNU time) and the S3 server's CPU seconds
 * meanwhile. Throws with the stderr tail on failure.
 */
function timed(argv, serverPid) {
  const timeFile = path.join(scratch, 'time.txt');
  const full = haveTime ? [TIME_BIN, '-o', timeFile, '-f', '%U %S', ...argv] : argv;
  return new Promise((resolve, reject) => {
    const s0 = cpuOf(serverPid);
    const t0 = process.hrtime.bigint();
    const c = spawn(full[0], full.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (b) => (err = (err + b).slice(-4000)));
    c.on('exit', (code) => {
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const server = cpuOf(serverPid) - s0;
      if (code !== 0) {
        reject(new Error(`${argv.slice(1, 3).join(' ')} exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`));
        return;
      }
      const m = haveTime ? /([\d.]+) ([\d.]+)\s*$/.exec(fs.readFileSync(timeFile, 'utf8')) : null;
      resolve({ wall, cpu: m ? Number(m[1]) + Number(m[2]) : null, server });
    });
  });
}

async function startServer(dir, port) {
  const c = spawn(process.execPath, [path.join(ROOT, 'test/helpers/s3-server.mjs'), dir, String(port), 'bench'], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    c.stdout.on('data', (b) => String(b).includes('listening') && resolve());
    c.once('exit', (code) => reject(new Error(`s3 server exited ${code}`)));
  });
  return c;
}

async function main() {
  // The warm-up walk of bench/lib.js: every run, the first too, sees a warm page cache.
  const bytes = walkTree(tree, true).bytes;
  const port = await freePort();
  const store = path.join(scratch, 's3');
  fs.mkdirSync(store);
  const server = await startServer(store, port);
  const config = { endpoint: `127.0.0.1:${port}`, scheme: 'http', region: 'us-east-1', bucket_name: 'bench', access_key_id: 'S3RVER', access_key_secret: 'S3RVER' };
  const { S3Client } = await import('@aws-sdk/client-s3');
  const { Upload } = await import('@aws-sdk/lib-storage');
  const { quietSdkWarning } = await import('../dist/backends/quiet.js');
  const { PART_SIZE, PART_CONCURRENCY } = await import('../dist/backends/multipart.js');
  quietSdkWarning();
  const client = new S3Client({ region: 'us-east-1', endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  const runsOf = { local: [], streamed: [], upload: [], ...(BASE ? { base: [] } : {}) };
  let blobSize = 0;
  try {
    for (let i = 0; i < runs; i++) {
      const out = path.join(scratch, `run${i}`);
      fs.mkdirSync(out);
      const blob = path.join(out, 'blob');
      runsOf.local.push(await timed([process.execPath, BIN, 'create', '--log-level', 'warn', '-B', path.join(out, 'boot'), '-b', blob, tree], server.pid));
      blobSize = fs.statSync(blob).size;
      runsOf.streamed.push(await timed([process.execPath, BIN, 'create', '--log-level', 'warn', '-B', path.join(out, 'boot-s3'), '--backend-type', 's3', '--backend-config', JSON.stringify({ ...config, object_prefix: `r${i}/` }), '--backend-force-push', tree], server.pid));
      if (BASE) runsOf.base.push(await timed([process.execPath, BASE, 'create', '--log-level', 'warn', '-B', path.join(out, 'boot-base'), '--backend-type', 's3', '--backend-config', JSON.stringify({ ...config, object_prefix: `b${i}/` }), '--backend-force-push', tree], server.pid));
      const s0 = cpuOf(server.pid);
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      await new Upload({ client, params: { Bucket: 'bench', Key: `sdk/${i}`, Body: fs.createReadStream(blob) }, partSize: PART_SIZE, queueSize: PART_CONCURRENCY }).done();
      const c = process.cpuUsage(c0);
      runsOf.upload.push({ wall: Number(process.hrtime.bigint() - t0) / 1e9, cpu: (c.user + c.system) / 1e6, server: cpuOf(server.pid) - s0 });
      fs.rmSync(out, { recursive: true, force: true });
    }
  } finally {
    client.destroy();
    server.kill('SIGTERM');
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  // Medians of each figure on its own (so a row's three need not come from one run).
  const med = (k, f) => {
    const xs = runsOf[k].map((r) => r[f]).filter((x) => x !== null);
    return xs.length ? median(xs) : null;
  };
  const local = med('local', 'wall');
  const streamed = med('streamed', 'wall');
  const upload = med('upload', 'wall');
  const cpu = Object.fromEntries(Object.keys(runsOf).map((k) => [k, { client: med(k, 'cpu'), server: med(k, 'server') }]));
  const result = {
    tree, runs, treeMB: bytes / MB, blobMB: blobSize / MB,
    localWall: local, streamedWall: streamed, sdkUploadWall: upload, localPlusUploadWall: local + upload,
    cpuSeconds: cpu,
    ...(BASE ? { base: process.env.BENCH_BASE_ROOT, baseStreamedWall: med('base', 'wall'), ratioBaseToLocal: med('base', 'wall') / local } : {}),
    ratioStreamedToLocal: streamed / local, target: 1.2, pass: streamed / local <= 1.2,
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const f = (x) => (x === null ? '   -' : x.toFixed(2));
  const row = (name, k, wall) => `  ${name.padEnd(37)}${f(wall)} s   CPU-s: ours ${f(cpu[k].client)}, server ${f(cpu[k].server)}`;
  process.stdout.write([
    `create of ${tree} (${f(bytes / MB)} MB of file data, blob ${f(blobSize / MB)} MB), ${runs} run(s), median:`,
    row('local file (-b blob)', 'local', local),
    row('streamed to S3 (--backend-type s3)', 'streamed', streamed),
    `${row('SDK upload of the finished blob', 'upload', upload)}   (local build + upload: ${f(local + upload)} s)`,
    ...(BASE ? [row(`streamed, base (${process.env.BENCH_BASE_ROOT})`, 'base', result.baseStreamedWall)] : []),
    `  streamed / local = ${f(streamed / local)}  (target ≤ 1.2: ${result.pass ? 'PASS' : 'MISS'})${BASE ? `; base streamed / local = ${f(result.ratioBaseToLocal)}` : ''}`,
    '',
  ].join('\n'));
}

main().catch((e) => {
  fs.rmSync(scratch, { recursive: true, force: true });
  process.stderr.write(`bench/backend-s3.js: ${e.message}\n`);
  process.exitCode = 1;
});
