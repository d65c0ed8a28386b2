// `nydusify pack` (spec §3.1): a directory into a bootstrap and a blob in the output directory,
// optionally on a parent bootstrap and with a chunk dict; with backendPush the new blob goes to
// `blob_prefix + <id>` and the bootstrap to `meta_prefix + <name>` in OSS or S3.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { NydusError, fsError } from '../errors.js';
import { create } from '../build/create.js';
import { openImage } from '../read/open.js';
import { parseChunkDictArg } from '../build/chunk-dict-arg.js';
import type { CompressorName } from '../algo/index.js';
import { openBackend, type Backend, type BackendSpec } from '../backends/index.js';
import { str } from '../backends/config.js';
import { badBlobId } from '../format/limits.js';

export interface PackOptions {
  sourceDir: string;
  outputDir: string;
  /** The bootstrap is `<outputDir>/<name>.meta`, and `meta_prefix + name` in the backend. */
  name: string;
  backendPush?: boolean;
  /** oss or s3, with meta_prefix / blob_prefix (object_prefix when they are absent). */
  backend?: BackendSpec;
  /** `bootstrap=PATH` (or PATH). */
  chunkDict?: string;
  parentBootstrap?: string;
  fsVersion?: number;
  compressor?: CompressorName;
  chunkSize?: number;
  /** Build with this nydus-image program instead of in-process. */
  nydusImage?: string;
}

export interface PackResult {
  bootstrap: string;
  /** The new blob's id, when the build stored any chunk. */
  blobId?: string;
  blobPath?: string;
  /** Where the blob and bootstrap went, when pushed. */
  pushed: string[];
}

function validName(name: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new NydusError('USAGE', `invalid --name ${JSON.stringify(name)}: a file name, without "/"`);
  }
}

/** The blob ids a bootstrap names (a parent's or a chunk dict's). */
function blobsOf(file: string | undefined): Set<string> {
  return new Set(file ? openImage(file).blobs.map((b) => b.blobId) : []);
}

/** Runs an external nydus-image with upstream's pack argv; its stderr's last line becomes the error. */
function runBuilder(program: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(program, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-4000)));
    c.on('error', (e) => reject(new NydusError('USAGE', `--nydus-image ${program}: ${e.message}`)));
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new NydusError('SOURCE', `${program} create failed (exit ${code}): ${err.trim().split('\n').at(-1) ?? ''}`))));
  });
}

async function pushFile(backend: Backend, id: string, file: string, force: boolean): Promise<string> {
  const upload = backend.put(id);
  try {
    await new Promise<void>((resolve, reject) => {
      const src = fs.createReadStream(file);
      src.once('error', (e) => reject(fsError('SOURCE', file, e)));
      upload.stream.once('error', reject);
      upload.stream.once('finish', () => resolve());
      src.pipe(upload.stream);
    });
    const r = await upload.commit(id, force);
    return `${backend.where(id)}${r.skipped ? ' (already there: kept)' : ''}`;
  } catch (e) {
    await upload.abort(e).catch(() => undefined);
    throw e;
  }
}

export async function pack(o: PackOptions): Promise<PackResult> {
  validName(o.name);
  let st: fs.Stats;
  try {
    st = fs.statSync(o.sourceDir);
  } catch (e) {
    throw fsError('USAGE', o.sourceDir, e);
  }
  if (!st.isDirectory()) throw new NydusError('USAGE', '--source-dir is not a directory', { path: o.sourceDir });
  if (o.backendPush && !o.backend) throw new NydusError('USAGE', '--backend-push needs --backend-config or --backend-config-file');
  if (o.backend && o.backend.type !== 'oss' && o.backend.type !== 's3') throw new NydusError('USAGE', `--backend-type ${o.backend.type}: pack pushes to oss or s3`);
  try {
    fs.mkdirSync(o.outputDir, { recursive: true });
  } catch (e) {
    throw fsError('OUTPUT', o.outputDir, e);
  }
  const bootstrap = path.join(o.outputDir, `${o.name}.meta`);
  const blobPath = path.join(o.outputDir, `${o.name}.blob`);
  const dictFile = o.chunkDict !== undefined ? parseChunkDictArg(o.chunkDict) : undefined;
  const known = new Set([...blobsOf(o.parentBootstrap), ...blobsOf(dictFile)]);
  // Open the backends first: a bad config fails before anything is built.
  const prefix = (k: 'meta_prefix' | 'blob_prefix') => (o.backend ? str(o.backend.config, k, str(o.backend.config, 'object_prefix')) : '');
  const blobs = o.backendPush ? await openBackend(o.backend!, { role: 'write', prefix: prefix('blob_prefix') }) : undefined;
  const metas = o.backendPush ? await openBackend(o.backend!, { role: 'write', prefix: prefix('meta_prefix') }) : undefined;
  try {
    let ids: string[];
    if (o.nydusImage !== undefined) {
      const json = path.join(o.outputDir, 'output.json');
      await runBuilder(o.nydusImage, [
        'create', ...(o.parentBootstrap ? ['--parent-bootstrap', o.parentBootstrap] : []), ...(dictFile ? ['--chunk-dict', `bootstrap=${dictFile}`] : []),
        '--bootstrap', bootstrap, '--log-level', 'warn', '--whiteout-spec', 'oci', '--output-json', json, '--blob', blobPath,
        '--fs-version', String(o.fsVersion ?? 6), ...(o.compressor ? ['--compressor', o.compressor] : []),
        ...(o.chunkSize !== undefined ? ['--chunk-size', `0x${o.chunkSize.toString(16)}`] : []), o.sourceDir,
      ]);
      let out: { blobs?: unknown };
      try {
        out = JSON.parse(fs.readFileSync(json, 'utf8')) as { blobs?: unknown };
      } catch (e) {
        throw new NydusError('SOURCE', `${o.nydusImage} wrote no readable output JSON: ${(e as Error).message}`, { path: json });
      }
      if (!Array.isArray(out.blobs) || out.blobs.some((b) => typeof b !== 'string')) throw new NydusError('SOURCE', 'output JSON has no "blobs" list of strings', { path: json });
      ids = out.blobs as string[];
    } else {
      const r = await create({
        source: o.sourceDir, bootstrap, blob: blobPath, whiteoutSpec: 'oci', fsVersion: o.fsVersion ?? 6,
        ...(o.compressor ? { compressor: o.compressor } : {}), ...(o.chunkSize !== undefined ? { chunkSize: o.chunkSize } : {}),
        ...(o.parentBootstrap ? { parentBootstrap: o.parentBootstrap } : {}), ...(dictFile ? { chunkDict: `bootstrap=${dictFile}` } : {}),
      });
      ids = r.blobs;
    }
    const fresh = ids.filter((id) => !known.has(id));
    if (fresh.length > 1) throw new NydusError('INTERNAL', `the build named ${fresh.length} new blobs`);
    const blobId = fresh[0];
    let finalBlob: string | undefined;
    if (!blobId) {
      // Every chunk was there already (or there were none): no blob of our own.
      fs.rmSync(blobPath, { force: true });
    } else if (o.backendPush || o.parentBootstrap) {
      const bad = badBlobId(blobId);
      if (bad) throw new NydusError('FORMAT', `blob id: ${bad}`);
      finalBlob = path.join(o.outputDir, blobId);
      fs.renameSync(blobPath, finalBlob);
    } else {
      finalBlob = blobPath;
    }
    const pushed: string[] = [];
    if (blobs && metas) {
      if (blobId) pushed.push(await pushFile(blobs, blobId, finalBlob!, false));
      // The bootstrap goes by name, not content: a new one replaces the old.
      pushed.push(await pushFile(metas, o.name, bootstrap, true));
    }
    return { bootstrap, ...(blobId ? { blobId, blobPath: finalBlob! } : {}), pushed };
  } finally {
    await blobs?.close();
    await metas?.close();
  }
}
