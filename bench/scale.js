#!/usr/bin/env node
// Scaling: `nydus-image create` (default flags: dir-rafs, zstd, blake3, 1 MiB chunks) on two
// generated trees, wall and peak RSS each (issue 14):
//
//   small  BENCH_SCALE_FILES small files (default 500,000; 1..2048 bytes each, every file's
//          content distinct), 1,000 to a directory. Target: under 60 s, peak RSS under 1 GB.
//          Printed with the RSS per entry: (peak RSS - peak RSS of a build of an empty
//          directory) / entries, i.e. what the build keeps per entry beyond its fixed cost.
//   large  5 files totalling BENCH_SCALE_LARGE_MB MiB (default 2048, i.e. 2 GiB), every MiB
//          half random and half a repeated pattern (zstd halves it; no two chunks equal).
//
//   node bench/scale.js [--json]
//
// Environment: BENCH_SCALE=0 skips it all; BENCH_SCALE_SCENARIOS=small,large (default both);
// BENCH_SCALE_RUNS (default 1; median with min-max when more); BENCH_SCALE_FILES;
// BENCH_SCALE_LARGE_MB; BENCH_SCALE_REF=1 also times `mkfs.erofs -zlz4` on each tree in the
// same run; BENCH_TMPDIR (parent of the scratch dir, default os.tmpdir()). The trees are
// generated once before the first timed run (untimed) and deleted at the end; `sync` runs
// before every timed run.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MB, fmt, haveTime, median, outputSize, table, timedRun } from './lib.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FILES_PER_DIR = 1000;
const LARGE_FILES = 5;

/** Removes a tree: GNU rm where there is one (Node's recursive rmSync takes minutes on 500,000 files). */
function removeTree(dir) {
  try {
    execFileSync('rm', ['-rf', '--', dir], { stdio: 'ignore' });
  } catch {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const num = (name, dflt) => {
  const v = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};

/** N small files, FILES_PER_DIR to a directory; returns { entries, bytes }. */
function makeSmall(dir, n) {
  fs.mkdirSync(dir, { recursive: true });
  const buf = Buffer.alloc(2048);
  let bytes = 0;
  let dirs = 1;
  let sub = dir;
  for (let i = 0; i < n; i++) {
    if (i % FILES_PER_DIR === 0) {
      sub = path.join(dir, `d${String(i / FILES_PER_DIR).padStart(4, '0')}`);
      fs.mkdirSync(sub);
      dirs++;
    }
    const size = 1 + ((i * 7919) % 2048);
    // Distinct content per file: its index, then a pattern that depends on it.
    buf.fill(0x61 + (i % 26), 0, size);
    buf.writeUInt32LE(i, 0);
    fs.writeFileSync(path.join(sub, `f${i}`), buf.subarray(0, size));
    bytes += size;
  }
  return { entries: n + dirs, bytes };
}

/** LARGE_FILES files totalling totalMiB MiB; every MiB is half random, half a pattern. */
function makeLarge(dir, totalMiB) {
  fs.mkdirSync(dir, { recursive: true });
  const piece = Buffer.alloc(MB);
  const perFile = Math.floor(totalMiB / LARGE_FILES);
  let bytes = 0;
  for (let f = 0; f < LARGE_FILES; f++) {
    const mib = f === LARGE_FILES - 1 ? totalMiB - perFile * (LARGE_FILES - 1) : perFile;
    const fd = fs.openSync(path.join(dir, `large-${f}`), 'w');
    for (let m = 0; m < mib; m++) {
      crypto.randomFillSync(piece, 0, MB / 2);
      piece.fill(`${f}:${m};`, MB / 2);
      fs.writeSync(fd, piece);
    }
    fs.closeSync(fd);
    bytes += mib * MB;
  }
  return { entries: LARGE_FILES + 1, bytes };
}

function ours(tree, out) {
  return [process.execPath, path.join(ROOT, 'bin/nydus-image.js'), 'create', '-t', 'dir-rafs',
    '-B', path.join(out, 'boot'), '-b', path.join(out, 'blob'), '--log-level', 'warn', tree];
}

async function timeIt(argv, scratch, name, runs, discardStdout = false) {
  const res = { name, runs: [], ok: true, err: '' };
  const logDir = path.join(scratch, 'logs');
  fs.mkdirSync(logDir, { recursive: true });
  for (let i = 0; i < runs; i++) {
    const out = path.join(scratch, 'out');
    fs.mkdirSync(out, { recursive: true });
    execFileSync('sync');
    process.stderr.write(`  ${name} (${i + 1}/${runs}) ...`);
    const r = await timedRun(argv(out), { cwd: ROOT, logDir, discardStdout });
    r.outBytes = outputSize(out);
    fs.rmSync(out, { recursive: true, force: true });
    process.stderr.write(r.ok ? ` ${fmt(r.wall)} s\n` : ' FAILED\n');
    res.runs.push(r);
    if (!r.ok) {
      res.ok = false;
      res.err = r.err;
      break;
    }
  }
  if (res.ok) {
    const walls = res.runs.map((r) => r.wall);
    res.wall = median(walls);
    res.wallMin = Math.min(...walls);
    res.wallMax = Math.max(...walls);
    const rss = res.runs.map((r) => r.rssKiB).filter((x) => x != null);
    res.rssMB = rss.length ? Math.max(...rss) / 1024 : null;
    res.outBytes = median(res.runs.map((r) => r.outBytes));
  }
  return res;
}

async function main() {
  if (process.env.BENCH_SCALE === '0') return;
  const json = process.argv.includes('--json');
  const which = new Set((process.env.BENCH_SCALE_SCENARIOS || 'small,large').split(',').map((s) => s.trim()));
  const runs = num('BENCH_SCALE_RUNS', 1);
  const nSmall = num('BENCH_SCALE_FILES', 500000);
  const largeMiB = num('BENCH_SCALE_LARGE_MB', 2048);
  const withRef = process.env.BENCH_SCALE_REF === '1';
  const scratch = fs.mkdtempSync(path.join(process.env.BENCH_TMPDIR || os.tmpdir(), 'nydus-scale-'));
  const cleanup = () => removeTree(scratch);
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => (cleanup(), process.exit(130)));
  const report = { runs, timing: haveTime ? 'usr-bin-time' : 'hrtime', scenarios: [] };
  console.log(`scaling (runs per build: ${runs}; sync before each; timing: ${haveTime ? "/usr/bin/time -f '%e %M'" : 'hrtime, RSS n/a'})`);
  try {
    // The fixed cost of a build: an empty directory, so RSS per entry counts only what grows.
    const empty = path.join(scratch, 'empty');
    fs.mkdirSync(empty);
    const base = await timeIt((out) => ours(empty, out), scratch, 'ours on an empty directory', 1);
    const rows = [];
    for (const kind of ['small', 'large']) {
      if (!which.has(kind)) continue;
      const tree = path.join(scratch, kind);
      process.stderr.write(`  generating ${kind} tree ...`);
      const t0 = process.hrtime.bigint();
      const stats = kind === 'small' ? makeSmall(tree, nSmall) : makeLarge(tree, largeMiB);
      process.stderr.write(` ${fmt(Number(process.hrtime.bigint() - t0) / 1e9)} s\n`);
      console.log(`  ${kind}: ${stats.entries} entries, ${(stats.bytes / MB).toFixed(1)} MB in regular files`);
      const r = await timeIt((out) => ours(tree, out), scratch, `ours ${kind}`, runs);
      const ref = withRef
        ? await timeIt((out) => ['mkfs.erofs', '-zlz4', path.join(out, 'ref.img'), tree], scratch, `mkfs.erofs ${kind}`, runs, true)
        : undefined;
      removeTree(tree);
      const perEntry = kind === 'small' && r.ok && r.rssMB != null && base.rssMB != null ? ((r.rssMB - base.rssMB) * MB) / stats.entries : null;
      const sc = { kind, ...stats, ours: r, ref, rssPerEntryBytes: perEntry };
      report.scenarios.push(sc);
      for (const x of [r, ref].filter(Boolean)) {
        rows.push(x.ok
          ? [x.name, fmt(x.wall), x.runs.length > 1 ? `${fmt(x.wallMin)}-${fmt(x.wallMax)}` : '-', fmt(stats.bytes / MB / x.wall, 1),
              fmt(stats.entries / x.wall, 0), fmt(x.rssMB, 1), fmt(x.outBytes / MB, 1)]
          : [x.name, 'FAIL', '-', '-', '-', '-', '-']);
      }
      if (!r.ok) console.log(`  ours ${kind} failed:\n${r.err.split('\n').map((l) => `    | ${l}`).join('\n')}`);
    }
    report.emptyRssMB = base.rssMB;
    console.log('');
    console.log(table(rows, ['build', 'wall s', 'min-max s', 'MB/s', 'entries/s', 'peak RSS MB', 'output MB']));
    console.log(`(empty directory: ${fmt(base.wall)} s, peak RSS ${fmt(base.rssMB, 1)} MB; MB = 2^20 bytes)`);
    for (const sc of report.scenarios) {
      const r = sc.ours;
      if (!r.ok) continue;
      if (sc.kind === 'small') {
        console.log(`${sc.kind}: ${sc.entries} entries, RSS per entry ${fmt(sc.rssPerEntryBytes, 0)} bytes ((peak - empty build's peak) / entries)`);
        const pass = (ok) => (ok ? 'PASS' : 'MISS');
        console.log(`  target ${sc.entries} entries in < 60 s:  ${pass(r.wall < 60)} (${fmt(r.wall)} s)`);
        console.log(`  target peak RSS < 1 GB:            ${r.rssMB == null ? 'n/a' : pass(r.rssMB < 1024)} (${fmt(r.rssMB, 1)} MB)`);
      }
    }
  } finally {
    cleanup();
  }
  if (json) console.log(JSON.stringify(report, null, 2));
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`bench scale: ${e && e.stack ? e.stack : e}`);
    process.exit(0);
  },
);
