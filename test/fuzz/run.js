#!/usr/bin/env node
// `npm run fuzz`: mutates valid images and tars structurally and runs every reader and source
// against them under a memory cap (1 GiB) and a time cap (10 s), in up to 2 long-lived worker
// processes (library calls) plus a fraction of cases through the real CLI. Findings are
// deduplicated by signature and saved with their input and a reproduction script.
//
//   node test/fuzz/run.js [--seed N] [--seconds N] [--targets a,b] [--out DIR] [--workers N]
//                         [--cli-fraction F] [--json]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { makeSeeds } from './seeds.js';
import { ALL_TARGETS, makeCase } from './cases.js';
import { cliArgv } from './targets.js';
import * as judge from './judge.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const BIN = path.join(REPO, 'bin/nydus-image.js');
const MEM_CAP_KB = 1024 * 1024;
const TIME_CAP_MS = 10_000;
/** Largest file a case may write (RLIMIT_FSIZE): a bigger one is an amplification finding (EFBIG). */
const FSIZE_CAP = 512 * 1024 * 1024;
const RAW = /Maximum call stack|value out of range|Cannot read prop|Cannot set prop|is not a function|is not iterable|Invalid array length|Invalid typed array length|Array buffer allocation failed|out of memory|\bundefined\b|\bNaN\b|RangeError|TypeError|ERR_[A-Z_]+|The value of "|must be of type|Offset is outside|out of range of|Attempt to access memory/;

function parseArgs(argv) {
  const o = { seed: 1, seconds: 600, targets: ALL_TARGETS, out: undefined, workers: 2, cliFraction: 0.07, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--seed') o.seed = Number(next()) >>> 0;
    else if (a === '--seconds') o.seconds = Number(next());
    else if (a === '--targets') o.targets = next().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--out') o.out = next();
    else if (a === '--workers') o.workers = Math.max(1, Math.min(2, Number(next())));
    else if (a === '--cli-fraction') o.cliFraction = Number(next());
    else if (a === '--json') o.json = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: node test/fuzz/run.js [--seed N] [--seconds N] [--targets check,inspect,unpack,export,merge,create] [--out DIR] [--workers 1|2] [--cli-fraction F] [--json]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const t of o.targets) if (!ALL_TARGETS.includes(t)) throw new Error(`unknown target ${t} (known: ${ALL_TARGETS.join(', ')})`);
  if (!Number.isFinite(o.seconds) || o.seconds <= 0) throw new Error('--seconds must be positive');
  o.out ??= path.join(os.tmpdir(), `nydus-fuzz-findings-${o.seed}`);
  return o;
}

/** rm -rf that survives trees deeper than PATH_MAX (what a hostile tar extracts to). */
function removeTree(p) {
  try {
    fs.rmSync(p, { recursive: true, force: true });
  } catch {
    execFileSync('rm', ['-rf', '--one-file-system', p], { stdio: 'ignore' });
  }
}

function rssKb(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
    const m = /VmRSS:\s+(\d+)/.exec(s);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Runs a process under the caps: RLIMIT_FSIZE by prlimit, RSS polled, 10 s. */
function capped(args, { cwd, ipc = false }) {
  return spawn('prlimit', [`--fsize=${FSIZE_CAP}`, '--', process.execPath, '--max-old-space-size=1024', '--stack-size=984', ...args], {
    cwd, stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc'] : [])], env: { ...process.env, NODE_NO_WARNINGS: '1' },
  });
}

class Slot {
  constructor(dir, index) {
    this.dir = dir;
    this.index = index;
    this.worker = undefined;
    this.stderr = '';
    this.asyncReports = [];
  }

  async startWorker() {
    const w = capped([path.join(HERE, 'worker.js')], { cwd: this.dir, ipc: true });
    this.worker = w;
    this.stderr = '';
    w.stderr.on('data', (d) => (this.stderr = (this.stderr + d).slice(-8192)));
    w.stdout.on('data', () => undefined);
    w.on('message', (msg) => {
      if (this.worker !== w) return;
      if (msg.type === 'async') this.asyncReports.push(msg);
      else this.onMessage?.(msg);
    });
    w.on('exit', (code, signal) => {
      if (this.worker === w) this.onExit?.(code, signal);
    });
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('worker did not start')), 20_000);
      this.onMessage = (msg) => {
        if (msg.type === 'ready') {
          clearTimeout(t);
          resolve();
        }
      };
      this.onExit = (code, signal) => reject(new Error(`worker exited at start: ${code ?? signal}: ${this.stderr.slice(-500)}`));
    });
    this.onMessage = undefined;
    this.onExit = undefined;
  }

  kill() {
    if (this.worker && this.worker.exitCode === null && this.worker.signalCode === null) this.worker.kill('SIGKILL');
    this.worker = undefined;
  }

  /** One case through the worker: {status: 'done', res} | {status: 'hang'|'memory'|'died', ...}. */
  async runLib(c) {
    if (!this.worker) await this.startWorker();
    const w = this.worker;
    return new Promise((resolve) => {
      let peak = 0;
      let done = false;
      const finish = (r) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearInterval(poll);
        this.onMessage = undefined;
        this.onExit = undefined;
        resolve({ ...r, peakKb: peak });
      };
      const timer = setTimeout(() => {
        this.kill();
        finish({ status: 'hang' });
      }, TIME_CAP_MS);
      const poll = setInterval(() => {
        const kb = rssKb(w.pid);
        peak = Math.max(peak, kb);
        if (kb > MEM_CAP_KB) {
          this.kill();
          finish({ status: 'memory' });
        }
      }, 50);
      this.onMessage = (msg) => {
        if (msg.type === 'result' && msg.id === c.index) finish({ status: 'done', res: msg });
      };
      this.onExit = (code, signal) => {
        this.worker = undefined;
        setTimeout(() => finish({ status: 'died', code, signal, stderr: this.stderr }), 20);
      };
      w.send({ type: 'case', id: c.index, spec: c.spec, chain: c.chain });
    });
  }

  /** One case through bin/nydus-image.js. */
  runCli(c) {
    return new Promise((resolve) => {
      const child = capped([BIN, ...cliArgv(c.spec)], { cwd: this.dir });
      let stdout = '';
      let stderr = '';
      let peak = 0;
      let status = 'done';
      child.stdout.on('data', (d) => {
        if (stdout.length < 8 << 20) stdout += d;
      });
      child.stderr.on('data', (d) => {
        if (stderr.length < 1 << 20) stderr += d;
      });
      const timer = setTimeout(() => {
        status = 'hang';
        child.kill('SIGKILL');
      }, TIME_CAP_MS);
      const poll = setInterval(() => {
        const kb = rssKb(child.pid);
        peak = Math.max(peak, kb);
        if (kb > MEM_CAP_KB) {
          status = 'memory';
          child.kill('SIGKILL');
        }
      }, 50);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        clearInterval(poll);
        resolve({ status, code, signal, stdout, stderr, peakKb: peak });
      });
    });
  }
}

const firstLine = (s) => String(s ?? '').split('\n').find((l) => l.trim() !== '') ?? '';

function normalize(msg, root) {
  return firstLine(msg)
    .split(root).join('<tmp>')
    .replace(/"(?:[^"\\]|\\.)*"/g, '"…"')
    .replace(/0x[0-9a-f]+/gi, 'N')
    .replace(/[0-9a-f]{16,}/gi, 'H')
    .replace(/\d+/g, 'N')
    .slice(0, 160);
}

/** Everything wrong with one finished case: [{kind, message, detail?}]. */
async function judgeCase(c, r, slot, ctx) {
  const found = [];
  const add = (kind, message, detail) => found.push({ kind, message: String(message), detail });
  const errLine = (e) => `${e.name}: ${firstLine(e.message)}`;
  if (r.status === 'hang') add('hang', `no result within ${TIME_CAP_MS / 1000} s`);
  else if (r.status === 'memory') add('memory-cap', `RSS above ${MEM_CAP_KB / 1024} MiB`);
  else if (r.status === 'died') {
    const heap = /heap out of memory|Reached heap limit/.test(r.stderr ?? '');
    add(heap ? 'oom' : 'crash', `worker ${r.signal ? `killed by ${r.signal}` : `exited ${r.code}`}${heap ? ': JavaScript heap out of memory' : ''}`, (r.stderr ?? '').slice(-2000));
  } else if (c.via === 'lib') {
    const res = r.res;
    if (!res.ok) {
      const e = res.err;
      if (/EFBIG/.test(e.message) || e.cause?.code === 'EFBIG') add('output-cap', `an output passed ${FSIZE_CAP} bytes: ${errLine(e)}`, e.stack);
      else if (!e.nydus) add(e.code && /^E[A-Z]+$/.test(e.code) ? 'raw-fs-error' : 'raw-error', errLine(e), e.stack);
      else if (e.code === 'INTERNAL') add('internal', errLine(e), e.stack);
      else if (RAW.test(e.message)) {
        add('raw-message', e.message, `${e.stack}\ncause: ${JSON.stringify(e.cause)}`);
      } else if (e.message.includes('\n')) add('multi-line-message', e.message);
    }
    if (res.chain && !res.chain.ok) add('create-output-unreadable', errLine(res.chain.err), res.chain.err.stack);
    const leak = judge.textLeaks(res.texts ?? [], c.passwdInInput);
    if (leak) add('canary-in-output', leak);
  } else {
    if (r.status === 'done' && r.signal) add(/heap out of memory/.test(r.stderr) ? 'oom' : 'crash', `killed by ${r.signal}`, r.stderr.slice(-2000));
    else if (r.code === 70) add('internal', `exit 70: ${firstLine(r.stderr.split('\n').find((l) => l.startsWith('Error')) ?? r.stderr)}`, r.stderr.slice(-2000));
    else if (r.code !== 0 && r.code !== 1 && r.code !== 2) add('bad-exit', `exit ${r.code}: ${firstLine(r.stderr)}`, r.stderr.slice(-2000));
    if (/\n\s+at .+[(:]\d+/.test(r.stderr)) add('stack-trace', `stack trace on stderr: ${firstLine(r.stderr.split('\n').find((l) => l.startsWith('Error')) ?? r.stderr)}`, r.stderr.slice(-2000));
    if (r.code !== 0 && r.code !== null) {
      const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
      const errs = lines.filter((l) => l.startsWith('Error'));
      const last = lines[lines.length - 1] ?? '';
      if (errs.length !== 1 || !last.startsWith('Error: ')) add('stderr-not-one-line', `stderr does not end in one "Error: " line: ${JSON.stringify(last.slice(0, 100))}`, r.stderr.slice(-2000));
      else if (RAW.test(last)) add('raw-message', last);
    }
    const leak = judge.textLeaks([r.stdout ?? ''], c.passwdInInput);
    if (leak) add('canary-in-output', leak);
  }
  // The world outside the case directory.
  const state = judge.canaryState(path.join(slot.dir, 'secret'));
  if (state === 'read') add('canary-read', 'the canary outside the case directory was read');
  else if (state) add('canary-written', `the canary outside the case directory was ${state}`);
  const now = judge.listing(slot.dir, ['case', 'secret']);
  if (now !== '') add('file-outside-case', `new in the slot directory: ${now.split('\n').slice(0, 5).join(', ')}`);
  const top = judge.listing(ctx.root);
  if (top !== ctx.rootListing) add('file-outside-case', 'the run directory changed');
  for (const p of judge.ESCAPE_PROBES) if (fs.existsSync(p)) add('file-outside-case', `${p} appeared`);
  const hits = judge.scanOutputs(path.join(slot.dir, 'case/out'), c.passwdInInput);
  if (c.spec.target === 'export' && !c.spec.opts.output) hits.push(...judge.scanOutputs(path.join(slot.dir, 'case/blobs'), c.passwdInInput).filter((h) => h.includes('.disk')));
  for (const h of hits) add('canary-in-output', h.split(slot.dir).join('<slot>'));
  // Unpack output, and create's output unpacked: no member may escape, and Python must not escape.
  const tars = [];
  if (r.status === 'done' && ((c.via === 'lib' && r.res.ok) || (c.via === 'cli' && r.code === 0))) {
    if (c.spec.target === 'unpack') tars.push(path.join(slot.dir, c.spec.opts.output));
  }
  if (r.status === 'done' && c.via === 'lib' && r.res.chain?.ok) tars.push(path.join(slot.dir, c.chain.output));
  for (const t of tars) {
    if (!fs.existsSync(t) || !fs.statSync(t).isFile()) continue;
    const size = fs.statSync(t).size;
    if (size > 256 << 20) continue;
    for (const e of judge.tarEscapes(fs.readFileSync(t))) add(`escape:${e.kind}`, `${path.basename(t)}: ${e.kind}`, e.detail);
    const py = await judge.pythonJail(t, path.join(slot.dir, 'case/pyjail'));
    for (const p of py.problems) add('python-escape', `${path.basename(t)}: tarfile.extractall ${p}`, py.note);
    ctx.stats.pythonRuns++;
  }
  return found;
}

function shellQuote(s) {
  return /^[A-Za-z0-9_./=:,@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

function saveFinding(o, ctx, c, f, slot, sig) {
  const n = String(ctx.findings.size).padStart(3, '0');
  const dir = path.join(o.out, `${n}-${c.target}-${f.kind.replace(/[^a-z0-9-]/gi, '_')}`);
  fs.mkdirSync(dir, { recursive: true });
  const copies = [];
  for (const file of c.files) {
    // The inputs exactly as given; unmodified upstream fixtures by reference.
    if (file.src) {
      copies.push(`cp ${shellQuote(file.src)} "$W"/${shellQuote(file.rel)}`);
      continue;
    }
    fs.mkdirSync(path.dirname(path.join(dir, file.rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, file.rel), file.bytes);
  }
  const argv = cliArgv(c.spec);
  const info = {
    signature: sig, kind: f.kind, message: f.message, detail: f.detail, seed: o.seed, case: c.index, target: c.target, via: c.via,
    mutations: c.what, spec: c.spec, argv,
  };
  fs.writeFileSync(path.join(dir, 'case.json'), `${JSON.stringify(info, null, 2)}\n`);
  const dirs = c.dirs.map((d) => `mkdir -p "$W"/${d}`).join('\n');
  fs.writeFileSync(path.join(dir, 'repro.sh'), `#!/bin/sh
# ${f.kind}: ${f.message.split('\n')[0].slice(0, 200)}
# seed ${o.seed}, case ${c.index}, target ${c.target} (${c.via}); mutations: ${c.what.join(' | ').slice(0, 600).replace(/\n/g, ' ')}
# Recreates the slot layout (case/ with the inputs; a canary file "secret" beside it) in a
# temporary directory and runs the command there. Set NYDUS=/path/to/bin/nydus-image.js.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
NYDUS=\${NYDUS:-${BIN}}
W=$(mktemp -d /tmp/nydus-fuzz-repro.XXXXXX)
${dirs}
cp -r "$HERE"/case/. "$W"/case/
${copies.join('\n')}
node -e 'const b=Buffer.alloc(1<<20);for(let i=0;i<b.length;i+=16)b.write("NYDUSFUZZCANARY:",i);require("fs").writeFileSync(process.argv[1],b)' "$W"/secret
cd "$W" && node --max-old-space-size=1024 "$NYDUS" ${argv.map(shellQuote).join(' ')}
echo "exit $? (work dir $W)"
`, { mode: 0o755 });
  return dir;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const lib = await import(path.join(REPO, 'dist/index.js'));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'nydus-fuzz-'));
  const log = (s) => {
    if (!o.json) process.stderr.write(`${s}\n`);
  };
  const started = Date.now();
  log(`fuzz: seed ${o.seed}, ${o.seconds} s, targets ${o.targets.join(',')}, ${o.workers} workers, work dir ${root}, findings in ${o.out}`);
  const seeds = await makeSeeds(path.join(root, 'seeds'), lib);
  log(`fuzz: ${seeds.boots.length} bootstrap seeds, ${seeds.tars.length} tars, ${seeds.gzips.length} gzip streams (${Date.now() - started} ms)`);
  fs.rmSync(o.out, { recursive: true, force: true });
  fs.mkdirSync(o.out, { recursive: true });
  const ctx = {
    root, findings: new Map(), stats: { executions: 0, byTarget: {}, byVia: { lib: 0, cli: 0 }, pythonRuns: 0, restarts: 0, peakKb: 0, errors: 0, harnessErrors: 0 },
  };
  const slots = [];
  for (let k = 0; k < o.workers; k++) {
    const dir = path.join(root, `w${k}`);
    fs.mkdirSync(dir, { recursive: true });
    judge.plantCanary(path.join(dir, 'secret'));
    slots.push(new Slot(dir, k));
  }
  ctx.rootListing = judge.listing(root);
  const deadline = Date.now() + o.seconds * 1000;
  let next = 0;
  let lastReport = Date.now();
  let stopping = false;
  process.on('SIGINT', () => {
    stopping = true;
  });

  const runSlot = async (slot) => {
    while (Date.now() < deadline && !stopping) {
      try {
        await runOne(slot);
      } catch (e) {
        // A bug of the harness (not of the code under test) must not stop the slot.
        ctx.stats.harnessErrors++;
        process.stderr.write(`fuzz: harness error in slot ${slot.index}: ${String(e.stack).slice(0, 1000)}\n`);
      }
    }
  };
  const runOne = async (slot) => {
    {
      const index = next++;
      let c;
      try {
        c = makeCase(o.seed, index, seeds, o.targets, o.cliFraction);
      } catch (e) {
        // A bug of the harness, not of the code under test: say so and go on.
        ctx.stats.harnessErrors++;
        process.stderr.write(`fuzz: case ${index} could not be made: ${e.stack}\n`);
        return;
      }
      // Inputs that hold /etc/passwd-like bytes themselves (upstream fixtures, gzip seeds) cannot show a leak of it.
      c.passwdInInput = c.files.some((f) => f.bytes.includes(judge.PASSWD_MARK) || f.plain?.includes(judge.PASSWD_MARK));
      const caseDir = path.join(slot.dir, 'case');
      removeTree(caseDir);
      for (const d of c.dirs) fs.mkdirSync(path.join(slot.dir, d), { recursive: true });
      for (const f of c.files) fs.writeFileSync(path.join(slot.dir, f.rel), f.bytes);
      judge.plantCanary(path.join(slot.dir, 'secret'));
      slot.asyncReports = [];
      const t0 = Date.now();
      let r;
      try {
        r = c.via === 'lib' ? await slot.runLib(c) : await slot.runCli(c);
      } catch (e) {
        r = { status: 'died', code: null, signal: null, stderr: String(e.message) };
      }
      if (r.status !== 'done') ctx.stats.restarts++;
      if (process.env.FUZZ_TRACE) process.stderr.write(`case ${c.index} ${c.target} ${c.via} ${r.status} ${Date.now() - t0} ms ${c.what.join(' | ').slice(0, 150)}\n`);
      ctx.stats.peakKb = Math.max(ctx.stats.peakKb, r.peakKb ?? 0);
      const found = await judgeCase(c, r, slot, ctx);
      await new Promise((res) => setTimeout(res, 5));
      for (const a of slot.asyncReports) found.push({ kind: a.kind, message: `${a.err.name}: ${firstLine(a.err.message)}`, detail: a.err.stack });
      ctx.stats.executions++;
      ctx.stats.byTarget[c.target] = (ctx.stats.byTarget[c.target] ?? 0) + 1;
      ctx.stats.byVia[c.via]++;
      if (c.via === 'lib' ? r.status === 'done' && !r.res.ok : r.code !== 0) ctx.stats.errors++;
      for (const f of found) {
        // A hang or a cap says nothing of its cause: the kinds of mutation that led there tell them apart.
        const how = /^(hang|memory-cap|oom|crash|output-cap)$/.test(f.kind)
          ? `|${[...new Set(c.what.slice(1).map((w) => normalize(w, root).split(/[ :=]/).slice(0, 2).join(' ')))].sort().join(',')}`
          : '';
        const sig = `${c.target}|${f.kind}|${normalize(f.message, root)}${how}`;
        const known = ctx.findings.get(sig);
        if (known) {
          known.count++;
          continue;
        }
        const dir = saveFinding(o, ctx, c, f, slot, sig);
        ctx.findings.set(sig, { sig, kind: f.kind, target: c.target, message: firstLine(f.message).split(root).join('<tmp>').slice(0, 300), count: 1, dir, case: c.index, via: c.via });
        log(`fuzz: FINDING ${c.target} ${f.kind}: ${firstLine(f.message).slice(0, 200)} (case ${c.index}, ${dir})`);
      }
      // The canary and the slot directory back as they were, for the next case.
      for (const n of judge.listing(slot.dir, ['case', 'secret']).split('\n').filter(Boolean)) removeTree(path.join(slot.dir, n));
      for (const p of judge.ESCAPE_PROBES) if (fs.existsSync(p)) removeTree(p);
      if (judge.canaryState(path.join(slot.dir, 'secret'))) {
        fs.rmSync(path.join(slot.dir, 'secret'), { force: true });
        judge.plantCanary(path.join(slot.dir, 'secret'));
      }
      if (Date.now() - lastReport > 30_000) {
        lastReport = Date.now();
        const s = (Date.now() - started) / 1000;
        log(`fuzz: ${ctx.stats.executions} executions in ${s.toFixed(0)} s (${(ctx.stats.executions / s).toFixed(1)}/s), ${ctx.findings.size} findings`);
      }
    }
  };
  const runStart = Date.now();
  // A watchdog: whatever a slot is stuck on, the run ends with a summary 120 s past its budget.
  let overtime = false;
  const watchdog = new Promise((resolve) => setTimeout(() => {
    overtime = true;
    log(`fuzz: still running 120 s past the ${o.seconds} s budget; ending with what was judged`);
    resolve();
  }, o.seconds * 1000 + 120_000).unref());
  await Promise.race([Promise.all(slots.map(runSlot)), watchdog]);
  for (const s of slots) s.kill();
  const seconds = (Date.now() - runStart) / 1000;
  const findings = [...ctx.findings.values()].sort((a, b) => a.kind.localeCompare(b.kind) || a.target.localeCompare(b.target));
  const summary = {
    seed: o.seed, seconds: Math.round(seconds), executions: ctx.stats.executions, perSecond: Number((ctx.stats.executions / seconds).toFixed(2)),
    byTarget: ctx.stats.byTarget, byVia: ctx.stats.byVia, cleanErrors: ctx.stats.errors, pythonRuns: ctx.stats.pythonRuns,
    restarts: ctx.stats.restarts, harnessErrors: ctx.stats.harnessErrors, overtime, peakRssMiB: Math.round(ctx.stats.peakKb / 1024), findings: findings.length, out: o.out,
    list: findings.map((f) => ({ kind: f.kind, target: f.target, count: f.count, message: f.message, dir: f.dir })),
  };
  fs.writeFileSync(path.join(o.out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  removeTree(root);
  if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    process.stdout.write(`executions ${summary.executions} in ${summary.seconds} s (${summary.perSecond}/s; lib ${summary.byVia.lib}, cli ${summary.byVia.cli}; python extractions ${summary.pythonRuns}; restarts ${summary.restarts})\n`);
    process.stdout.write(`by target: ${Object.entries(summary.byTarget).map(([k, v]) => `${k} ${v}`).join(', ')}\n`);
    process.stdout.write(`findings: ${summary.findings}\n`);
    for (const f of findings) process.stdout.write(`  [${f.kind}] ${f.target} x${f.count}: ${f.message}\n      ${f.dir}\n`);
  }
  // Exit now: a worker the code under test left busy must not keep the run alive.
  process.exit(findings.length > 0 ? 1 : 0);
}

main().catch((e) => {
  process.stderr.write(`fuzz: ${e.stack ?? e}\n`);
  process.exit(2);
});
