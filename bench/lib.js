// What the bench scripts share: running a command under GNU time, the tree walk, medians, tables.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const TIME_BIN = process.env.BENCH_TIME_BIN || '/usr/bin/time'; // override only to test the fallback
export const MB = 1024 * 1024; // "MB" in the tables means MiB (2^20 bytes)

// ---------------------------------------------------------------- helpers

export const shq = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;
export const showArgv = (argv) => argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : shq(a))).join(' ');

export function fill(template, vars) {
  return template.replace(/\{(out|tree|root|node)\}/g, (_, k) => shq(vars[k]));
}

export function median(xs) {
  const v = xs.filter((x) => x != null && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

export function tail(file, maxBytes = 2048, maxLines = 12) {
  try {
    const st = fs.statSync(file);
    const fd = fs.openSync(file, 'r');
    const len = Math.min(st.size, maxBytes);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, st.size - len);
    fs.closeSync(fd);
    return buf.toString('utf8').trimEnd().split('\n').slice(-maxLines).join('\n');
  } catch {
    return '';
  }
}

/**
 * One sync walk: counts entries by type and bytes of regular files. It is also the warm-up:
 * metadata always, and file contents too unless readData is false, so every timed run
 * (including the first) sees a warm page cache.
 */
export function walkTree(root, readData) {
  const buf = readData ? Buffer.allocUnsafe(1 << 20) : null;
  const s = { files: 0, dirs: 0, symlinks: 0, other: 0, bytes: 0, errors: 0 };
  const st0 = fs.lstatSync(root);
  if (!st0.isDirectory()) throw new Error(`${root}: not a directory`);
  const stack = [root];
  s.dirs++;
  while (stack.length) {
    const dir = stack.pop();
    let ents;
    try {
      ents = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      s.errors++;
      continue;
    }
    for (const e of ents) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        s.dirs++;
        stack.push(p);
      } else if (e.isSymbolicLink()) {
        s.symlinks++;
      } else if (e.isFile()) {
        s.files++;
        try {
          s.bytes += fs.lstatSync(p).size;
          if (buf) {
            const fd = fs.openSync(p, 'r');
            try {
              while (fs.readSync(fd, buf, 0, buf.length, null) > 0);
            } finally {
              fs.closeSync(fd);
            }
          }
        } catch {
          s.errors++;
        }
      } else {
        s.other++;
      }
    }
  }
  s.entries = s.files + s.dirs + s.symlinks + s.other;
  return s;
}

/** Total size of regular files under dir (FIFOs and the like are skipped; a file gone meanwhile counts 0). */
export function outputSize(dir) {
  let total = 0;
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop();
    let ents;
    try {
      ents = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of ents) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) {
        try {
          total += fs.lstatSync(p).size;
        } catch { /* gone meanwhile */ }
      }
    }
  }
  return total;
}

// ---------------------------------------------------------------- running

export const haveTime = (() => {
  try {
    fs.accessSync(TIME_BIN, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
})();

export const timeoutMs = process.env.BENCH_TIMEOUT ? Number(process.env.BENCH_TIMEOUT) * 1000 : 0;

/** Runs argv once under /usr/bin/time. Returns { ok, wall, rssKiB, code, err }. */
export function timedRun(argv, { cwd, logDir, discardStdout }) {
  const timeFile = path.join(logDir, 'time.txt');
  const outFile = path.join(logDir, 'stdout.txt');
  const errFile = path.join(logDir, 'stderr.txt');
  for (const f of [timeFile, outFile, errFile]) fs.rmSync(f, { force: true });
  const outFd = discardStdout ? 'ignore' : fs.openSync(outFile, 'w');
  const errFd = fs.openSync(errFile, 'w');
  const full = haveTime ? [TIME_BIN, '-o', timeFile, '-f', '%e %M', ...argv] : argv;
  const t0 = process.hrtime.bigint();
  return new Promise((resolve) => {
    let timedOut = false;
    let child;
    try {
      child = spawn(full[0], full.slice(1), { cwd, stdio: ['ignore', outFd, errFd], detached: true });
    } catch (e) {
      resolve({ ok: false, err: String(e) });
      return;
    }
    const timer = timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          try { process.kill(-child.pid, 'SIGKILL'); } catch {}
        }, timeoutMs)
      : null;
    const finish = (code, sig, spawnErr) => {
      if (timer) clearTimeout(timer);
      const hrWall = Number(process.hrtime.bigint() - t0) / 1e9;
      if (typeof outFd === 'number') fs.closeSync(outFd);
      fs.closeSync(errFd);
      let wall = hrWall;
      let rssKiB = null;
      if (haveTime) {
        // Last line is "%e %M"; a preceding "Command exited with non-zero status N" may exist.
        const lines = (fs.existsSync(timeFile) ? fs.readFileSync(timeFile, 'utf8') : '').trim().split('\n');
        const m = /^([\d.]+)\s+(\d+)$/.exec(lines[lines.length - 1] || '');
        if (m) {
          wall = Number(m[1]);
          rssKiB = Number(m[2]);
        }
      }
      const ok = !spawnErr && !timedOut && code === 0;
      let err = '';
      if (!ok) {
        const why = spawnErr
          ? `spawn failed: ${spawnErr.message}`
          : timedOut
            ? `timed out after ${timeoutMs / 1000}s`
            : sig
              ? `killed by ${sig}`
              : `exit status ${code}`;
        const t = [tail(errFile), discardStdout ? '' : tail(outFile, 1024, 5)].filter(Boolean).join('\n');
        err = t ? `${why}\n${t}` : why;
      }
      resolve({ ok, wall, rssKiB, code, err });
    };
    child.on('error', (e) => finish(null, null, e));
    child.on('exit', (code, sig) => finish(code, sig, null));
  });
}

// ---------------------------------------------------------------- output

export function fmt(x, digits = 2) {
  return x == null || !Number.isFinite(x) ? 'n/a' : x.toFixed(digits);
}

export function table(rows, header) {
  const all = [header, ...rows];
  const w = header.map((_, i) => Math.max(...all.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ');
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}


/** A TCP port free on 127.0.0.1 now, for a server the bench starts. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
