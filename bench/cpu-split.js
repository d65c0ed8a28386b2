#!/usr/bin/env node
// Per-thread CPU split of one `nydus-image create`: runs it under `node --cpu-prof` (V8 writes a
// profile for the main thread and one for each worker) and sums each profile's samples into
// busy time, GC ("(garbage collector)") and idle ("(idle)", "(program)" counted as busy), with
// the top functions by self time.
//
//   node bench/cpu-split.js [--top N] [--no-prof] -- <create args...>
//   e.g. node bench/cpu-split.js -- -t dir-rafs --compressor none -B /tmp/b -b /tmp/blob /usr/share
//
// The CPU profiler samples every 1 ms by default (BENCH_PROF_INTERVAL_US changes it); its own cost
// makes the build slower, and on a loaded machine a descheduled thread's wait lands in the frame
// it was in, so the profiles say where time goes, not how much CPU it took. The CPU seconds come
// from a second, unprofiled run whose threads' utime+stime are read from /proc/<pid>/task/*/stat
// every 10 ms (the last reading before each thread ends counts): main (tid = pid), the chunk
// workers (threads named "nydus-chunks"), the blob writer ("nydus-writer") and the rest (V8's
// helper threads: concurrent and parallel GC, compilation; libuv's pool: async fs).
//   --no-prof skips the profiled run.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Self time per call-frame key and the profile's total, in microseconds. */
function summarize(file) {
  const p = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = p.timeDeltas;
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]);
    const f = n.callFrame;
    const key = f.url ? `${f.functionName || '(anon)'} ${path.basename(f.url)}:${f.lineNumber + 1}` : f.functionName;
    // A sample's time is the delta to the next sample.
    const t = i + 1 < dt.length ? dt[i + 1] : 0;
    self.set(key, (self.get(key) ?? 0) + t);
  }
  const total = p.endTime - p.startTime;
  return { total, self };
}

/** CPU seconds per thread of one unprofiled run, grouped by kind; and its wall. */
async function procSplit(args) {
  const hz = 100; // USER_HZ: clock ticks per second of /proc's utime and stime
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/nydus-image.js'), 'create', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  const threads = new Map();
  const sample = () => {
    let tids;
    try {
      tids = fs.readdirSync(`/proc/${child.pid}/task`);
    } catch {
      return;
    }
    for (const tid of tids) {
      try {
        const s = fs.readFileSync(`/proc/${child.pid}/task/${tid}/stat`, 'utf8');
        const close = s.lastIndexOf(')');
        const comm = s.slice(s.indexOf('(') + 1, close);
        const f = s.slice(close + 2).split(' ');
        threads.set(tid, { comm, cpu: (Number(f[11]) + Number(f[12])) / hz });
      } catch {
        // ended meanwhile
      }
    }
  };
  const timer = setInterval(sample, 10);
  const code = await new Promise((res) => child.on('exit', (c) => res(c)));
  clearInterval(timer);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const groups = { main: 0, 'chunk workers': 0, 'blob writer': 0, 'other (V8 GC/compile helpers, libuv)': 0 };
  for (const [tid, t] of threads) {
    const g = tid === String(child.pid) ? 'main' : t.comm === 'nydus-chunks' ? 'chunk workers' : t.comm === 'nydus-writer' ? 'blob writer' : 'other (V8 GC/compile helpers, libuv)';
    groups[g] += t.cpu;
  }
  return { code, wall, groups };
}

async function main() {
  const argv = process.argv.slice(2);
  const sep = argv.indexOf('--');
  const opts = sep >= 0 ? argv.slice(0, sep) : [];
  const args = sep >= 0 ? argv.slice(sep + 1) : argv;
  const topAt = opts.indexOf('--top');
  const top = topAt >= 0 ? Number(opts[topAt + 1]) : 12;
  const split = await procSplit(args);
  if (split.code !== 0) {
    console.error(`create exited ${split.code}`);
    process.exit(1);
  }
  console.log(`unprofiled: wall ${split.wall.toFixed(2)} s; CPU-s per thread group: ` +
    Object.entries(split.groups).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ') +
    `; total ${Object.values(split.groups).reduce((a, b) => a + b, 0).toFixed(2)}`);
  if (opts.includes('--no-prof')) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nydus-prof-'));
  try {
    const interval = process.env.BENCH_PROF_INTERVAL_US ?? '1000';
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', dir, '--cpu-prof-interval', interval,
      path.join(ROOT, 'bin/nydus-image.js'), 'create', ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) {
      console.error(`create exited ${r.status}`);
      process.exit(1);
    }
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
    console.log(`wall ${wall.toFixed(2)} s (profiled); ${files.length} profiles`);
    let sumBusy = 0;
    let sumGc = 0;
    files.forEach((f, i) => {
      const { total, self } = summarize(path.join(dir, f));
      // piscina's idle workers wait in Atomics.wait: idle too.
      const idle = (self.get('(idle)') ?? 0) + [...self].filter(([k]) => k.startsWith('atomicsWaitLoop')).reduce((a, [, t]) => a + t, 0);
      const gc = self.get('(garbage collector)') ?? 0;
      const busy = total - idle;
      sumBusy += busy;
      sumGc += gc;
      // The main thread's profile is the one with thread id 0 in its name (CPU.<date>.<pid>.<tid>.<seq>).
      const tid = f.split('.')[4];
      console.log(`\n${tid === '0' ? 'main' : `worker ${tid}`}: busy ${(busy / 1e6).toFixed(2)} CPU-s of ${(total / 1e6).toFixed(2)} s, GC ${(gc / 1e6).toFixed(2)} s`);
      const rows = [...self].filter(([k]) => k !== '(idle)' && !k.startsWith('atomicsWaitLoop')).sort((a, b) => b[1] - a[1]).slice(0, top);
      for (const [k, t] of rows) console.log(`  ${(t / 1e6).toFixed(3).padStart(7)} s  ${k}`);
      void i;
    });
    console.log(`\nall threads: busy ${(sumBusy / 1e6).toFixed(2)} CPU-s, of which GC ${(sumGc / 1e6).toFixed(2)}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
