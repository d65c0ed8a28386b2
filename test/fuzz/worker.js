// The long-lived worker: takes cases over IPC, runs each through the library in this process
// and reports how it ended. The supervisor kills and restarts it on a crash, hang or memory cap.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInProcess } from './targets.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist');
const lib = {
  ...(await import(path.join(DIST, 'index.js'))),
  ...(await import(path.join(DIST, 'read/inspect.js'))),
  ...(await import(path.join(DIST, 'builder/merge.js'))),
};
const { NydusError } = lib;

function describe(e) {
  const err = e instanceof Error ? e : new Error(String(e));
  const cause = err.cause instanceof Error ? { name: err.cause.name, message: String(err.cause.message).split('\n')[0], code: err.cause.code, nydus: err.cause instanceof NydusError } : undefined;
  return {
    nydus: e instanceof NydusError,
    name: err.name,
    code: e?.code,
    exit: e?.exit,
    message: String(err.message),
    stack: String(err.stack ?? '').split('\n').slice(0, 12).join('\n'),
    cause,
  };
}

let current;
const report = (kind, e) => process.send?.({ type: 'async', kind, case: current, err: describe(e) });
process.on('uncaughtException', (e) => report('uncaught', e));
process.on('unhandledRejection', (e) => report('unhandled-rejection', e));

process.on('message', async (msg) => {
  if (msg.type !== 'case') return;
  current = msg.id;
  const res = { type: 'result', id: msg.id, ok: true, texts: [], chain: undefined };
  try {
    const r = await runInProcess(lib, msg.spec);
    res.texts = r.texts.map((t) => (t.length > 4 << 20 ? t.slice(0, 4 << 20) : t));
    if (r.created && msg.chain) {
      // What create wrote, every reader of ours must read.
      const c = msg.chain;
      const boot = r.created.bootstrap || r.created.blobPath;
      try {
        lib.check(boot, { blobDir: c.blobDir });
        await lib.unpack({ bootstrap: boot, blobDir: c.blobDir, output: c.output });
        res.chain = { ok: true };
      } catch (e) {
        res.chain = { ok: false, err: describe(e) };
      }
    }
  } catch (e) {
    res.ok = false;
    res.err = describe(e);
  }
  process.send(res);
});
process.send({ type: 'ready' });
