// CLI start time (issue 14): how long the bins take above a bare `node -e 0`.
//
//   node bench/start.js [--runs N] [--json]
//
// Each round runs every command once, the order rotated by one each round (so none always runs
// first or after the same neighbour); per command: median wall (ms) with min-max, and median CPU
// (user+sys of the child, from this process's cutime/cstime in /proc/self/stat; 10 ms ticks).
// Targets: `nydus-image --help` and `create` of an empty directory <= 150 ms above bare node.
// BENCH_BASE_ROOT=DIR adds the same commands run from another built checkout, in the same rounds.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, table, fmt } from './lib.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TARGET_MS = 150;
const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const RUNS = Number(runsAt >= 0 ? args[runsAt + 1] : process.env.BENCH_RUNS || 20);
const json = args.includes('--json');

const scratch = fs.mkdtempSync(path.join(process.env.BENCH_TMPDIR || os.tmpdir(), 'nydus-start-'));
const empty = path.join(scratch, 'empty');
fs.mkdirSync(empty);

function commands(root, tag) {
  const img = path.join(root, 'bin/nydus-image.js');
  const nfy = path.join(root, 'bin/nydusify.js');
  const out = path.join(scratch, `out-${tag || 'ours'}`);
  fs.mkdirSync(out, { recursive: true });
  const t = tag ? `${tag}: ` : '';
  return [
    { name: `${t}nydus-image --help`, argv: [img, '--help'], target: !tag },
    { name: `${t}nydus-image create --help`, argv: [img, 'create', '--help'] },
    { name: `${t}nydus-image create EMPTY`, argv: [img, 'create', '-B', `${out}/b`, '-b', `${out}/blob`, empty], target: !tag },
    { name: `${t}nydusify --help`, argv: [nfy, '--help'] },
    { name: `${t}nydusify convert --help`, argv: [nfy, 'convert', '--help'] },
  ];
}

/** User+sys CPU seconds of this process's reaped children so far. */
function childCpu() {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 16 and 17 (cutime, cstime) are at 13 and 14 after the ")": state is field 3.
    return (Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return NaN;
  }
}

const bare = { name: 'node -e 0', argv: ['-e', '0'] };
const list = [bare, ...commands(ROOT, '')];
if (process.env.BENCH_BASE_ROOT) list.push(...commands(path.resolve(process.env.BENCH_BASE_ROOT), 'base'));
for (const c of list) {
  c.wall = [];
  c.cpu = [];
}

for (let r = 0; r < RUNS; r++) {
  for (let i = 0; i < list.length; i++) {
    const c = list[(i + r) % list.length];
    const cpu0 = childCpu();
    const t0 = process.hrtime.bigint();
    const p = spawnSync(process.execPath, c.argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (p.status !== 0) {
      // Shown, not fatal: `npm run bench` goes on to the other scripts.
      process.stderr.write(`${c.name}: exit ${p.status ?? p.signal}\n${p.stderr}\n`);
    }
    c.wall.push(ms);
    c.cpu.push((childCpu() - cpu0) * 1000);
  }
}
fs.rmSync(scratch, { recursive: true, force: true });

const base = median(bare.wall);
const baseCpu = median(bare.cpu);
const rows = list.map((c) => {
  const m = median(c.wall);
  const above = c === bare ? null : m - base;
  return {
    name: c.name,
    wall: m,
    min: Math.min(...c.wall),
    max: Math.max(...c.wall),
    cpu: median(c.cpu),
    above,
    cpuAbove: c === bare ? null : median(c.cpu) - baseCpu,
    verdict: c.target ? (above <= TARGET_MS ? 'PASS' : 'MISS') : '',
  };
});
if (json) {
  process.stdout.write(`${JSON.stringify({ runs: RUNS, targetMs: TARGET_MS, rows }, null, 2)}\n`);
} else {
  process.stdout.write(`CLI start: ${RUNS} runs each, rotated; ms; target: --help and create of an empty dir <= ${TARGET_MS} ms above bare node (median wall)\n`);
  const plus = (x) => (x == null ? '' : `${x >= 0 ? '+' : ''}${fmt(x, 0)}`);
  process.stdout.write(
    table(
      rows.map((r) => [r.name, fmt(r.wall, 0), `${fmt(r.min, 0)}-${fmt(r.max, 0)}`, plus(r.above), fmt(r.cpu, 0), plus(r.cpuAbove), r.verdict]),
      ['command', 'median wall', 'min-max', 'above node', 'median cpu', 'cpu above node', 'target'],
    ) + '\n',
  );
  process.stdout.write('(cpu: user+sys of the process and its threads, 10 ms ticks; on a busy machine it is steadier than wall)\n');
}
