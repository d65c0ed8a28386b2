// What EROFS and the kernel cannot hold is refused at create, from any source: one line naming
// the entry and the limit, exit 1, and no output file. Tars reach the bootstrap planner with
// what a directory cannot hold (names past 255 bytes, deep paths); a tmpfs directory reaches
// the directory source with xattrs no disk filesystem here holds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nydusImage } from './cli-runner.js';
import { run, runOk } from '../helpers/tools.js';
import { skipLoudly, type SkipContext } from '../helpers/kernel.js';

let work = '';

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nydus-create-limits-'));
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

interface PaxMember {
  name: string;
  type?: 'file' | 'dir' | 'symlink';
  linkname?: string;
  data?: string;
  /** PAX records, e.g. SCHILY.xattr.user.x. */
  pax?: Record<string, string>;
}

const PAX_TAR_PY = `import io, json, sys, tarfile
spec = json.load(sys.stdin)
types = {'file': tarfile.REGTYPE, 'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE}
with tarfile.open(spec['out'], 'w', format=tarfile.PAX_FORMAT) as t:
    for m in spec['members']:
        ti = tarfile.TarInfo(m['name'])
        ti.type = types[m.get('type', 'file')]
        ti.mode = 0o755 if ti.type == tarfile.DIRTYPE else 0o644
        ti.mtime = 1600000000
        ti.linkname = m.get('linkname', '')
        ti.pax_headers = m.get('pax', {})
        data = m.get('data', '').encode() if ti.type == tarfile.REGTYPE else None
        if data is not None:
            ti.size = len(data)
        t.addfile(ti, io.BytesIO(data) if data is not None else None)
`;

/** A PAX tar written by Python's tarfile: names, link targets and xattrs go in as given. */
async function paxTar(file: string, members: PaxMember[]): Promise<string> {
  await runOk('python3', ['-c', PAX_TAR_PY], { input: JSON.stringify({ out: file, members }) });
  return file;
}

/** Builds `tar` and expects the refusal: exit 1, one line matching `line`, no output at all. */
async function refused(name: string, src: string, line: RegExp, type = 'tar-rafs'): Promise<string> {
  const out = join(work, `out-${name}`);
  await mkdir(out);
  const r = await nydusImage(['create', '-t', type, '-B', join(out, 'boot'), '-D', join(out), src], { timeoutMs: 60_000 });
  const lines = r.stderr.toString().trim().split('\n');
  expect(r.code, r.stderr.toString()).toBe(1);
  expect(lines, r.stderr.toString()).toHaveLength(1);
  expect(lines[0]).toMatch(line);
  expect(await readdir(out)).toEqual([]);
  return lines[0]!;
}

const repeat = (c: string, n: number) => c.repeat(n);

describe('create refuses what EROFS cannot hold, naming the entry and the limit', () => {
  it('NAME_MAX: a 300-byte name', async () => {
    const long = repeat('n', 300);
    const tar = await paxTar(join(work, 'name.tar'), [{ name: 'dir', type: 'dir' }, { name: `dir/${long}`, data: 'x' }]);
    // The tar source refuses it first (badName), before the planner would (limitError).
    const line = await refused('name', tar, /NAME_MAX (is |\()255/);
    expect(line).toContain('/dir/nnnn');
  });

  it('XATTR_AREA_MAX: six 60 KB xattrs (crashed with "value out of range")', async () => {
    const pax: Record<string, string> = {};
    for (let i = 1; i <= 6; i++) pax[`SCHILY.xattr.user.k${i}`] = repeat('v', 60_000);
    const tar = await paxTar(join(work, 'area.tar'), [{ name: 'big-xattrs', data: 'x', pax }]);
    const line = await refused('area', tar, /XATTR_AREA_MAX/);
    expect(line).toContain('/big-xattrs');
    expect(line).not.toMatch(/out of range/);
  });

  it('SYMLINK_MAX: a symlink target of 5000 bytes', async () => {
    const tar = await paxTar(join(work, 'link.tar'), [{ name: 'ln', type: 'symlink', linkname: repeat('t/', 2500) }]);
    expect(await refused('link', tar, /SYMLINK_MAX/)).toContain('/ln');
  });

  it('DEPTH_MAX: 4097 directory levels from a tar', async () => {
    const tar = await paxTar(join(work, 'deep.tar'), [{ name: `${repeat('d/', 4097)}f`, data: 'x' }]);
    await refused('deep', tar, /DEPTH_MAX \(4096\)/);
  });

  // Linux lets a value be 65536 bytes, one more than EROFS's u16 e_value_size; tmpfs holds
  // such values and six 60 KB ones, which most disk filesystems refuse.
  it('XATTR_AREA_MAX from a directory: six 60 KB xattrs on tmpfs, refused by the directory source', async (ctx) => {
    await withTmpfs(ctx, async (src) => {
      await writeFile(join(src, 'f'), 'x');
      for (let i = 1; i <= 6; i++) await runOk('setfattr', ['-n', `user.k${i}`, '-v', repeat('v', 60_000), join(src, 'f')]);
      expect(await refused('dir-area', src, /XATTR_AREA_MAX/, 'dir-rafs')).toContain('/f');
    });
  });

  it('XATTR_VALUE_MAX from a directory: a 65536-byte value on tmpfs', async (ctx) => {
    await withTmpfs(ctx, async (src) => {
      await mkdir(join(src, 'sub'));
      await writeFile(join(src, 'sub', 'g'), 'x');
      await runOk('setfattr', ['-n', 'user.big', '-v', repeat('v', 65_536), join(src, 'sub', 'g')]);
      expect(await refused('dir-value', src, /XATTR_VALUE_MAX \(65535\)/, 'dir-rafs')).toContain('/sub/g');
    });
  });
});

/** Runs fn on a fresh directory in a tmpfs mounted for it (a loud skip when that is not possible). */
async function withTmpfs(ctx: SkipContext, fn: (dir: string) => Promise<void>): Promise<void> {
  if (process.getuid?.() !== 0) return skipLoudly(ctx, 'mounting a tmpfs needs root');
  const mnt = await mkdtemp(join(work, 'tmpfs-'));
  const m = await run('mount', ['-t', 'tmpfs', 'tmpfs', mnt]);
  if (m.code !== 0) return skipLoudly(ctx, `cannot mount tmpfs: ${m.stderr.toString().trim()}`);
  try {
    const src = join(mnt, 'src');
    await mkdir(src);
    await fn(src);
  } finally {
    await run('umount', [mnt]);
  }
}
