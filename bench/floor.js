#!/usr/bin/env node
// The stack's floor for a dir-rafs blob: what Node, piscina and our addon take for the work a
// build cannot skip, with none of the builder around it. The main thread walks (the addon's
// scanDir, as the dir source does) and hands piscina's workers batches of files; the workers read
// them (the addon's readFilesInto), blake3 every 1 MiB chunk and, with lz4_block, compress it
// (the addon's encoder, stored raw when it does not shrink); a writer thread hashes the blob
// (sha256) and writes it, in order. No tree, no dedup, no bootstrap, no command line: the time
// between this and `nydus-image create` is the builder's own.
//
//   node bench/floor.js TREE OUT none|lz4_block        (bench/run.js runs it as floor-*)
//
// Prints the blob's sha256, files and bytes on stderr. Not a build: OUT is a blob of chunks only.
// FLOOR_THREADS (default: one per core) and FLOOR_BATCH_KIB (default 2048) try other shapes.
// The build's own parts, from dist/ (`npm run bench` builds it first): the addon, the codecs, the
// threads' names and the pool's way of moving buffers back.
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { native } from '../dist/io/native.js';
import { compressorByName, digesterByName } from '../dist/algo/index.js';
import { nameThread } from '../dist/io/thread-name.js';
import { moved } from '../dist/pipeline/workers/transfer.js';

const SELF = fileURLToPath(import.meta.url);
const CHUNK = 1 << 20;
/** A batch: up to this many bytes of file data (the chunker's BATCH_BYTES) or BATCH_FILES files. */
const BATCH = (Number(process.env.FLOOR_BATCH_KIB) || 2048) << 10;
const BATCH_FILES = 512;
/** Batches in the pool, and buffers queued for the writer, at most. */
const IN_FLIGHT = 4;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
/** Numbers per entry of scanDir's stats (src/native/xattr.c SCAN_FIELDS). */
const FIELDS = 14;

let named = false;

/** Pool task: read the batch's files, blake3 every chunk, compress with lz4_block when asked. */
function chunkTask(t) {
  if (!named) {
    named = true;
    nameThread('nydus-chunks');
  }
  const digester = digesterByName('blake3');
  const lz4 = compressorByName('lz4_block');
  const data = new Uint8Array(t.data);
  const stop = native.readFilesInto(data, t.spans, t.paths, t.pathEnds, t.fds, 0);
  if (stop < t.fds.length) throw new Error(`read ${stop} of the batch failed`);
  const n = t.chunks.length / 2;
  const digests = new Uint8Array(32 * n);
  const out = t.out ? new Uint8Array(t.out) : undefined;
  let used = 0;
  for (let i = 0; i < n; i++) {
    const c = data.subarray(t.chunks[2 * i], t.chunks[2 * i] + t.chunks[2 * i + 1]);
    digests.set(digester.digest(c), 32 * i);
    if (!out) {
      used += c.length;
      continue;
    }
    // As the chunk workers store it: compressed when strictly smaller, else raw.
    const z = c.length > 1 ? lz4.compressInto(out.subarray(used, used + c.length - 1), c) : -1;
    if (z < 0) {
      out.set(c, used);
      used += c.length;
    } else {
      used += z;
    }
  }
  return moved({ data: t.data, out: t.out, used, digests }, [t.data, digests.buffer, ...(t.out ? [t.out] : [])]);
}

/** Writer thread: sha256 and write of each buffer in arrival order, the buffer sent back. */
function writerThread() {
  nameThread('nydus-writer');
  const hash = createHash('sha256');
  const fd = workerData.fd;
  parentPort.on('message', (m) => {
    if (m.end) {
      parentPort.postMessage({ digest: hash.digest('hex') });
      return;
    }
    const view = new Uint8Array(m.buf, 0, m.len);
    hash.update(view);
    for (let done = 0; done < m.len;) done += fs.writeSync(fd, view, done, m.len - done);
    parentPort.postMessage({ buf: m.buf }, [m.buf]);
  });
}

async function main() {
  const [tree, outFile, compressor] = process.argv.slice(2);
  if (!tree || !outFile || !['none', 'lz4_block'].includes(compressor)) {
    console.error('usage: node bench/floor.js TREE OUT none|lz4_block');
    process.exit(2);
  }
  const { Piscina } = await import('piscina');
  const threads = process.env.FLOOR_THREADS ? Number(process.env.FLOOR_THREADS) : os.availableParallelism();
  const pool = new Piscina({ filename: SELF, minThreads: threads, maxThreads: threads });
  const fd = fs.openSync(outFile, 'w');
  const writer = new Worker(SELF, { workerData: { role: 'writer', fd } });
  const spare = [];
  const buffer = () => spare.pop() ?? new ArrayBuffer(BATCH);
  let queued = 0;
  let wake;
  writer.on('message', (m) => {
    if (!m.buf) return;
    spare.push(m.buf);
    queued--;
    wake?.();
  });
  const tasks = [];
  /** The oldest batch's result, to the writer in submit order. */
  const writeOldest = async () => {
    const r = await tasks.shift();
    while (queued >= IN_FLIGHT) await new Promise((resolve) => (wake = resolve));
    queued++;
    const stored = r.out ?? r.data;
    if (r.out) spare.push(r.data);
    writer.postMessage({ buf: stored, len: r.used }, [stored]);
  };
  let batch;
  const open = () => (batch = { data: buffer(), used: 0, spans: [], paths: [], chunks: [] });
  const submit = async () => {
    const b = batch;
    open();
    if (b.paths.length === 0) return;
    const pathEnds = new Uint32Array(b.paths.length);
    let end = 0;
    b.paths.forEach((p, i) => (pathEnds[i] = end += p.length));
    const task = {
      data: b.data,
      out: compressor === 'lz4_block' ? buffer() : undefined,
      spans: new Float64Array(b.spans),
      paths: new Uint8Array(Buffer.concat(b.paths)),
      pathEnds,
      fds: new Int32Array(b.paths.length).fill(-1),
      chunks: new Uint32Array(b.chunks),
    };
    tasks.push(pool.run(task, { transferList: task.out ? [task.data, task.out] : [task.data] }));
    while (tasks.length >= IN_FLIGHT) await writeOldest();
  };
  open();
  let files = 0;
  let bytes = 0;
  const slash = Buffer.from('/');
  const addFile = async (file, size) => {
    for (let pos = 0; pos < size;) {
      if (batch.used === BATCH || batch.paths.length === BATCH_FILES) await submit();
      const len = Math.min(BATCH - batch.used, size - pos);
      batch.spans.push(batch.used, len, pos);
      batch.paths.push(file);
      for (let o = 0; o < len; o += CHUNK) batch.chunks.push(batch.used + o, Math.min(CHUNK, len - o));
      batch.used += len;
      pos += len;
    }
  };
  // Depth first, each directory's entries in name order: the dir source's order.
  const stack = [Buffer.from(tree.replace(/\/+$/, '') || '/')];
  while (stack.length > 0) {
    const dir = stack.pop();
    const [names, stats] = native.scanDir(dir);
    const subdirs = [];
    for (let k = 0, i = 0; k < names.length; i++) {
      const nul = names.indexOf(0, k);
      const file = Buffer.concat([dir, slash, names.subarray(k, nul)]);
      k = nul + 1;
      const type = stats[FIELDS * i] & S_IFMT;
      const size = stats[FIELDS * i + 3];
      if (type === S_IFDIR) subdirs.push(file);
      else if (type === S_IFLNK) fs.readlinkSync(file);
      else if (type === S_IFREG && size > 0) {
        files++;
        bytes += size;
        await addFile(file, size);
      }
    }
    for (let i = subdirs.length - 1; i >= 0; i--) stack.push(subdirs[i]);
  }
  await submit();
  while (tasks.length > 0) await writeOldest();
  const digest = await new Promise((resolve) => {
    writer.on('message', (m) => m.digest && resolve(m.digest));
    writer.postMessage({ end: true });
  });
  fs.closeSync(fd);
  console.error(`floor ${compressor}: sha256 ${digest}, ${files} files, ${bytes} bytes`);
  await Promise.all([writer.terminate(), pool.destroy()]);
}

if (isMainThread) {
  const fail = (e) => {
    console.error(`floor: ${e && e.stack ? e.stack : e}`);
    process.exit(1);
  };
  process.on('unhandledRejection', fail);
  main().catch(fail);
} else if (workerData?.role === 'writer') {
  writerThread();
}

export default chunkTask;
