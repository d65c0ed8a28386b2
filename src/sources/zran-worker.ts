// The inflater of targz-ref on its own thread (src/sources/zran.ts): it reads the .tar.gz (a
// file or FIFO it opens itself, or pieces the main thread posts), hashes it, inflates it with the
// native boundary-reporting inflater and posts each output piece with the boundaries met, while
// the main thread parses the tar and indexes. Output buffers go back and forth by transfer; the
// worker holds at most `cap` of them out at once (the main thread grants more when its index
// must keep more), so memory stays bounded however far ahead the inflater could run.
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { native } from '../io/native.js';
import { setPipeSize } from '../io/xattr.js';

export interface ZranWorkerData {
  /** A file or FIFO to read; without it, input pieces come as 'in' messages. */
  file?: string;
  piece: number;
  cap: number;
}

export type ToWorker =
  | { t: 'in'; buf: ArrayBuffer; len: number }
  | { t: 'end' }
  /** A piece given back; segs: [chunk id, offset in the piece, length, chunk size] per chunk part it holds. */
  | { t: 'free'; buf: ArrayBuffer; segs?: Float64Array }
  | { t: 'grant'; n: number }
  | { t: 'finish' };

export type FromWorker =
  | { t: 'out'; buf: ArrayBuffer; len: number; pts: Float64Array; n: number }
  | { t: 'inack' }
  /** sha256 of whole chunks: 32 bytes each in data, in the order of ids. */
  | { t: 'digests'; ids: Float64Array; data: ArrayBuffer }
  | { t: 'hashed' }
  | { t: 'end'; digest: string; inBytes: number; between: boolean; head: number }
  | { t: 'err'; kind: 'corrupt' | 'notgzip' | 'fs' | 'stall'; message: string; at: number; code?: string };

const READ_SIZE = 1 << 20;
const MAX_POINTS = 4096;
const GZIP_MAGIC = [0x1f, 0x8b, 0x08];

const port = parentPort!;
const data = workerData as ZranWorkerData;
const free: ArrayBuffer[] = [];
let out = 0;
let cap = data.cap;
let wake: (() => void) | undefined;
const inputs: Array<{ buf: Buffer } | 'end'> = [];

// Chunk digests: the main thread cuts chunks and gives each piece back with the chunk parts it
// holds, in output order, so the hashing happens here, beside the inflate, not on its thread.
const hashing = new Map<number, { hash: ReturnType<typeof createHash>; left: number }>();
let doneIds: number[] = [];
let doneDigests: Buffer[] = [];

function flushDigests(): void {
  if (doneIds.length === 0) return;
  const ids = Float64Array.from(doneIds);
  const data = Buffer.concat(doneDigests);
  const ab = data.buffer.slice(data.byteOffset, data.byteOffset + data.length) as ArrayBuffer;
  port.postMessage({ t: 'digests', ids, data: ab } satisfies FromWorker, [ids.buffer, ab]);
  doneIds = [];
  doneDigests = [];
}

function hashSegments(buf: ArrayBuffer, segs: Float64Array): void {
  for (let k = 0; k + 3 < segs.length; k += 4) {
    const id = segs[k];
    let h = hashing.get(id);
    if (!h) {
      h = { hash: createHash('sha256'), left: segs[k + 3] };
      hashing.set(id, h);
    }
    h.hash.update(new Uint8Array(buf, segs[k + 1], segs[k + 2]));
    h.left -= segs[k + 2];
    if (h.left === 0) {
      hashing.delete(id);
      doneIds.push(id);
      doneDigests.push(h.hash.digest());
    }
  }
  if (doneIds.length >= 1024) flushDigests();
}

port.on('message', (m: ToWorker) => {
  if (m.t === 'free') {
    if (m.segs) hashSegments(m.buf, m.segs);
    free.push(m.buf);
    out--;
  } else if (m.t === 'finish') {
    flushDigests();
    port.postMessage({ t: 'hashed' } satisfies FromWorker);
    return;
  } else if (m.t === 'grant') cap += m.n;
  else if (m.t === 'in') inputs.push({ buf: Buffer.from(m.buf, 0, m.len) });
  else inputs.push('end');
  const w = wake;
  wake = undefined;
  w?.();
});

const waitMessage = () => new Promise<void>((resolve) => (wake = resolve));

async function* posted(): AsyncGenerator<Buffer> {
  for (;;) {
    while (inputs.length === 0) await waitMessage();
    const m = inputs.shift()!;
    if (m === 'end') return;
    yield m.buf;
    port.postMessage({ t: 'inack' } satisfies FromWorker);
  }
}

async function* fromFile(file: string): AsyncGenerator<Buffer> {
  const fh = await fs.promises.open(file, 'r');
  try {
    if ((await fh.stat()).isFIFO()) setPipeSize(fh.fd, READ_SIZE);
    const buf = Buffer.allocUnsafeSlow(READ_SIZE);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

async function main(): Promise<void> {
  const h = native.zranNew();
  const hash = createHash('sha256');
  const res = new Float64Array(4);
  const pts = new Float64Array(MAX_POINTS * 4);
  let inBytes = 0;
  let inTotal = 0;
  let head = 0;
  let between = true;
  const fail = (m: Omit<Extract<FromWorker, { t: 'err' }>, 't'>) => port.postMessage({ t: 'err', ...m } satisfies FromWorker);
  try {
    for await (const piece of data.file !== undefined ? fromFile(data.file) : posted()) {
      for (let i = 0; i < piece.length && head < 3; i++, head++) {
        if (piece[i] !== GZIP_MAGIC[head]) return fail({ kind: 'notgzip', message: 'not a gzip stream', at: head });
      }
      hash.update(piece);
      inBytes += piece.length;
      let used = 0;
      while (used < piece.length) {
        while (out >= cap) await waitMessage();
        const buf = free.pop() ?? new ArrayBuffer(data.piece);
        try {
          native.zranRun(h, piece.subarray(used), new Uint8Array(buf), pts, res);
        } catch (e) {
          free.push(buf);
          return fail({ kind: 'corrupt', message: (e as Error).message, at: inTotal });
        }
        const [inUsed, outUsed, n] = res;
        between = res[3] === 1;
        used += inUsed;
        inTotal += inUsed;
        if (outUsed === 0 && n === 0) {
          free.push(buf);
          if (inUsed === 0) return fail({ kind: 'stall', message: 'the inflater makes no progress', at: inTotal });
          continue;
        }
        out++;
        // Only the points written travel (a copy the size of what was met).
        const sent = pts.slice(0, n * 4);
        port.postMessage({ t: 'out', buf, len: outUsed, pts: sent, n } satisfies FromWorker, [buf, sent.buffer]);
      }
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return fail({ kind: 'fs', message: err.message, at: inTotal, code: err.code });
  }
  port.postMessage({ t: 'end', digest: hash.digest('hex'), inBytes, between, head } satisfies FromWorker);
}

void main();
