#!/usr/bin/env node
// The compression floor of a dir-rafs build: every chunk of TREE (files cut at 1 MiB, as the
// build cuts them) compressed with zstd level 3, upstream's default, on one worker per core,
// with all the data already in memory. Nothing else a build does is counted: no walk, no
// reads, no digests, no writes, no bootstrap. Prints one JSON line.
//
//   node bench/zstd-floor.js TREE
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';

const CHUNK = 1 << 20;
const LEVEL = 3;

if (isMainThread) {
  const tree = path.resolve(process.argv[2] || '/usr/share');
  const threads = Math.max(1, os.availableParallelism());
  // Chunks dealt round-robin into one shared buffer per worker.
  const parts = Array.from({ length: threads }, () => ({ bufs: [], bytes: 0 }));
  let n = 0;
  let total = 0;
  const stack = [tree];
  while (stack.length) {
    const dir = stack.pop();
    let ents;
    try { ents = fs.readdirSync(dir, { withFileTypes: true }); } catch { continue; }
    for (const e of ents) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) {
        let data;
        try { data = fs.readFileSync(p); } catch { continue; }
        for (let o = 0; o < data.length; o += CHUNK) {
          const c = data.subarray(o, Math.min(data.length, o + CHUNK));
          const part = parts[n++ % threads];
          part.bufs.push(c);
          part.bytes += c.length;
          total += c.length;
        }
      }
    }
  }
  const jobs = parts.map((p) => {
    const data = new Uint8Array(new SharedArrayBuffer(p.bytes));
    const sizes = new Uint32Array(p.bufs.length);
    let off = 0;
    p.bufs.forEach((b, i) => { data.set(b, off); off += b.length; sizes[i] = b.length; });
    return { data, sizes };
  });
  const workers = jobs.map((j) => new Worker(new URL(import.meta.url), { workerData: j }));
  // Start together once every worker is loaded.
  await Promise.all(workers.map((w) => new Promise((res) => w.once('message', res))));
  const t0 = process.hrtime.bigint();
  workers.forEach((w) => w.postMessage('go'));
  const results = await Promise.all(workers.map((w) => new Promise((res) => w.once('message', res))));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const out = results.reduce((s, r) => s + r, 0);
  console.log(JSON.stringify({ tree, threads, chunks: n, bytes: total, compressedBytes: out, wallS: wall }));
  await Promise.all(workers.map((w) => w.terminate()));
} else {
  const require = createRequire(import.meta.url);
  const { CCtx } = require('zstd-napi/binding');
  const ctx = new CCtx();
  const { data, sizes } = workerData;
  const dst = Buffer.allocUnsafe(CHUNK + 1024);
  parentPort.postMessage('ready');
  parentPort.once('message', () => {
    let off = 0;
    let out = 0;
    for (const s of sizes) {
      out += ctx.compress(dst, data.subarray(off, off + s), LEVEL);
      off += s;
    }
    parentPort.postMessage(out);
  });
}
