#!/usr/bin/env node
// Benchmark (issue 16): `nydus-image create` of a tree with the blob streamed to an S3 server
// (--backend-type s3) beside the same build to a local file, and beside an AWS SDK upload
// (@aws-sdk/lib-storage, the same part size and concurrency) of that finished blob, in one run.
// Target: streamed wall ≤ 1.2 × the local build's wall.
//
//   node bench/backend-s3.js [TREE] [--json]       (TREE also from BENCH_TREE; default /usr/share)
//
// The S3 server is s3rver on 127.0.0.1 in its own process (test/helpers/s3-server.mjs), storing
// on the same disk; it competes for the same 2 cores, as a real server would not. BENCH_RUNS
// repetitions (default 1), median reported; a warm-up walk of TREE runs first.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { walkTree } from './lib.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const json = args.includes('--json');
const tree = args.find((a) => !a.startsWith('--')) ?? process.env.BENCH_TREE ?? '/usr/share';
const runs = Math.max(1, Number(process.env.BENCH_RUNS ?? 1));
const scratch = fs.mkdtempSync(path.join(process.env.BENCH_TMPDIR ?? os.tmpdir(), 'nydus-bench-s3-'));
const BIN = path.join(ROOT, 'bin', 'nydus-image.js');
const MB = 1 << 20;

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Runs argv, returns wall seconds; throws with the stderr tail on failure. */
function timed(argv) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const c = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (b) => (err = (err + b).slice(-4000)));
    c.on('exit', (code) => {
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code === 0) resolve(wall);
      else reject(new Error(`${argv.slice(1, 3).join(' ')} exited ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`));
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
  const walls = { local: [], streamed: [], upload: [] };
  let blobSize = 0;
  try {
    for (let i = 0; i < runs; i++) {
      const out = path.join(scratch, `run${i}`);
      fs.mkdirSync(out);
      const blob = path.join(out, 'blob');
      walls.local.push(await timed([process.execPath, BIN, 'create', '--log-level', 'warn', '-B', path.join(out, 'boot'), '-b', blob, tree]));
      blobSize = fs.statSync(blob).size;
      walls.streamed.push(await timed([process.execPath, BIN, 'create', '--log-level', 'warn', '-B', path.join(out, 'boot-s3'), '--backend-type', 's3', '--backend-config', JSON.stringify({ ...config, object_prefix: `r${i}/` }), '--backend-force-push', tree]));
      const t0 = process.hrtime.bigint();
      await new Upload({ client, params: { Bucket: 'bench', Key: `sdk/${i}`, Body: fs.createReadStream(blob) }, partSize: PART_SIZE, queueSize: PART_CONCURRENCY }).done();
      walls.upload.push(Number(process.hrtime.bigint() - t0) / 1e9);
      fs.rmSync(out, { recursive: true, force: true });
    }
  } finally {
    client.destroy();
    server.kill('SIGTERM');
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  const local = median(walls.local);
  const streamed = median(walls.streamed);
  const upload = median(walls.upload);
  const result = {
    tree, runs, treeMB: bytes / MB, blobMB: blobSize / MB,
    localWall: local, streamedWall: streamed, sdkUploadWall: upload, localPlusUploadWall: local + upload,
    ratioStreamedToLocal: streamed / local, target: 1.2, pass: streamed / local <= 1.2,
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const f = (x) => x.toFixed(2);
  process.stdout.write([
    `create of ${tree} (${f(bytes / MB)} MB of file data, blob ${f(blobSize / MB)} MB), ${runs} run(s), median wall:`,
    `  local file (-b blob)                 ${f(local)} s`,
    `  streamed to S3 (--backend-type s3)   ${f(streamed)} s`,
    `  SDK upload of the finished blob      ${f(upload)} s   (local build + upload: ${f(local + upload)} s)`,
    `  streamed / local = ${f(streamed / local)}  (target ≤ 1.2: ${result.pass ? 'PASS' : 'MISS'})`,
    '',
  ].join('\n'));
}

main().catch((e) => {
  fs.rmSync(scratch, { recursive: true, force: true });
  process.stderr.write(`bench/backend-s3.js: ${e.message}\n`);
  process.exitCode = 1;
});
