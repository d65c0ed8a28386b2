// The blob's writer thread: hashes (sha256) and, given a file descriptor, writes the blob's bytes
// in the order they arrive, so neither costs the main thread. Buffers lent by the main thread
// come back by transfer once written, to be reused. Self-contained: crypto and fs only.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { nameThread } from '../thread-name.js';

export type WriterRequest =
  | { t: 'write'; id: number; buf: ArrayBuffer | SharedArrayBuffer; off: number; len: number; hashed: boolean; back: boolean }
  | { t: 'digest'; id: number; final: boolean };

export interface WriterReply {
  id: number;
  /** The lent buffer, back. */
  buf?: ArrayBuffer;
  digest?: Uint8Array;
  /** The first write that failed (later writes are skipped). */
  failure?: { code?: string; message: string };
}

if (parentPort) {
  const port = parentPort;
  const fd = (workerData as { fd: number }).fd;
  const hash = createHash('sha256');
  let failure: WriterReply['failure'];
  nameThread('nydus-writer');
  port.on('message', (m: WriterRequest) => {
    if (m.t === 'digest') {
      const digest = m.final ? hash.digest() : hash.copy().digest();
      port.postMessage({ id: m.id, digest, failure } satisfies WriterReply);
      return;
    }
    const view = new Uint8Array(m.buf, m.off, m.len);
    if (m.hashed) hash.update(view);
    if (fd >= 0 && !failure) {
      try {
        let done = 0;
        while (done < m.len) done += fs.writeSync(fd, view, done, m.len - done);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        failure = { code: err.code, message: err.message };
      }
    }
    // A shared buffer (back false) stays with the main thread: only the reply goes.
    port.postMessage({ id: m.id, buf: m.back ? (m.buf as ArrayBuffer) : undefined, failure } satisfies WriterReply, m.back ? [m.buf as ArrayBuffer] : []);
  });
}
