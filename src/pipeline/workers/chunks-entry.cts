// The pool's worker entry, in CommonJS on purpose. piscina loads a worker file with require()
// first; on Node 20 a require() of an ES module that is cut short (the pool terminating a worker
// still loading it, as a short build does) aborts the whole process with a V8 fatal error. The
// worker's ES module is loaded here with import(), which a termination ends cleanly.
type Worker = typeof import('./chunks.js');

const worker: Promise<Worker> = import('./chunks.js');

export = {
  read: async (t: Parameters<Worker['read']>[0]) => (await worker).read(t),
  digest: async (t: Parameters<Worker['digest']>[0]) => (await worker).digest(t),
  compress: async (t: Parameters<Worker['compress']>[0]) => (await worker).compress(t),
};
