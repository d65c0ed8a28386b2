// `nydus-image unpack` as users and the snapshotter run it (needs a build: tsc and oclif
// manifest): the upstream fixture, the snapshotter's argv writing into a FIFO, a file past
// 4 GiB streamed in bounded memory, and every refusal as one line with its exit code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, open, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nydusImage, nydusImageOk, UPSTREAM } from './cli-runner.js';
import { skipLoudly } from '../helpers/kernel.js';
import { hasTool, run, runOk } from '../helpers/tools.js';
import { prng } from '../helpers/tree.js';

const BOOT = join(UPSTREAM, 'bootstrap', 'rafs-v6-2.2.boot');
const BLOBS = join(UPSTREAM, 'blobs');
const BLOB_ID = 'be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef';
const GiB = 1024 ** 3;

let work = '';
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-unpack-cli-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** The one line a failed run printed, after checking there was exactly one and no stdout. */
function oneLine(r: { stdout: Buffer; stderr: Buffer }): string {
  expect(r.stdout.toString()).toBe('');
  const lines = r.stderr.toString().trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

describe('unpack on the upstream RAFS v6 fixture', () => {
  it('writes a tar GNU tar lists and extracts, quietly; -B with --blob FILE writes the same bytes', async () => {
    const out = join(work, 'a.tar');
    const r = await nydusImageOk(['unpack', BOOT, '--blob-dir', BLOBS, '--output', out]);
    expect(r.stdout.toString()).toBe('');
    const tar = await readFile(out);
    expect(tar.length).toBe(512 + 17_408 + 512 + 13_824 + 1024);
    const b = join(work, 'b.tar');
    await nydusImageOk(['unpack', '-B', BOOT, '-b', join(BLOBS, BLOB_ID), '--output', b]);
    expect((await readFile(b)).equals(tar)).toBe(true);
    if (!hasTool('tar')) return;
    expect((await runOk('tar', ['-tf', out])).stdout.toString()).toBe('lib.rs\nsync_io.rs\n');
    const lib = (await runOk('tar', ['-xOf', out, 'lib.rs'])).stdout;
    expect(lib.length).toBe(16_931);
    expect(lib.toString('latin1', 0, 40)).toBe('// Copyright (C) 2020 Alibaba Cloud. All');
  });

  it("the snapshotter's argv, writing into a FIFO read by another process", async () => {
    const fifo = join(work, 'oci.tar');
    await runOk('mkfifo', [fifo]);
    const copy = join(work, 'from-fifo.tar');
    const reader = spawn('sh', ['-c', 'cat "$1" > "$2"', 'sh', fifo, copy], { stdio: 'ignore' });
    const exited = new Promise<number | null>((resolve) => reader.on('close', resolve));
    const r = await nydusImageOk(['unpack', '--log-level', 'warn', '--bootstrap', BOOT, '--output', fifo, '--blob', join(BLOBS, BLOB_ID)]);
    expect(r.stderr.toString()).toBe('');
    expect(await exited).toBe(0);
    const ref = join(work, 'ref.tar');
    await nydusImageOk(['unpack', BOOT, '-D', BLOBS, '--output', ref]);
    expect((await readFile(copy)).equals(await readFile(ref))).toBe(true);
  });

  it('a missing blob: one line naming it, exit 1, no output and no temporary file', async () => {
    const dir = join(work, 'missing');
    await mkdir(dir);
    const r = await nydusImage(['unpack', BOOT, '--blob-dir', dir, '--output', join(dir, 'out.tar')]);
    expect(r.code).toBe(1);
    expect(oneLine(r)).toBe(`Error: ${join(dir, BLOB_ID)}: no such file or directory`);
    expect(await readdir(dir)).toEqual([]);
  });

  it('--verify reads every chunk against its digest', async () => {
    const out = join(work, 'verified.tar');
    await nydusImageOk(['unpack', BOOT, '-D', BLOBS, '--output', out, '--verify']);
    expect((await readFile(out)).length).toBe(33_280);
  });
});

describe('unpack refusals: one line each, as upstream words them where it has words', () => {
  const out = () => join(work, 'never.tar');
  const cases: Array<[string, string[], number, string | RegExp]> = [
    ['no data source', [BOOT, '--output', 'x.tar'], 2, 'Error: invalid backend configuration, --blob, --blob-dir or --backend-type must be specified'],
    ['--blob with --blob-dir', [BOOT, '--blob', 'f', '--blob-dir', BLOBS, '--output', 'x.tar'], 2, 'Error: --blob cannot be used with --blob-dir'],
    ['localfs backend', [BOOT, '--backend-type', 'localfs', '--backend-config', '{"dir":"/x"}', '--output', 'x.tar'], 2, 'Error: Use --blob-dir to specify localfs backend'],
    ['a backend without config', [BOOT, '--backend-type', 'registry', '--output', 'x.tar'], 2, 'Error: --backend-config or --backend-config-file must be specified'],
    ['an http-proxy socket nobody serves', [BOOT, '--backend-type', 'http-proxy', '--backend-config', '{"addr":"/run/p.sock"}', '--output', 'x.tar'], 1, /^Error: http\+unix:\/\/\/run\/p\.sock\/ .*HEAD failed: connect ENOENT/],
    ['no --output', [BOOT, '-D', BLOBS], 2, 'Error: missing --output: the path for the output tar file'],
    ['an empty --output', [BOOT, '-D', BLOBS, '--output', ''], 2, 'Error: invalid empty --output option'],
    ['no bootstrap', ['-D', BLOBS, '--output', 'x.tar'], 2, 'Error: missing parameter `bootstrap` or `BOOTSTRAP`'],
    ['bootstrap twice', [BOOT, '-B', BOOT, '-D', BLOBS, '--output', 'x.tar'], 2, 'Error: give the bootstrap either as the argument or with -B, not both'],
    ['not a bootstrap', [join(BLOBS, BLOB_ID), '-D', BLOBS, '--output', 'x.tar'], 1, /^Error: .*be7d77ee.*: not a RAFS bootstrap/],
  ];
  for (const [what, args, code, message] of cases) {
    it(what, async () => {
      const r = await nydusImage(['unpack', ...args.map((a) => (a === 'x.tar' ? out() : a))]);
      expect(r.code).toBe(code);
      const line = oneLine(r);
      if (typeof message === 'string') expect(line).toBe(message);
      else expect(line).toMatch(message);
      expect(await readdir(work)).not.toContain('never.tar');
    });
  }
});

describe('unpack streams', () => {
  it('a sparse file past 4 GiB: right bytes at the far end, in bounded memory', async (ctx) => {
    if (!hasTool('/usr/bin/time')) return skipLoudly(ctx, '/usr/bin/time is not installed');
    if (!hasTool('python3')) return skipLoudly(ctx, 'python3 is not on PATH');
    const src = join(work, 'big-src');
    await mkdir(src);
    const size = 4 * GiB + 12_345;
    const pieces = [{ at: 0, data: prng(21, 5000) }, { at: 4 * GiB - 100, data: prng(22, 12_445) }];
    const fh = await open(join(src, 'big'), 'w');
    try {
      for (const p of pieces) await fh.write(p.data, 0, p.data.length, p.at);
      await fh.truncate(size);
    } finally {
      await fh.close();
    }
    const boot = join(work, 'big.boot');
    const blob = join(work, 'big.blob');
    await nydusImageOk(['create', '-B', boot, '-b', blob, src]);

    // A streaming reader on the FIFO: the member's size and the bytes at both pieces.
    const fifo = join(work, 'big.fifo');
    await runOk('mkfifo', [fifo]);
    const script = `import sys,tarfile,hashlib,json
t=tarfile.open(sys.argv[1],mode='r|')
out=[]
for m in t:
  f=t.extractfile(m)
  want={int(k):int(v) for k,v in json.loads(sys.argv[2]).items()}
  got={}
  pos=0
  while True:
    b=f.read(1<<20)
    if not b: break
    for at,n in want.items():
      if at < pos+len(b) and at+n > pos:
        got.setdefault(at,b'')
        got[at]+=b[max(0,at-pos):at+n-pos]
    pos+=len(b)
  out.append({'name':m.name,'size':m.size,'read':pos,'pieces':{str(k):hashlib.sha256(v).hexdigest() for k,v in got.items()}})
print(json.dumps(out))
`;
    const want = Object.fromEntries(pieces.map((p) => [String(p.at), p.data.length]));
    const reader = run('python3', ['-c', script, fifo, JSON.stringify(want)]);
    const r = await run('/usr/bin/time', ['-f', 'maxrss=%M', process.execPath, 'bin/nydus-image.js', 'unpack', boot, '-b', blob, '--output', fifo], { cwd: join(import.meta.dirname, '../..') });
    expect(r.code, r.stderr.toString()).toBe(0);
    const py = await reader;
    expect(py.code, py.stderr.toString()).toBe(0);
    const { createHash } = await import('node:crypto');
    expect(JSON.parse(py.stdout.toString())).toEqual([{
      name: 'big', size, read: size,
      pieces: Object.fromEntries(pieces.map((p) => [String(p.at), createHash('sha256').update(p.data).digest('hex')])),
    }]);
    const rss = Number(/maxrss=(\d+)/.exec(r.stderr.toString())![1]) * 1024;
    process.stderr.write(`unpack of a ${size}-byte file: max RSS ${(rss / 2 ** 20).toFixed(0)} MiB\n`);
    expect(rss).toBeLessThan(400 * 2 ** 20);
  }, 300_000);
});
