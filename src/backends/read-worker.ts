// The worker behind SyncBlobReader: opens the backend and answers size and range requests,
// waking the blocked caller through the shared control word.
import { parentPort, workerData } from 'node:worker_threads';
import { openBackend, type BackendSpec } from './index.js';

interface Request {
  op: 'size' | 'read' | 'where';
  id: string;
  offset?: number;
  length?: number;
  control: SharedArrayBuffer;
  data: SharedArrayBuffer;
}

const backend = openBackend(workerData as BackendSpec);
backend.catch(() => undefined);

/** The request being answered: an error escaping every await still wakes its caller. */
let failCurrent: ((e: unknown) => void) | undefined;
const fatal = (e: unknown) => failCurrent?.(e);
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

parentPort!.on('message', (r: Request) => {
  const ctrl = new Int32Array(r.control);
  const data = Buffer.from(r.data);
  const answer = (status: number, value: number) => {
    failCurrent = undefined;
    // [1]: result (size, or bytes written); [0]: 1 done, 2 failed (message in data, length in [1]).
    Atomics.store(ctrl, 1, value);
    Atomics.store(ctrl, 0, status);
    Atomics.notify(ctrl, 0);
  };
  const fail = (e: unknown) => {
    const msg = Buffer.from(String((e as Error)?.message ?? e).split('\n')[0]!.slice(0, 1000));
    answer(2, msg.copy(data, 0, 0, Math.min(msg.length, data.length)));
  };
  failCurrent = fail;
  (async () => {
    const b = await backend;
    if (r.op === 'where') {
      const text = Buffer.from(b.where(r.id));
      answer(1, text.copy(data, 0, 0, Math.min(text.length, data.length)));
    } else if (r.op === 'size') {
      const n = await b.size(r.id);
      answer(1, n === undefined ? -1 : n);
    } else {
      const got = await b.rangeGet(r.id, r.offset!, r.length!);
      got.copy(data, 0);
      answer(1, got.length);
    }
  })().catch(fail);
});
