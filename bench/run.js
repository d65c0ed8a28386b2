#!/usr/bin/env node
// Benchmark: `nydus-image create` (ours) against mkfs.erofs and tar|zstd on one tree.
//
//   node bench/run.js [TREE] [--json]        (TREE also from BENCH_TREE; default /usr/share)
//
// Environment:
//   BENCH_TREE       tree to build from (argv wins)
//   BENCH_RUNS       runs per scenario (default 5): median with min-max; run in rounds, each
//                    round running every scenario once, the order rotated by one per round
//   BENCH_OURS_CMD   override of the "ours" command line, run with `sh -c`; placeholders
//                    {out} (per-scenario output dir), {tree}, {root} (repo root), {node}
//   BENCH_SCENARIOS  comma list of scenario names to run (also turns on disabled ones)
//   BENCH_TIMEOUT    seconds after which a run is killed (default: none)
//   BENCH_TMPDIR     parent of the scratch dir (default os.tmpdir(), i.e. /tmp)
//   BENCH_WARM       'data' (default): warm-up walk also reads file contents; 'meta': metadata only
//   BENCH_FLOOR      '0' skips bench/zstd-floor.js (zstd-3 of the tree's chunks alone, on all cores)
//   BENCH_TIME_BIN   path of GNU time (default /usr/bin/time; a missing path exercises the fallback)
//   BENCH_BASE_ROOT  another built checkout: adds scenarios base, base-lz4, base-none (its builds)
//
// Each command is wrapped in `/usr/bin/time -o <file> -f '%e %M'` (wall s, peak RSS KiB;
// for a `sh -c` pipeline the peak is the max over the shell and its reaped children).
// Without /usr/bin/time, wall comes from process.hrtime and RSS is reported as n/a.
// Exit code is 0 regardless of results: this is a benchmark, not a test.

import { spawn, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MB, TIME_BIN, fill, fmt, haveTime, median, outputSize, shq, showArgv, table, timedRun, walkTree } from './lib.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// ---------------------------------------------------------------- scenarios
//
// A scenario: { name, enabled, command(ctx) -> { argv, discardStdout? }, setup?(ctx), teardown?(ctx) }
// ctx = { tree, out (fresh empty dir per run), scratch (the bench's dir, kept across runs), root, node,
// state (per-run scratch object) }.
// `argv` is spawned directly (use ['sh', '-c', ...] for pipelines). setup may start helper
// processes (store them in ctx.state); teardown must reap them. Outputs in ctx.out are
// summed as "output size" and deleted after each run.

const SCENARIOS = [
  {
    name: 'ours',
    desc: 'nydus-image create -t dir-rafs (zstd, blake3, 1 MiB chunks)',
    enabled: true,
    ours: true,
    command: (c) =>
      process.env.BENCH_OURS_CMD
        ? { argv: ['sh', '-c', fill(process.env.BENCH_OURS_CMD, c)] }
        : {
            argv: [
              c.node, path.join(c.root, 'bin/nydus-image.js'), 'create',
              '-t', 'dir-rafs',
              '-B', path.join(c.out, 'boot'),
              '-b', path.join(c.out, 'blob'),
              '--log-level', 'warn',
              c.tree,
            ],
          },
  },
  {
    // Issue 14: with lz4_block, at most 0.6 x mkfs.erofs -zlz4.
    name: 'ours-lz4',
    desc: 'nydus-image create -t dir-rafs --compressor lz4_block',
    enabled: true,
    command: (c) => oursWith(c, ['--compressor', 'lz4_block']),
  },
  {
    // Issue 14: without compression, at most 1.5 x `tar -cf - | cat > file`.
    name: 'ours-none',
    desc: 'nydus-image create -t dir-rafs --compressor none',
    enabled: true,
    command: (c) => oursWith(c, ['--compressor', 'none']),
  },
  // BENCH_BASE_ROOT=DIR (another checkout of this repo, built): the same three builds from it, in
  // the same rounds, so a change is measured against what it changes under the same load.
  ...['', '-lz4', '-none'].map((suffix) => ({
    name: `base${suffix}`,
    desc: `ours${suffix} from the checkout in BENCH_BASE_ROOT`,
    enabled: !!process.env.BENCH_BASE_ROOT,
    base: true,
    command: (c) => oursWith({ ...c, root: path.resolve(process.env.BENCH_BASE_ROOT || '.') },
      suffix === '-lz4' ? ['--compressor', 'lz4_block'] : suffix === '-none' ? ['--compressor', 'none'] : []),
  })),
  // The stack's floor (bench/floor.js): the same walk, reads, blake3, LZ4 and blob sha256 on the
  // same threads, with no tree, dedup, bootstrap or command line. What ours takes beyond it is the
  // builder's own; what it takes itself, no builder on this stack goes under.
  ...['lz4_block', 'none'].map((compressor) => ({
    name: `floor-${compressor === 'none' ? 'none' : 'lz4'}`,
    desc: `bench/floor.js ${compressor}: blob only (walk, read, blake3, compress, sha256, write)`,
    enabled: true,
    command: (c) => ({ argv: [c.node, path.join(c.root, 'bench/floor.js'), c.tree, path.join(c.out, 'blob'), compressor] }),
  })),
  {
    name: 'mkfs.erofs',
    desc: 'mkfs.erofs -zlz4',
    enabled: true,
    ref: 'erofs',
    // mkfs.erofs prints a progress line per file: never let it reach the terminal.
    command: (c) => ({ argv: ['mkfs.erofs', '-zlz4', path.join(c.out, 'ref.img'), c.tree], discardStdout: true }),
  },
  {
    name: 'tar|zstd',
    desc: 'tar -cf - | zstd -1 -T0',
    enabled: true,
    ref: 'tarzstd',
    command: (c) => ({
      argv: ['sh', '-c', `tar -cf - -C ${shq(c.tree)} . | zstd -1 -T0 -q -o ${shq(path.join(c.out, 'ref.tar.zst'))}`],
    }),
  },
  {
    // The reference for --compressor none: every byte read and written once, nothing computed.
    name: 'tar|cat',
    desc: 'tar -cf - | cat > file',
    enabled: true,
    ref: 'tarcat',
    command: (c) => ({ argv: ['sh', '-c', `tar -cf - -C ${shq(c.tree)} . | cat > ${shq(path.join(c.out, 'ref.tar'))}`] }),
  },
  {
    // tar-rafs from a FIFO: the converter's path. Issue 3 target: at least 80% of the dir-rafs
    // throughput. The FIFO is fed by `cat` of a tar of the same tree written once before the
    // first run (untimed, like the page-cache warm-up), so the wall time is what it takes us to
    // consume the stream: in the converter the tar arrives already made (containerd writes the
    // layer into the FIFO). The feeder runs outside /usr/bin/time: wall includes waiting on it,
    // RSS does not.
    name: 'tar-rafs-fifo',
    desc: 'nydus-image create -t tar-rafs from a FIFO fed by cat of a tar of the tree',
    enabled: true,
    command: (c) => tarRafsCommand(c),
    setup: (c) => startFeeder(c, `cat ${shq(premadeTar(c))}`),
    teardown: (c) => stopFeeder(c),
  },
  {
    // The same with `tar -cf -` of the tree running live as the feeder: on 2 cores GNU tar's own
    // CPU time (about 1.5 s for /usr/share) competes with the build, so this is tar + us.
    name: 'tar-rafs-fifo-live',
    desc: 'nydus-image create -t tar-rafs from a FIFO fed by a live tar -cf - of the tree',
    enabled: true,
    command: (c) => tarRafsCommand(c),
    setup: (c) => startFeeder(c, `tar -cf - -C ${shq(c.tree)} .`),
    teardown: (c) => stopFeeder(c),
  },
  {
    // Issue 15: targz-ref (the converter's --oci-ref call) of a tar.gz of the tree, made once before
    // the first run (untimed), read once: inflate with block boundaries, tar parse, sha256 of
    // every chunk and of the .tar.gz, ZRAN contexts, the meta-only ref blob. Target: wall
    // <= 1.3 x `gzip -dc` of the same file (next scenario), peak RSS < 300 MB.
    name: 'targz-ref',
    desc: 'nydus-image create -t targz-ref (converter flags) of a tar.gz of the tree',
    enabled: true,
    bytes: (c) => fs.statSync(premadeTarGz(c)).size,
    command: (c) => ({
      argv: [
        c.node, path.join(c.root, 'bin/nydus-image.js'), 'create',
        '--log-level', 'warn', '--type', 'targz-ref', '--blob-inline-meta', '--features', 'blob-toc',
        '--blob', path.join(c.out, 'blob.rafs'),
        premadeTarGz(c),
      ],
    }),
  },
  {
    name: 'gzip -dc',
    desc: 'gzip -dc > /dev/null of the same tar.gz',
    enabled: true,
    ref: 'gzipdc',
    bytes: (c) => fs.statSync(premadeTarGz(c)).size,
    command: (c) => ({ argv: ['gzip', '-dc', premadeTarGz(c)], discardStdout: true }),
  },
  {
    // Issue 4: export --block streams. The image (EXPORT_FILES random files of EXPORT_FILE_MIB,
    // built with --compressor none, so the disk is over 1 GiB) is made once before the first
    // run, untimed. MB/s here is the disk's bytes / wall.
    name: 'export-block',
    desc: 'nydus-image export --block of a >1 GiB native image',
    enabled: true,
    bytes: (c) => exportImage(c).diskBytes,
    command: (c) => exportCommand(c, false),
  },
  {
    name: 'export-verity',
    desc: 'nydus-image export --block --verity of the same image',
    enabled: true,
    bytes: (c) => exportImage(c).diskBytes,
    command: (c) => exportCommand(c, true),
  },
  {
    // The reference for export: cp of a file as large as the disk (the image's blob).
    name: 'cp',
    desc: 'cp of a file as large as the export disk',
    enabled: true,
    ref: 'cp',
    bytes: (c) => exportImage(c).diskBytes,
    command: (c) => {
      const img = exportImage(c);
      return { argv: ['cp', img.copySource, path.join(c.out, 'copy')] };
    },
  },
  {
    // cp copies in the kernel (copy_file_range); dd moves every byte through user space, as export does.
    name: 'dd',
    desc: 'dd bs=1M of a file as large as the export disk',
    enabled: true,
    ref: 'dd',
    bytes: (c) => exportImage(c).diskBytes,
    command: (c) => ({ argv: ['dd', `if=${exportImage(c).copySource}`, `of=${path.join(c.out, 'copy')}`, 'bs=1M', 'status=none'] }),
  },
  {
    // The reference for --verity: veritysetup hashing a file as large as the disk with the same options.
    name: 'veritysetup',
    desc: 'veritysetup format (512-byte data blocks) of a file as large as the export disk',
    enabled: true,
    ref: 'veritysetup',
    bytes: (c) => exportImage(c).diskBytes,
    command: (c) => ({
      argv: [
        'veritysetup', 'format', '--no-superblock', '--format=1', '-s', '', '--hash=sha256',
        '--data-block-size=512', '--hash-block-size=4096', exportImage(c).copySource, path.join(c.out, 'hash'),
      ],
      discardStdout: true,
    }),
  },
];

/** `create -t dir-rafs` of the tree with extra flags. */
function oursWith(c, extra) {
  return {
    argv: [
      c.node, path.join(c.root, 'bin/nydus-image.js'), 'create', '-t', 'dir-rafs', ...extra,
      '-B', path.join(c.out, 'boot'), '-b', path.join(c.out, 'blob'), '--log-level', 'warn', c.tree,
    ],
  };
}

const EXPORT_FILES = 3;
const EXPORT_FILE_MIB = 400;

/**
 * The export benchmark's image, made on first use in the scratch dir: random files (nothing to
 * dedup), built with --compressor none, then exported once to learn the disk's size; copySource
 * is a file of that size for the cp reference.
 */
function exportImage(c) {
  const dir = path.join(c.scratch, 'export');
  const state = path.join(dir, 'state.json');
  if (fs.existsSync(state)) return JSON.parse(fs.readFileSync(state, 'utf8'));
  const src = path.join(dir, 'src');
  fs.mkdirSync(src, { recursive: true });
  const piece = Buffer.allocUnsafe(4 * MB);
  for (let i = 0; i < EXPORT_FILES; i++) {
    const fd = fs.openSync(path.join(src, `random-${i}`), 'w');
    for (let n = 0; n < EXPORT_FILE_MIB; n += 4) fs.writeSync(fd, crypto.randomFillSync(piece));
    fs.closeSync(fd);
  }
  const bin = path.join(c.root, 'bin/nydus-image.js');
  const boot = path.join(dir, 'boot');
  const blobs = path.join(dir, 'blobs');
  fs.mkdirSync(blobs);
  execFileSync(c.node, [bin, 'create', '-t', 'dir-rafs', '--compressor', 'none', '-B', boot, '-D', blobs, '--log-level', 'warn', src]);
  const probe = path.join(dir, 'probe.disk');
  execFileSync(c.node, [bin, 'export', '--block', '-B', boot, '-D', blobs, '-O', probe, '--log-level', 'warn']);
  const diskBytes = fs.statSync(probe).size;
  const copySource = path.join(dir, 'copy-source');
  fs.renameSync(probe, copySource);
  fs.rmSync(src, { recursive: true, force: true });
  const img = { boot, blobs, diskBytes, copySource };
  fs.writeFileSync(state, JSON.stringify(img));
  return img;
}

function exportCommand(c, verity) {
  const img = exportImage(c);
  return {
    argv: [
      c.node, path.join(c.root, 'bin/nydus-image.js'), 'export', '--block',
      '-B', img.boot, '-D', img.blobs, '-O', path.join(c.out, 'disk'), '--log-level', 'warn',
      ...(verity ? ['--verity'] : []),
    ],
    discardStdout: true,
  };
}

function tarRafsCommand(c) {
  return {
    argv: [
      c.node, path.join(c.root, 'bin/nydus-image.js'), 'create',
      '-t', 'tar-rafs',
      '-B', path.join(c.out, 'boot'),
      '-b', path.join(c.out, 'blob'),
      '--log-level', 'warn',
      c.state.fifo,
    ],
  };
}

/** A tar of the tree in the scratch dir, written on first use and kept for every later run. */
/** A tar.gz of the tree (gzip -6, as container layers usually are), made once per bench. */
function premadeTarGz(c) {
  const file = path.join(c.scratch, 'tree.tar.gz');
  if (!fs.existsSync(file)) {
    execFileSync('sh', ['-c', `tar -cf - -C ${shq(c.tree)} . | gzip -6 > ${shq(`${file}.tmp`)} && mv ${shq(`${file}.tmp`)} ${shq(file)}`]);
  }
  return file;
}

function premadeTar(c) {
  const file = path.join(c.scratch, 'tree.tar');
  if (!fs.existsSync(file)) {
    execFileSync('sh', ['-c', `tar -cf ${shq(`${file}.tmp`)} -C ${shq(c.tree)} . && mv ${shq(`${file}.tmp`)} ${shq(file)}`]);
  }
  return file;
}

function startFeeder(c, producer) {
  c.state.fifo = path.join(path.dirname(c.out), `${path.basename(c.out)}.fifo`);
  execFileSync('mkfifo', [c.state.fifo]);
  // Blocks in open() until the timed command opens the FIFO for reading.
  c.state.feeder = spawn('sh', ['-c', `${producer} > ${shq(c.state.fifo)}`], {
    stdio: ['ignore', 'ignore', 'ignore'],
    detached: true,
  });
  c.state.feederDone = new Promise((res) => c.state.feeder.on('exit', (code, sig) => res({ code, sig })));
}

async function stopFeeder(c) {
  const f = c.state.feeder;
  if (f && f.exitCode === null && f.signalCode === null) {
    // Reader gone; unblock a feeder stuck in open() by opening the read side, then kill.
    try { process.kill(-f.pid, 'SIGTERM'); } catch {}
    try { const fd = fs.openSync(c.state.fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK); fs.closeSync(fd); } catch {}
  }
  if (c.state.feederDone) await c.state.feederDone;
  try { fs.unlinkSync(c.state.fifo); } catch {}
}

// ---------------------------------------------------------------- running

/** A scenario's results so far: one entry per run, and the failure that stopped it. */
function newResult(sc) {
  return { name: sc.name, desc: sc.desc, runs: [], ok: true, err: '' };
}

/** Runs scenario sc once (run number i), appending to res. */
async function runOnce(sc, res, i, { tree, scratch }) {
  const logDir = path.join(scratch, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  const out = path.join(scratch, `${sc.name.replace(/[^\w.-]/g, '_')}.${i}`);
  fs.mkdirSync(out, { recursive: true });
  const ctx = { tree, out, scratch, root: ROOT, node: process.execPath, state: {} };
  let r;
  try {
    if (sc.setup) await sc.setup(ctx);
    const cmd = sc.command(ctx);
    // Every run starts with no dirty pages left by earlier ones: writeback of the GBs the
    // scenarios before it wrote would otherwise throttle this run's writes.
    execFileSync('sync');
    if (sc.bytes) res.bytes = sc.bytes(ctx);
    res.cmd = showArgv(cmd.argv);
    r = await timedRun(cmd.argv, { cwd: ROOT, logDir, discardStdout: cmd.discardStdout });
  } catch (e) {
    r = { ok: false, err: `setup/command error: ${e && e.message ? e.message : e}` };
  }
  try {
    if (sc.teardown) await sc.teardown(ctx);
  } catch (e) {
    if (r.ok) r = { ...r, ok: false, err: `teardown error: ${e.message}` };
  }
  r.outBytes = outputSize(out);
  fs.rmSync(out, { recursive: true, force: true });
  res.runs.push(r);
  if (!r.ok) {
    res.ok = false; // a failing command is not repeated
    res.err = r.err;
  }
}

/** Median, min and max of the runs' walls and peak RSS (the peak over all runs too). */
function summarize(res) {
  if (!res.ok) return res;
  const walls = res.runs.map((r) => r.wall).filter((x) => x != null && Number.isFinite(x));
  const rss = res.runs.map((r) => r.rssKiB).filter((x) => x != null);
  res.wall = median(walls);
  res.wallMin = Math.min(...walls);
  res.wallMax = Math.max(...walls);
  res.rssKiB = median(rss);
  res.rssMaxKiB = rss.length ? Math.max(...rss) : null;
  res.outBytes = median(res.runs.map((r) => r.outBytes));
  return res;
}

/** Round r's order: the scenarios rotated by r, so none always runs first (or after the same one). */
function rotated(list, r) {
  const k = list.length ? r % list.length : 0;
  return [...list.slice(k), ...list.slice(0, k)];
}

// ---------------------------------------------------------------- output

/** bench/zstd-floor.js on the tree: the wall time of its compression alone, or null if it fails. */
function zstdFloor(tree) {
  process.stderr.write('  measuring the zstd floor ...');
  try {
    const out = execFileSync(process.execPath, [path.join(ROOT, 'bench/zstd-floor.js'), tree], { encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').pop());
    process.stderr.write(` ${fmt(r.wallS)} s\n`);
    return r;
  } catch (e) {
    process.stderr.write(` failed: ${e.message}\n`);
    return null;
  }
}

async function main() {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const positional = args.filter((a) => !a.startsWith('--'));
  const tree = path.resolve(positional[0] || process.env.BENCH_TREE || '/usr/share');
  const runs = Math.max(1, Number.parseInt(process.env.BENCH_RUNS || '5', 10) || 1);
  const only = process.env.BENCH_SCENARIOS
    ? new Set(process.env.BENCH_SCENARIOS.split(',').map((s) => s.trim()).filter(Boolean))
    : null;
  const selected = SCENARIOS.filter((s) => (only ? only.has(s.name) : s.enabled));

  // Warm-up walk: counts the tree and pulls metadata into the page cache for every run.
  const w0 = process.hrtime.bigint();
  const warmData = (process.env.BENCH_WARM || 'data') !== 'meta';
  const stats = walkTree(tree, warmData);
  const walkS = Number(process.hrtime.bigint() - w0) / 1e9;
  console.log(`tree: ${tree}`);
  console.log(
    `  ${stats.entries} entries (${stats.files} files, ${stats.dirs} dirs, ${stats.symlinks} symlinks` +
      `${stats.other ? `, ${stats.other} other` : ''}), ${(stats.bytes / MB).toFixed(1)} MB in regular files` +
      `${stats.errors ? `, ${stats.errors} unreadable` : ''}`,
  );
  console.log(
    `  warm cache: one warm-up walk (${warmData ? 'metadata + file contents' : 'metadata only'}) ` +
      `before timing, ${walkS.toFixed(2)} s; page cache not dropped, all runs see it warm`,
  );
  console.log(
    `  runs per scenario: ${runs}${runs > 1 ? ' in rounds, the order rotated by one each round (median [min-max] reported)' : ''}; ` +
      'sync before every run; timing: ' +
      (haveTime ? `${TIME_BIN} -f '%e %M'` : 'process.hrtime (no /usr/bin/time: RSS n/a)'),
  );
  if (process.env.BENCH_OURS_CMD) console.log(`  ours overridden by BENCH_OURS_CMD: ${process.env.BENCH_OURS_CMD}`);

  const parent = process.env.BENCH_TMPDIR || os.tmpdir();
  const scratch = fs.mkdtempSync(path.join(parent, 'nydus-bench-'));
  const cleanup = () => fs.rmSync(scratch, { recursive: true, force: true });
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      cleanup();
      process.exit(130);
    });
  }

  const results = selected.map(newResult);
  try {
    for (let round = 0; round < runs; round++) {
      for (const sc of rotated(selected, round)) {
        const res = results[selected.indexOf(sc)];
        if (!res.ok) continue;
        process.stderr.write(`  round ${round + 1}/${runs}: ${sc.name} ...`);
        await runOnce(sc, res, round, { tree, scratch });
        const last = res.runs[res.runs.length - 1];
        process.stderr.write(res.ok ? ` ${fmt(last.wall)} s\n` : ' FAILED\n');
      }
    }
  } finally {
    cleanup();
  }
  results.forEach(summarize);

  console.log('');
  const rows = results.map((r) =>
    r.ok
      ? [
          r.name,
          fmt(r.wall),
          r.runs.length > 1 ? `${fmt(r.wallMin)}-${fmt(r.wallMax)}` : '-',
          fmt(r.wall > 0 ? (r.bytes ?? stats.bytes) / MB / r.wall : null, 1),
          r.bytes == null ? fmt(r.wall > 0 ? stats.entries / r.wall : null, 0) : '-',
          fmt(r.rssMaxKiB == null ? null : r.rssMaxKiB / 1024, 1),
          fmt(r.outBytes / MB, 1),
        ]
      : [r.name, 'FAIL', '-', '-', '-', '-', '-'],
  );
  console.log(table(rows, ['name', 'wall s', 'min-max s', 'MB/s', 'files/s', 'peak RSS MB', 'output MB']));
  console.log(`(wall: median of ${runs} run(s); MB = 2^20 bytes; MB/s = regular-file bytes / median wall (export and cp: disk bytes / wall);` +
    ' files/s = entries / median wall; peak RSS = the highest of the runs, for a pipeline the max over its processes)');

  const failed = results.filter((r) => !r.ok);
  for (const r of failed) {
    console.log(`\n${r.name} failed: ${r.cmd || ''}`);
    console.log(r.err.split('\n').map((l) => `  | ${l}`).join('\n'));
  }

  const by = (pred) => results.find((r) => r.ok && pred(SCENARIOS.find((s) => s.name === r.name)));
  const ours = by((s) => s.ours);
  const erofs = by((s) => s.ref === 'erofs');
  const floor = ours && process.env.BENCH_FLOOR !== '0' ? zstdFloor(tree) : null;
  const tz = by((s) => s.ref === 'tarzstd');
  const ratio = (a, b) => (a && b && b.wall > 0 ? a.wall / b.wall : null);
  const rErofs = ratio(ours, erofs);
  const rTz = ratio(ours, tz);
  const oursLz4 = results.find((r) => r.ok && r.name === 'ours-lz4');
  const oursNone = results.find((r) => r.ok && r.name === 'ours-none');
  const tarCat = by((s) => s.ref === 'tarcat');
  const rLz4Erofs = ratio(oursLz4, erofs);
  const rNoneCat = ratio(oursNone, tarCat);
  const rssMB = (r) => (r && r.rssMaxKiB != null ? r.rssMaxKiB / 1024 : null);
  const tarFifo = results.find((r) => r.ok && r.name === 'tar-rafs-fifo');
  // Throughput ratio: tar-rafs MB/s over dir-rafs MB/s on the same bytes = dir wall / tar wall.
  const rTarDir = ratio(ours, tarFifo);
  const tarLive = results.find((r) => r.ok && r.name === 'tar-rafs-fifo-live');
  const exp = results.find((r) => r.ok && r.name === 'export-block');
  const expV = results.find((r) => r.ok && r.name === 'export-verity');
  const cp = by((s) => s.ref === 'cp');
  const exportRssMB = exp || expV ? Math.max(rssMB(exp) ?? 0, rssMB(expV) ?? 0) : null;
  const rExpCp = ratio(exp, cp);
  const rExpVCp = ratio(expV, cp);
  const dd = by((s) => s.ref === 'dd');
  const rExpDd = ratio(exp, dd);
  const vs = by((s) => s.ref === 'veritysetup');
  const rTarLiveDir = ratio(ours, tarLive);
  const pass = (v, ok) => (v == null ? 'n/a' : ok(v) ? 'PASS' : 'MISS');
  // Issue 14's targets; peak RSS < 300 MB for each of ours' builds.
  const buildRss = [ours, oursLz4, oursNone].filter(Boolean).map(rssMB).filter((v) => v != null);
  const targzRef = results.find((r) => r.ok && r.name === 'targz-ref');
  const gzipDc = by((s) => s.ref === 'gzipdc');
  const rRefGzip = ratio(targzRef, gzipDc);
  const targzRefRssMB = rssMB(targzRef);
  const targets = {
    wallVsErofs: pass(rErofs, (v) => v <= 1.0),
    lz4VsErofs: pass(rLz4Erofs, (v) => v <= 0.6),
    noneVsTarCat: pass(rNoneCat, (v) => v <= 1.5),
    rss: pass(buildRss.length ? Math.max(...buildRss) : null, (v) => v < 300),
    tarVsDir: pass(rTarDir, (v) => v >= 0.9),
    exportRss: exportRssMB == null ? 'n/a' : exportRssMB < 300 ? 'PASS' : 'MISS',
    targzRefVsGzip: rRefGzip == null ? 'n/a' : rRefGzip <= 1.3 ? 'PASS' : 'MISS',
    targzRefRss: targzRefRssMB == null ? 'n/a' : targzRefRssMB < 300 ? 'PASS' : 'MISS',
  };
  console.log('');
  const x = (r) => (r == null ? 'n/a' : `${fmt(r)}x`);
  console.log(`ours / mkfs.erofs wall: ${x(rErofs)}`);
  if (floor) {
    console.log(`  floor: zstd level 3 alone (upstream's default) on ${floor.threads} threads, every chunk already in memory:` +
      ` ${fmt(floor.wallS)} s = ${x(erofs ? floor.wallS / erofs.wall : null)} mkfs.erofs wall, ${fmt(ours ? floor.wallS / ours.wall : null)} of ours`);
  }
  console.log(`ours / tar|zstd wall:   ${x(rTz)}`);
  for (const [o, b] of [['ours', 'base'], ['ours-lz4', 'base-lz4'], ['ours-none', 'base-none']]) {
    const ro = results.find((r) => r.ok && r.name === o);
    const rb = results.find((r) => r.ok && r.name === b);
    if (ro && rb) console.log(`${o} / ${b} (BENCH_BASE_ROOT) wall: ${x(ratio(ro, rb))}`);
  }
  console.log(`ours --compressor lz4_block / mkfs.erofs wall: ${x(rLz4Erofs)}`);
  console.log(`ours --compressor none / tar|cat wall:        ${x(rNoneCat)}`);
  const floorLz4 = results.find((r) => r.ok && r.name === 'floor-lz4');
  const floorNone = results.find((r) => r.ok && r.name === 'floor-none');
  if (floorLz4 || floorNone) {
    console.log(`floor (bench/floor.js, blob only) lz4_block / mkfs.erofs wall: ${x(ratio(floorLz4, erofs))}; ours-lz4 / floor-lz4: ${x(ratio(oursLz4, floorLz4))}`);
    console.log(`floor (bench/floor.js, blob only) none / tar|cat wall:        ${x(ratio(floorNone, tarCat))}; ours-none / floor-none: ${x(ratio(oursNone, floorNone))}`);
  }
  console.log(`target ours (zstd) wall <= 1.0 x mkfs.erofs -zlz4 wall:      ${targets.wallVsErofs}`);
  console.log(`target ours --compressor lz4_block <= 0.6 x mkfs.erofs wall: ${targets.lz4VsErofs}`);
  console.log(`target ours --compressor none <= 1.5 x tar|cat wall:         ${targets.noneVsTarCat}`);
  console.log(`target peak RSS < 300 MB for each of ours' builds:           ${targets.rss}` +
    ([ours, oursLz4, oursNone].some((r) => rssMB(r) != null)
      ? ` (${[ours, oursLz4, oursNone].filter((r) => rssMB(r) != null).map((r) => `${r.name} ${rssMB(r).toFixed(1)} MB`).join(', ')})`
      : ''));
  console.log(`tar-rafs (FIFO fed by cat of a tar) / dir-rafs throughput: ${x(rTarDir)}`);
  console.log(`tar-rafs (FIFO fed by a live tar) / dir-rafs throughput:   ${x(rTarLiveDir)}` +
    ' (tar + us on the same cores; not the target)');
  console.log(`target tar-rafs >= 0.9 x dir-rafs throughput:   ${targets.tarVsDir}`);
  console.log(`export --block / cp wall: ${x(rExpCp)}; export --block --verity / cp wall: ${x(rExpVCp)}` +
    (exp ? ` (disk ${(exp.bytes / MB).toFixed(0)} MB)` : ''));
  console.log(`export --block / dd bs=1M wall: ${x(rExpDd)} (dd, like export, copies through user space)`);
  console.log(`export --block --verity / (cp + veritysetup format) wall: ${x(expV && cp && vs ? expV.wall / (cp.wall + vs.wall) : null)}`);
  console.log(`target export peak RSS < 300 MB:                ${targets.exportRss}` +
    (exportRssMB != null ? ` (${exportRssMB.toFixed(1)} MB)` : ''));
  console.log(`targz-ref / gzip -dc wall (same tar.gz): ${x(rRefGzip)}; target <= 1.3: ${targets.targzRefVsGzip}`);
  console.log(`target targz-ref peak RSS < 300 MB:             ${targets.targzRefRss}` +
    (targzRefRssMB != null ? ` (${targzRefRssMB.toFixed(1)} MB)` : ''));

  if (json) {
    const out = {
      tree,
      stats,
      runs,
      warmCache: warmData ? 'data' : 'meta',
      timing: haveTime ? 'usr-bin-time' : 'hrtime',
      results: results.map((r) => ({
        name: r.name,
        desc: r.desc,
        cmd: r.cmd,
        ok: r.ok,
        error: r.ok ? undefined : r.err,
        wallS: r.ok ? r.wall : null,
        wallRunsS: r.runs.map((x) => x.wall ?? null),
        wallMinS: r.ok ? r.wallMin : null,
        wallMaxS: r.ok ? r.wallMax : null,
        peakRssRunsMB: r.runs.map((x) => (x.rssKiB == null ? null : x.rssKiB / 1024)),
        bytes: r.bytes ?? stats.bytes,
        mbPerS: r.ok && r.wall > 0 ? (r.bytes ?? stats.bytes) / MB / r.wall : null,
        filesPerS: r.ok && r.wall > 0 && r.bytes == null ? stats.entries / r.wall : null,
        peakRssMB: r.ok && r.rssMaxKiB != null ? r.rssMaxKiB / 1024 : null,
        outputBytes: r.ok ? r.outBytes : null,
      })),
      ratios: {
        oursOverErofs: rErofs,
        oursOverTarZstd: rTz,
        oursLz4OverErofs: rLz4Erofs,
        oursNoneOverTarCat: rNoneCat,
        floorLz4OverErofs: ratio(floorLz4, erofs),
        floorNoneOverTarCat: ratio(floorNone, tarCat),
        oursLz4OverFloor: ratio(oursLz4, floorLz4),
        oursNoneOverFloor: ratio(oursNone, floorNone),
        tarRafsOverDirRafsThroughput: rTarDir,
        tarRafsLiveTarOverDirRafsThroughput: rTarLiveDir,
        zstdFloorOverErofs: floor && erofs ? floor.wallS / erofs.wall : null,
        exportOverCp: rExpCp,
        exportVerityOverCp: rExpVCp,
        exportOverDd: rExpDd,
        targzRefOverGzipDc: rRefGzip,
      },
      targets,
    };
    console.log('');
    console.log(JSON.stringify(out, null, 2));
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`bench: ${e && e.stack ? e.stack : e}`);
    process.exit(0);
  },
);
