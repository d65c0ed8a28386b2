// The judges: canary files around the case directory (read, written, or their bytes in an
// output), new files outside it, unpack output members that escape, and Python's
// tarfile.extractall run without a filter inside a chroot jail as nobody.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { parseTar } from './tar.js';

export const CANARY_MARK = Buffer.from('NYDUSFUZZCANARY:');
export const PASSWD_MARK = Buffer.from('root:x:0:0:');
const OLD_ATIME = 1_000_000_000;
const OLD_MTIME = 1_500_000_000;
/** Paths a hostile name aims at; they must never appear. */
export const ESCAPE_PROBES = ['/tmp/nydus-fuzz-escape', '/etc/nydus-fuzz', '/abs'];

/** Plants the canary (1 MiB of the marker) with an atime older than its mtime: relatime then records any read. */
export function plantCanary(file) {
  if (!fs.existsSync(file) || fs.statSync(file).size !== 1 << 20) {
    const b = Buffer.alloc(1 << 20);
    for (let i = 0; i < b.length; i += CANARY_MARK.length) CANARY_MARK.copy(b, i);
    fs.writeFileSync(file, b);
  }
  fs.utimesSync(file, OLD_ATIME, OLD_MTIME);
}

/** What happened to the canary since plantCanary: 'read', 'written', 'gone' or undefined. */
export function canaryState(file) {
  let st;
  try {
    st = fs.statSync(file);
  } catch {
    return 'gone';
  }
  if (st.size !== 1 << 20 || Math.round(st.mtimeMs / 1000) !== OLD_MTIME) return 'written';
  if (Math.round(st.atimeMs / 1000) !== OLD_ATIME) return 'read';
  return undefined;
}

export const listing = (dir, skip = []) => {
  try {
    return fs.readdirSync(dir).filter((n) => !skip.includes(n)).sort().join('\n');
  } catch {
    return '';
  }
};

/** Files under dir (recursively, bounded) containing the canary's or /etc/passwd's bytes. */
export function scanOutputs(dir, passwdInInput = false, limit = 256 << 20) {
  const hits = [];
  const stack = [dir];
  let budget = 2000;
  while (stack.length && budget-- > 0) {
    const d = stack.pop();
    let names;
    try {
      names = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of names) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) {
        const hit = scanFile(p, limit, passwdInInput);
        if (hit) hits.push(`${p}: ${hit}`);
      }
    }
  }
  return hits;
}

function scanFile(p, limit, passwdInInput) {
  let fd;
  try {
    fd = fs.openSync(p, 'r');
    const size = Math.min(fs.fstatSync(fd).size, limit);
    const piece = Buffer.alloc(1 << 20);
    let carry = Buffer.alloc(0);
    for (let pos = 0; pos < size; pos += piece.length) {
      const n = fs.readSync(fd, piece, 0, piece.length, pos);
      if (n <= 0) break;
      const b = Buffer.concat([carry, piece.subarray(0, n)]);
      if (b.includes(CANARY_MARK)) return 'holds the canary bytes';
      if (!passwdInInput && b.includes(PASSWD_MARK)) return 'holds /etc/passwd bytes';
      carry = Buffer.from(b.subarray(Math.max(0, b.length - 16)));
    }
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  return undefined;
}

export function textLeaks(texts, passwdInInput = false) {
  for (const t of texts) {
    if (t.includes(CANARY_MARK.toString())) return 'output text holds the canary bytes';
    if (!passwdInInput && t.includes(PASSWD_MARK.toString())) return 'output text holds /etc/passwd bytes';
  }
  return undefined;
}

const show = (b) => JSON.stringify(b.toString('latin1').slice(0, 80));

/**
 * Members of a tar that a naive extractor would place outside its directory: absolute names,
 * ".." components, NUL bytes, a member under a path an earlier member made a symlink or a
 * non-directory, hardlink targets that escape. Returns [{kind, detail}].
 */
export function tarEscapes(bytes) {
  const { members, error } = parseTar(bytes);
  const out = [];
  if (error) out.push({ kind: 'tar-unreadable', detail: error });
  // path -> { t: type, bad: the nearest non-directory ancestor ({ key, t }) or undefined }.
  // Looked up from the nearest known ancestor, so a 4096-deep tree costs linear time per member
  // (joining every prefix of every member was cubic and stalled the harness for minutes).
  const info = new Map();
  const comps = (name) => name.toString('latin1').split('/').filter((c) => c !== '' && c !== '.');
  const badAncestor = (cs) => {
    for (let i = cs.length - 1; i >= 1; i--) {
      const key = cs.slice(0, i).join('/');
      const e = info.get(key);
      if (e) return e.t !== '5' ? { key, t: e.t } : e.bad;
    }
    return undefined;
  };
  for (const m of members) {
    const name = m.name;
    if (name.includes(0)) out.push({ kind: 'member-nul', detail: show(name) });
    if (name[0] === 0x2f) out.push({ kind: 'member-absolute', detail: show(name) });
    const cs = comps(name);
    if (cs.includes('..')) out.push({ kind: 'member-dotdot', detail: show(name) });
    const anc = badAncestor(cs);
    if (anc?.t === '2') out.push({ kind: 'member-through-symlink', detail: `${show(name)} under symlink ${anc.key}` });
    else if (anc) out.push({ kind: 'member-under-nondir', detail: `${show(name)} under type ${anc.t} ${anc.key}` });
    if (m.type === '1') {
      const lc = comps(m.linkname);
      if (m.linkname[0] === 0x2f) out.push({ kind: 'hardlink-absolute', detail: `${show(name)} -> ${show(m.linkname)}` });
      if (lc.includes('..')) out.push({ kind: 'hardlink-dotdot', detail: `${show(name)} -> ${show(m.linkname)}` });
      if (badAncestor(lc)?.t === '2') out.push({ kind: 'hardlink-through-symlink', detail: `${show(name)} -> ${show(m.linkname)}` });
    }
    const key = cs.join('/');
    const prev = info.get(key)?.t;
    if (prev === '2' && m.type !== '2') out.push({ kind: 'member-over-symlink', detail: `${show(name)} (type ${m.type}) after a symlink of that name` });
    else if (prev !== undefined && !(prev === '5' && m.type === '5')) out.push({ kind: 'member-duplicate', detail: `${show(name)} (type ${m.type}) after type ${prev}` });
    if (cs.length) info.set(key, { t: m.type === '\0' || m.type === '7' ? '0' : m.type, bad: anc });
  }
  return out;
}

const PY = String.raw`
import os, sys, tarfile
tar_path, jail = sys.argv[1], sys.argv[2]
tf = tarfile.open(tar_path, 'r:')
os.chroot(jail)
os.chdir('/')
os.setgroups([])
os.setgid(65534)
os.setuid(65534)
tf.errorlevel = 0
kw = {'filter': 'fully_trusted'} if hasattr(tarfile, 'fully_trusted_filter') else {}
# extractall member by member, so one member that fails does not hide the ones after it
for m in tf:
    try:
        tf.extract(m, '/d', **kw)
    except Exception as e:
        print('extract %r: %s: %s' % (m.name[:80], type(e).__name__, e))
`;

/**
 * Extracts a tar with Python's tarfile, no filter, in `jail` (a chroot, as nobody, so the
 * host is never at risk) into jail/d, and reports what appeared or changed outside jail/d.
 */
export function pythonJail(tarFile, jail, timeoutMs = 10_000) {
  try {
    fs.rmSync(jail, { recursive: true, force: true });
  } catch {
    // deeper than PATH_MAX: what a hostile tar extracts to
    execFileSync('rm', ['-rf', '--one-file-system', jail], { stdio: 'ignore' });
  }
  fs.mkdirSync(path.join(jail, 'd'), { recursive: true });
  plantCanary(path.join(jail, 'secret'));
  for (const p of [jail, path.join(jail, 'd'), path.join(jail, 'secret')]) fs.chownSync(p, 65534, 65534);
  fs.chmodSync(jail, 0o777);
  return new Promise((resolve) => {
    const child = spawn('python3', ['-c', PY, tarFile, jail], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stdout.on('data', (d) => (err += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const problems = [];
      const extra = listing(jail, ['d', 'secret']);
      if (extra) problems.push(`appeared beside the extraction dir: ${extra.split('\n').slice(0, 5).join(', ')}`);
      const c = canaryState(path.join(jail, 'secret'));
      if (c === 'written' || c === 'gone') problems.push(`the canary beside the extraction dir was ${c}`);
      resolve({ problems, note: signal ? `python killed by ${signal}` : code !== 0 ? `python exit ${code}: ${err.slice(-300)}` : err.slice(0, 300) });
    });
  });
}
