// Case generation: for case number i of a seed, which target, which seed input, which
// mutations, which flags. Everything comes from Rng(seed, i), and every path is relative to
// the slot directory, so a case is the same bytes and the same command wherever it runs.
import { Rng } from './prng.js';
import * as m from './mutate.js';
import * as v6 from './v6.js';

export const ALL_TARGETS = ['check', 'inspect', 'unpack', 'export', 'merge', 'create'];
const WEIGHTS = { check: 3, inspect: 2, unpack: 4, export: 2, merge: 1.5, create: 4 };
/** From -D case/blobs, this names the slot's canary; from create's case/out/blobs, one more level. */
export const CANARY_REL = '../../secret';

const REQUESTS = [
  'stats', 'ls', 'blobs', 'prefetch', 'cd sub', 'cd names', 'cd ..', 'cd /sub/deeper', 'stat hello.txt', 'stat big.bin', 'stat /sub/hard2',
  'stat ../../etc/passwd', 'chunk 0x0', 'chunk 0x1000', 'chunk 18446744073709551615', 'chunk -1', 'icheck 1', 'icheck 3', 'icheck 0',
  'icheck 99999999999', 'ls extra', '', 'bogus', 'cd evil', 'stat evil/pwn',
];

/** Embedded RAFS v6 bootstrap of an inline blob (stored uncompressed): its offset, or -1. */
function embeddedV6(b) {
  for (let at = b.indexOf(Buffer.from([0xe2, 0xe1, 0xf5, 0xe0])); at >= 0; at = b.indexOf(Buffer.from([0xe2, 0xe1, 0xf5, 0xe0]), at + 1)) {
    const start = at - 1024;
    if (start >= 0 && start % 512 === 0 && v6.isV6(b.subarray(start))) return start;
  }
  return -1;
}

function mutateBoot(rng, seed, ctx) {
  let b = seed.boot;
  const what = [];
  const n = rng.weighted([[6, 1], [3, 2], [1, 3]]);
  for (let k = 0; k < n; k++) {
    let r;
    if (seed.kind === 'v6' || seed.kind === 'tarfs') {
      r = rng.chance(0.8) ? m.mutateV6(rng, b, ctx) : m.generic(rng, b, ctx.other);
    } else if (seed.kind === 'inline') {
      const start = embeddedV6(b);
      const choice = rng.int(10);
      if (choice < 4 && start >= 0) {
        // A same-length structural mutation of the bootstrap inside the blob.
        const end = Math.min(b.length, start + Math.ceil((b.length - start) / 4096) * 4096);
        const inner = b.subarray(start, end);
        const mr = m.mutateV6(rng, Buffer.from(inner), ctx);
        if (mr.b.length === inner.length) {
          r = { b: Buffer.concat([b.subarray(0, start), mr.b, b.subarray(end)]), what: `inline bootstrap: ${mr.what}` };
        }
      } else if (choice < 8) r = m.mutateInlineTail(rng, b);
      r ??= m.generic(rng, b, ctx.other);
    } else {
      r = rng.chance(0.5) ? m.setInt(rng, b, {}) : m.generic(rng, b, ctx.other);
    }
    b = r.b;
    what.push(r.what);
  }
  return { b, what };
}

/**
 * Case i: { index, target, via: 'lib' | 'cli', files: [{rel, bytes}], dirs: [rel], spec, what: [..] }.
 * `seeds` from makeSeeds; `targets` the enabled targets.
 */
export function makeCase(seed, index, seeds, targets, cliFraction) {
  const rng = new Rng(seed, index);
  const target = rng.weighted(targets.map((t) => [Math.round(WEIGHTS[t] * 10), t]));
  const via = rng.chance(cliFraction) ? 'cli' : 'lib';
  const files = [];
  const dirs = ['case/in', 'case/blobs', 'case/out'];
  const what = [];
  const other = rng.pick(seeds.boots).boot;
  const ctx = { canaryRel: CANARY_REL, other };

  const bootInput = (allowKinds) => {
    const pool = seeds.boots.filter((s) => !allowKinds || allowKinds.includes(s.kind));
    const s = rng.pick(pool);
    what.push(`seed ${s.name}`);
    let boot = s.boot;
    const mode = rng.weighted([[85, 'boot'], [10, 'blob'], [5, 'none']]);
    if (mode === 'boot') {
      const r = mutateBoot(rng, s, ctx);
      boot = r.b;
      what.push(...r.what);
    }
    const rel = `case/in/${s.file}`;
    files.push({ rel, bytes: boot });
    for (const bl of s.blobs) {
      let bytes = bl.bytes;
      let src = bl.path;
      if (mode === 'blob' && bl === s.blobs[0]) {
        const r = s.kind === 'inline' && rng.chance(0.5) ? m.mutateInlineTail(rng, bytes) : m.generic(rng, bytes);
        bytes = r.b;
        src = undefined;
        what.push(`blob ${bl.id.slice(0, 12)}: ${r.what}`);
      }
      files.push({ rel: `case/blobs/${bl.id}`, bytes, src });
    }
    return { rel, seed: s };
  };

  let opts;
  let chain;
  if (target === 'check') {
    const { rel, seed: s } = bootInput();
    opts = { bootstrap: rel, verbose: rng.chance(0.3) };
    const loc = rng.weighted([[5, 'dir'], [2, 'blob'], [3, 'none']]);
    if (loc === 'dir') opts.blobDir = 'case/blobs';
    if (loc === 'blob' && s.blobs.length) opts.blob = `case/blobs/${s.blobs[0].id}`;
  } else if (target === 'inspect') {
    const { rel } = bootInput();
    opts = { bootstrap: rel };
    if (rng.chance(0.6)) opts.request = rng.pick(REQUESTS);
  } else if (target === 'unpack') {
    const { rel, seed: s } = bootInput();
    opts = { bootstrap: rel, output: 'case/out/out.tar', verify: rng.chance(0.3) };
    if (rng.chance(0.8) || !s.blobs.length) opts.blobDir = 'case/blobs';
    else opts.blob = `case/blobs/${s.blobs[0].id}`;
  } else if (target === 'export') {
    const { rel } = bootInput(['v6', 'tarfs', 'inline']);
    opts = { bootstrap: rel, blobDir: 'case/blobs', verity: rng.chance(0.3) };
    if (rng.chance(0.7)) opts.output = 'case/out/disk';
  } else if (target === 'merge') {
    const n = rng.range(1, 3);
    const sources = [];
    for (let k = 0; k < n; k++) {
      const s = rng.pick(seeds.boots.filter((x) => x.kind !== 'v5'));
      let b = s.boot;
      if (rng.chance(0.7)) {
        const r = mutateBoot(rng, s, ctx);
        b = r.b;
        what.push(`layer ${k} (${s.name}): ${r.what.join('; ')}`);
      } else what.push(`layer ${k} (${s.name})`);
      const rel = `case/in/layer${k}-${s.file}`;
      files.push({ rel, bytes: b });
      sources.push(rel);
    }
    opts = { sources, bootstrap: 'case/out/merged' };
  } else {
    const type = rng.weighted([[5, 'tar-rafs'], [3, 'targz-rafs'], [3, 'tar-tarfs']]);
    let bytes;
    let plain;
    if (type === 'targz-rafs') {
      const g = rng.pick(seeds.gzips);
      what.push(`seed ${g.name}`);
      const r = rng.chance(0.9) ? m.mutateGzip(rng, g.bytes, g.plain) : { b: g.bytes, what: 'unmutated' };
      plain = g.plain;
      bytes = r.b;
      what.push(r.what);
    } else {
      const t = rng.pick(seeds.tars);
      what.push(`seed ${t.name}`);
      bytes = t.bytes;
      const n = rng.weighted([[6, 1], [3, 2], [1, 3]]);
      for (let k = 0; k < n; k++) {
        const r = m.mutateTar(rng, bytes, { other: rng.pick(seeds.tars).bytes });
        bytes = r.b;
        what.push(r.what);
      }
    }
    files.push({ rel: 'case/in/layer.tar', bytes, plain });
    dirs.push('case/out/blobs');
    opts = { source: 'case/in/layer.tar', type };
    const out = rng.weighted([[7, 'boot'], [2, 'inline'], [1, 'cache']]);
    if (out === 'boot' || type === 'tar-tarfs') {
      opts.bootstrap = 'case/out/boot';
      opts.blobDir = 'case/out/blobs';
    } else if (out === 'inline') {
      opts.blobDir = 'case/out/blobs';
      opts.blobInlineMeta = true;
      opts.blobToc = rng.chance(0.5);
    } else {
      dirs.push('case/out/cache');
      opts.bootstrap = 'case/out/boot';
      opts.blobCacheDir = 'case/out/cache';
    }
    if (type !== 'tar-tarfs' && !opts.blobCacheDir && rng.chance(0.5)) opts.compressor = rng.pick(['zstd', 'none', 'lz4_block']);
    if (rng.chance(0.5)) opts.chunkSize = 0x1000;
    if (!opts.blobInlineMeta && rng.chance(0.1)) {
      opts.blobId = rng.pick(['../../../secret', '../../secret', '/proc/self/cwd/secret', '..', 'a/b', '../in/layer.tar', 'x'.repeat(64)]);
      what.push(`--blob-id ${JSON.stringify(opts.blobId)}`);
    }
    if (!opts.blobCacheDir) chain = { output: 'case/out/created.tar', blobDir: 'case/out/blobs' };
  }
  return { index, target, via, files, dirs, spec: { target, opts }, chain, what };
}
