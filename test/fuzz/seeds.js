// Valid inputs made at start: a small tree with every kind of entry built into RAFS v6 images by
// our own create (dir-rafs with three compressors, an inline blob with a TOC, a --blob-cache-dir
// build, batch and encrypted blobs, tar-rafs, targz-rafs, tar-tarfs), the upstream fixtures, and tars of every dialect.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import * as tar from './tar.js';

export const UPSTREAM = '/work/shared/fixtures/upstream';

function content(n, seed) {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = i % 7 === 0 ? 0x20 : 0x61 + ((x >>> 0) % 26);
  }
  return b;
}

/** The tree: files, an empty file, a 4.5-chunk file, dirs, symlinks, hardlinks, xattrs, a fifo, a device. */
function makeTree(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const w = (p, data) => {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), data);
  };
  w('hello.txt', 'hello, world\n');
  w('empty', '');
  w('big.bin', content(0x1000 * 4 + 0x800, 7));
  w('same1', content(0x1000, 9));
  w('same2', content(0x1000, 9));
  w('sub/inner.txt', 'inner\n');
  w('sub/deeper/deepest/leaf', content(3000, 11));
  for (let i = 0; i < 40; i++) w(`many/file${String(i).padStart(3, '0')}`, `f${i}\n`);
  // Names of every short length, so a rename to a hostile name of the same length keeps the block size.
  for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 16, 24, 40, 100, 200, 255]) w(`names/${'q'.repeat(n)}`, `n${n}\n`);
  fs.symlinkSync('hello.txt', path.join(dir, 'lnk'));
  fs.symlinkSync('../../../../../../tmp', path.join(dir, 'up'));
  fs.symlinkSync('/etc', path.join(dir, 'abs'));
  fs.symlinkSync('sub', path.join(dir, 'dirlink'));
  fs.linkSync(path.join(dir, 'hello.txt'), path.join(dir, 'hard1'));
  fs.linkSync(path.join(dir, 'big.bin'), path.join(dir, 'sub/hard2'));
  w('xattrs', 'with xattrs\n');
  for (const [k, v] of [['user.foo', 'bar'], ['user.empty', ''], ['trusted.t', 'x'.repeat(200)], ['security.s', 'sec']]) {
    try {
      execFileSync('setfattr', ['-n', k, '-v', v === '' ? '""' : v, path.join(dir, 'xattrs')], { stdio: 'ignore' });
    } catch {
      // a filesystem without that namespace: the seed goes without it
    }
  }
  try {
    execFileSync('setfattr', ['-n', 'user.dir', '-v', 'd', path.join(dir, 'sub')], { stdio: 'ignore' });
    execFileSync('mkfifo', [path.join(dir, 'fifo')]);
    execFileSync('mknod', [path.join(dir, 'chr'), 'c', '1', '3']);
  } catch {
    // not root or no such tools: fewer kinds of entry
  }
  fs.chmodSync(path.join(dir, 'hello.txt'), 0o4755);
}

/** Tars of every dialect the tar source reads. */
export function makeTars() {
  const base = [
    { name: 'dir/', type: '5', mode: 0o755 },
    { name: 'dir/file.txt', data: 'hello from a tar\n' },
    { name: 'dir/empty', data: '' },
    { name: 'dir/big', data: content(0x1000 * 3 + 100, 3) },
    { name: 'dir/link', type: '2', linkname: 'file.txt' },
    { name: 'dir/hard', type: '1', linkname: 'dir/file.txt' },
    { name: 'dir/fifo', type: '6' },
    { name: 'dev', type: '3', devmajor: 1, devminor: 3 },
    { name: 'top', data: 'top\n', uid: 1000, gid: 1000, mode: 0o600 },
  ];
  const long = [
    { name: 'l/', type: '5' },
    { name: `l/${'a'.repeat(150)}`, data: 'long name\n', long: 'gnu' },
    { name: `l/${'b'.repeat(120)}`, type: '2', linkname: `${'c'.repeat(130)}`, long: 'gnu' },
    { name: `l/${'d'.repeat(200)}`, type: '1', linkname: `l/${'a'.repeat(150)}`, long: 'gnu' },
  ];
  const pax = [
    { name: 'p/', type: '5', xattrs: [['user.dir', 'yes']] },
    { name: 'p/x', data: 'xattrs\n', xattrs: [['user.a', '1'], ['user.b', 'two'], ['trusted.t', 'x'.repeat(100)], ['security.capability', Buffer.from([1, 0, 0, 2])]] },
    { name: `p/${'e'.repeat(180)}`, data: 'pax long\n', long: 'pax', pax: [['mtime', '1600000000.123456789'], ['uid', '70000'], ['uname', 'someone']] },
    { name: 'p/sym', type: '2', linkname: `${'f'.repeat(150)}`, long: 'pax' },
  ];
  const out = {
    ustar: tar.tar(base),
    gnulong: tar.tar([...base.slice(0, 2), ...long]),
    pax: tar.tar([...base.slice(0, 2), ...pax]),
    gnusparse: tar.tar([base[0], tar.gnuSparse('dir/sparse', 0x10000, [[0, 512], [0x4000, 1024], [0x8000, 512], [0xa000, 512], [0xc000, 512], [0xf000, 512]]), base[1]]),
    paxsparse: tar.tar([base[0],
      tar.paxSparse('0.0', 'dir/s00', 0x8000, [[0, 512], [0x4000, 512]]),
      tar.paxSparse('0.1', 'dir/s01', 0x8000, [[0x1000, 512], [0x7000, 1024]]),
      tar.paxSparse('1.0', 'dir/s10', 0x9000, [[0, 1024], [0x8000, 512]]),
    ]),
    mixed: tar.tar([...base, ...long, ...pax]),
  };
  for (const f of ['all-entry-type.tar', 'all-entry-type-macos.tar', 'empty.tar']) {
    const p = path.join(UPSTREAM, 'tar', f);
    if (fs.existsSync(p)) out[`upstream-${f.replace(/\.tar$/, '')}`] = fs.readFileSync(p);
  }
  return out;
}

/**
 * Builds every seed under dir. Returns { boots: [{name, kind, file, boot, blobs: [{id, bytes}]}],
 * tars: [{name, bytes}], gzips: [{name, bytes, plain}] }.
 */
export async function makeSeeds(dir, lib) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const tree = path.join(dir, 'tree');
  makeTree(tree);
  const boots = [];
  // Upstream blobs keep their path: a saved finding refers to them instead of copying megabytes.
  const readBlobs = (blobDir, stable = false) => fs.existsSync(blobDir)
    ? fs.readdirSync(blobDir).filter((f) => !f.startsWith('.')).map((id) => ({ id, bytes: fs.readFileSync(path.join(blobDir, id)), path: stable ? path.join(blobDir, id) : undefined }))
    : [];
  const build = async (name, opts, kind = 'v6') => {
    const out = path.join(dir, name);
    fs.mkdirSync(path.join(out, 'blobs'), { recursive: true });
    const o = { threads: 0, chunkSize: 0x1000, ...opts };
    if (!o.blobInlineMeta && !o.blobCacheDir) o.bootstrap = path.join(out, 'boot');
    if (!o.blobCacheDir && !o.blob) o.blobDir = path.join(out, 'blobs');
    if (o.blobCacheDir) {
      fs.mkdirSync(o.blobCacheDir, { recursive: true });
      o.bootstrap = path.join(out, 'boot');
    }
    try {
      const r = await lib.create(o);
      const blobs = readBlobs(path.join(out, 'blobs'));
      if (kind === 'inline') {
        const b = blobs[0];
        boots.push({ name, kind, file: b.id, boot: b.bytes, blobs });
      } else if (o.blobCacheDir) {
        const cache = fs.readdirSync(o.blobCacheDir).map((f) => ({ id: f, bytes: fs.readFileSync(path.join(o.blobCacheDir, f)) }));
        const data = cache.find((c) => c.id.endsWith('.blob.data'));
        const id = r.blobs[0];
        boots.push({ name, kind, file: 'boot', boot: fs.readFileSync(o.bootstrap), blobs: [...(data && id ? [{ id, bytes: data.bytes }] : []), ...cache] });
      } else {
        boots.push({ name, kind, file: 'boot', boot: fs.readFileSync(o.bootstrap), blobs });
      }
    } catch (e) {
      process.stderr.write(`fuzz: seed ${name} not built: ${e.message}\n`);
    }
  };
  await build('dir-zstd', { source: tree });
  await build('dir-none', { source: tree, compressor: 'none', digester: 'sha256' });
  await build('dir-lz4', { source: tree, compressor: 'lz4_block', repeatable: true });
  await build('dir-inline', { source: tree, blobInlineMeta: true, blobToc: true }, 'inline');
  await build('dir-cache', { source: tree, blobCacheDir: path.join(dir, 'dir-cache', 'cache') });
  // RAFS v5 of our own writer: packed chunks, and (below, from a tar) 4 KiB-aligned ones.
  await build('dir-v5', { source: tree, fsVersion: 5, compressor: 'lz4_block' }, 'v5');
  // Batch chunks (blob.meta batch contexts read back) and encrypted blobs (the key in the blob table).
  await build('dir-batch', { source: tree, batchSize: 0x1000, compressor: 'none' });
  await build('dir-batch-zstd', { source: tree, batchSize: 0x1000 });
  await build('dir-encrypt', { source: tree, encrypt: true, batchSize: 0x1000 });

  const tars = makeTars();
  const tarList = Object.entries(tars).map(([name, bytes]) => ({ name, bytes }));
  const tarDir = path.join(dir, 'tars');
  fs.mkdirSync(tarDir, { recursive: true });
  for (const t of tarList) fs.writeFileSync(path.join(tarDir, `${t.name}.tar`), t.bytes);
  const gzips = tarList.filter((t) => !t.name.startsWith('upstream')).map((t) => ({ name: `${t.name}.gz`, bytes: zlib.gzipSync(t.bytes), plain: t.bytes }));
  for (const f of ['zran-single-stream.tar.gz', 'zran-two-streams.tar.gz', 'zran-zero-file.tar.gz', 'bgzip.tar.gz']) {
    const p = path.join(UPSTREAM, 'zran', f);
    if (fs.existsSync(p)) {
      const bytes = fs.readFileSync(p);
      let plain;
      try {
        plain = zlib.gunzipSync(bytes);
      } catch {
        plain = undefined;
      }
      gzips.push({ name: f, bytes, plain });
    }
  }
  // A gzip bomb: 256 MiB of zeros (end-of-archive blocks all the way) in ~250 KiB.
  gzips.push({ name: 'bomb.gz', bytes: zlib.gzipSync(Buffer.alloc(256 << 20), { level: 9 }), plain: undefined });
  fs.writeFileSync(path.join(tarDir, 'mixed.tar.gz'), zlib.gzipSync(tars.mixed));

  await build('tar-rafs', { source: path.join(tarDir, 'mixed.tar'), type: 'tar-rafs' });
  await build('tar-rafs-sparse', { source: path.join(tarDir, 'paxsparse.tar'), type: 'tar-rafs' });
  await build('targz-rafs', { source: path.join(tarDir, 'mixed.tar.gz'), type: 'targz-rafs', compressor: 'none' });
  await build('tar-rafs-v5', { source: path.join(tarDir, 'mixed.tar'), type: 'tar-rafs', fsVersion: 5, alignedChunk: true, digester: 'sha256' }, 'v5');
  await build('tar-tarfs', { source: path.join(tarDir, 'mixed.tar'), type: 'tar-tarfs' }, 'tarfs');
  await build('tar-tarfs-gnu', { source: path.join(tarDir, 'gnulong.tar'), type: 'tar-tarfs' }, 'tarfs');

  // Upstream bytes: a v6 bootstrap of nydus-image 2.2 and two v5 bootstraps, each with its blob.
  const up = (p) => path.join(UPSTREAM, p);
  if (fs.existsSync(up('bootstrap/rafs-v6-2.2.boot'))) {
    boots.push({ name: 'upstream-v6', kind: 'v6', file: 'boot', boot: fs.readFileSync(up('bootstrap/rafs-v6-2.2.boot')), blobs: readBlobs(up('blobs'), true) });
  }
  for (const v5 of ['sha256-nocompress-repeatable', 'blake3-lz4_block-non_repeatable']) {
    if (fs.existsSync(up(`repeatable/${v5}`))) {
      boots.push({ name: `upstream-v5-${v5}`, kind: 'v5', file: 'boot', boot: fs.readFileSync(up(`repeatable/${v5}`)), blobs: readBlobs(up('repeatable/blobs'), true) });
    }
  }
  // The upstream TOC sample behind a blob of our own: an inline blob whose TOC is not ours.
  const tocFile = up('toc/2fa78cad554b75ac91a4a125ed148d0ddeb25efa4aaa8bd80e5dc292690a4dca');
  const inline = boots.find((b) => b.kind === 'inline');
  if (inline && fs.existsSync(tocFile)) {
    const toc = fs.readFileSync(tocFile);
    const hdr = tar.header({ name: 'rafs.blob.toc', size: toc.length, mode: 0, gnu: true, uname: '', gname: '' });
    boots.push({ name: 'upstream-toc', kind: 'inline', file: inline.file, boot: Buffer.concat([inline.boot, toc, hdr]), blobs: inline.blobs });
  }
  return { boots, tars: tarList, gzips };
}
