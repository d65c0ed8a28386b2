// `nydusify pack` (alias `build`): a directory becomes <out>/<name>.meta and a data blob, on a
// parent bootstrap and/or against a chunk dict, and is optionally pushed to an object store under
// meta_prefix / blob_prefix (spec oci-and-converters.md §3.1, §4.3). The build runs in-process,
// or in an external nydus-image exec'd with upstream's argv. With --compact the parent bootstrap is
// compacted first (upstream's packer.tryCompactParent) and the layer is built on the compacted one.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkChunkSize, create } from '../builder/create.js';
import { compactAndReport, readCompactConfig, type CompactConfig } from '../builder/compact.js';
import { outputJson, writeOutputJson } from '../builder/output-json.js';
import { NydusError, fsError } from '../errors.js';
import { openImage } from '../read/open.js';
import type { CompressorName } from '../algo/index.js';
import { readBuilderBlobs, runBuilder } from './external-builder.js';

export const DEFAULT_OUTPUT_DIR = './.nydus-build-output';

/** One side of a push (the bootstrap's or the blobs'): objects named by the store's own prefix + a name. */
export interface PackStore {
  exists(name: string): Promise<boolean>;
  /** Uploads the local file as `name`; the object is readable only once whole. */
  putFile(name: string, file: string): Promise<void>;
  /** How upstream prints the object's place (oss://bucket/key, <scheme>://<endpoint>/<bucket>/<key>). */
  url(name: string): string;
}

/** Upstream's two backends of one config: object_prefix = meta_prefix for the bootstrap, blob_prefix for blobs. */
export interface PackPushTarget {
  meta: PackStore;
  blobs: PackStore;
}

export interface PackOptions {
  sourceDir: string;
  /** Default ./.nydus-build-output, made if missing. */
  outputDir?: string;
  /** The bootstrap is <out>/<name>.meta (or <out>/<name> when the name has an extension). */
  name: string;
  fsVersion?: number;
  compressor?: CompressorName;
  chunkSize?: number;
  /** `bootstrap=PATH`. */
  chunkDict?: string;
  parentBootstrap?: string;
  /** Build with this program instead of in-process, exec'd with upstream's argv. */
  nydusImage?: string;
  /** Push the bootstrap, the new blob and the parent's blobs here. */
  push?: PackPushTarget;
  /** Compact the parent bootstrap before the build (only with parentBootstrap, as upstream). */
  compact?: PackCompact;
  onLog?: (line: string) => void;
}

export interface PackCompact {
  /** The compact config file (JSON min_used_ratio, compact_blob_size, max_compact_size, layers_to_compact, blobs_dir); upstream's defaults without it. */
  configFile?: string;
  /** The backend named to compact (upstream always passes the pack backend's type and its blob side's config). */
  backendType: string;
  /** The blob side's backend JSON (object_prefix = blob_prefix), written to <out>/backend-config.json for an external compact. */
  backendConfig: string;
}

export interface PackResult {
  /** Local path of the bootstrap. */
  bootstrap: string;
  /** Local path of the new blob; '' when the build made none (every chunk was in the parent or dict). */
  blob: string;
  /** The new blob's id; '' when there is none. */
  blobId: string;
  /** output.json's blobs: every blob the bootstrap refers to. */
  blobs: string[];
  parentBlobs: string[];
  /** The parent the layer was built on: the compacted bootstrap when compaction wrote one. */
  parent?: string;
  /** With push: upstream's places of the pushed bootstrap and blob ('' for no blob). */
  remoteMeta?: string;
  remoteBlob?: string;
  /** With push: blobs uploaded, and blobs the backend already had. */
  uploaded?: string[];
  skipped?: string[];
}

/** Go's filepath.Ext: from the last dot of the last element, "" when it has none. */
function goExt(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot >= 0 && dot > name.lastIndexOf('/') ? name.slice(dot) : '';
}

/** Upstream's artifact names (packer/artifact.go). */
export function packPaths(outputDir: string, name: string): { bootstrap: string; blob: string; outputJson: string } {
  const ext = goExt(name);
  return {
    bootstrap: path.join(outputDir, ext ? name : `${name}.meta`),
    blob: path.join(outputDir, `${ext ? name.slice(0, -ext.length) : name}.blob`),
    outputJson: path.join(outputDir, 'output.json'),
  };
}

/** upstream's getChunkDictBlobs syntax: exactly `bootstrap=PATH`. */
export function chunkDictPath(arg: string): string {
  const parts = arg.split('=');
  if (parts.length !== 2 || parts[1] === '') throw new NydusError('USAGE', `invalid --chunk-dict ${JSON.stringify(arg)}: expected bootstrap=PATH`);
  if (parts[0] !== 'bootstrap') throw new NydusError('USAGE', `invalid --chunk-dict type ${JSON.stringify(parts[0])}: only bootstrap=PATH is supported`);
  return parts[1]!;
}

const hex = (n: number) => `0x${n.toString(16)}`;

/** The argv of upstream's build.Builder.Run as pack calls it (spec §3.1). */
export function packArgs(o: { parentBootstrap?: string; chunkDict?: string; bootstrap: string; outputJson: string; blob: string; fsVersion: number; compressor?: string; chunkSize?: number; sourceDir: string }): string[] {
  return [
    'create',
    ...(o.parentBootstrap ? ['--parent-bootstrap', o.parentBootstrap] : []),
    ...(o.chunkDict ? ['--chunk-dict', o.chunkDict] : []),
    '--bootstrap', o.bootstrap, '--log-level', 'warn', '--whiteout-spec', 'oci',
    '--output-json', o.outputJson, '--blob', o.blob, '--fs-version', String(o.fsVersion),
    ...(o.compressor ? ['--compressor', o.compressor] : []),
    ...(o.chunkSize !== undefined ? ['--chunk-size', hex(o.chunkSize)] : []),
    o.sourceDir,
  ];
}

/** Blob ids of a bootstrap's blob table (upstream asks `nydus-image inspect` the same). */
function blobsOf(file: string, what: string): string[] {
  try {
    return openImage(file).blobs.map((b) => b.blobId);
  } catch (e) {
    if (e instanceof NydusError) throw new NydusError(e.code, `${what}: ${e.message}`, { cause: e });
    throw fsError('SOURCE', file, e);
  }
}

/** Upstream's compactor defaults (pkg/compactor), used for every field a config file leaves out. */
export const PACK_COMPACT_DEFAULTS = { min_used_ratio: 5, compact_blob_size: 10485760, max_compact_size: 104857600, layers_to_compact: 32 };

/** The compact settings: the config file's fields over upstream's defaults; blobs_dir defaults to the output directory. */
export function loadPackCompactConfig(file: string | undefined, outputDir: string): CompactConfig {
  const fromFile = file !== undefined ? readCompactConfig(file)! : {};
  return { ...PACK_COMPACT_DEFAULTS, ...fromFile, blobs_dir: fromFile.blobs_dir ?? outputDir };
}

/** The argv of upstream's build.Builder.Compact as the packer calls it (spec §3.1). */
export function compactArgs(o: { bootstrap: string; config: CompactConfig; backendType: string; backendConfigFile: string; outputJson: string; outputBootstrap: string; chunkDict?: string }): string[] {
  const c = o.config;
  return [
    'compact', '--bootstrap', o.bootstrap, '--blob-dir', c.blobs_dir,
    '--min-used-ratio', String(c.min_used_ratio), '--compact-blob-size', String(c.compact_blob_size),
    '--max-compact-size', String(c.max_compact_size), '--layers-to-compact', String(c.layers_to_compact),
    '--backend-type', o.backendType, '--backend-config-file', o.backendConfigFile, '--log-level', 'info',
    '--output-json', o.outputJson, '--output-bootstrap', o.outputBootstrap,
    ...(o.chunkDict ? ['--chunk-dict', o.chunkDict] : []),
  ];
}

/**
 * upstream's tryCompactParent: compacts the parent into <parent>.compact (blobs read from and written
 * to blobs_dir, results in <out>/compact-result.json) and returns the bootstrap to build on: the
 * compacted one when compaction wrote one, else the parent as it was.
 */
async function compactParent(o: PackOptions, c: PackCompact, config: CompactConfig, parent: string, outputDir: string, log: (line: string) => void): Promise<string> {
  const target = `${parent}.compact`;
  const resultJson = path.join(outputDir, 'compact-result.json');
  for (const f of [target, resultJson]) {
    try {
      fs.rmSync(f, { force: true });
    } catch (e) {
      throw fsError('OUTPUT', f, e);
    }
  }
  if (o.nydusImage) {
    // The blob backend's config holds secrets: it lives only while compact runs, and is zeroed before removal (as upstream).
    const cfgFile = path.join(outputDir, 'backend-config.json');
    try {
      fs.writeFileSync(cfgFile, c.backendConfig, { mode: 0o600 });
    } catch (e) {
      throw fsError('OUTPUT', cfgFile, e);
    }
    try {
      await runBuilder(o.nydusImage, compactArgs({ bootstrap: parent, config, backendType: c.backendType, backendConfigFile: cfgFile, outputJson: resultJson, outputBootstrap: target, chunkDict: o.chunkDict }));
    } finally {
      try {
        fs.writeFileSync(cfgFile, Buffer.alloc(Buffer.byteLength(c.backendConfig)));
      } finally {
        fs.rmSync(cfgFile, { force: true });
      }
    }
  } else {
    await compactAndReport({ bootstrap: parent, config, chunkDict: o.chunkDict, outputBootstrap: target, backendType: c.backendType, log }, resultJson);
  }
  if (!fs.existsSync(target)) return parent;
  log(`successfully compacted bootstrap ${parent}, use new parent ${target}`);
  return target;
}

/** The output directory, made if missing; `made` is the topmost directory this call created. */
function ensureOutputDir(dir: string): string | undefined {
  try {
    if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new NydusError('OUTPUT', 'the output directory is not a directory', { path: dir });
    return fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    if (e instanceof NydusError) throw e;
    throw fsError('OUTPUT', dir, e);
  }
}

export async function pack(o: PackOptions): Promise<PackResult> {
  const log = o.onLog ?? (() => undefined);
  const name = o.name;
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new NydusError('USAGE', `invalid --name ${JSON.stringify(name)}: must be a file name (no "/")`);
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(o.sourceDir);
  } catch (e) {
    throw new NydusError('USAGE', `failed to check source directory: ${fsError('SOURCE', o.sourceDir, e).message}`);
  }
  if (!st.isDirectory()) throw new NydusError('USAGE', `source path '${o.sourceDir}' is not a directory`);
  const dictFile = o.chunkDict !== undefined ? chunkDictPath(o.chunkDict) : undefined;
  if (o.parentBootstrap) blobsOf(o.parentBootstrap, 'parent bootstrap');
  const dictBlobs = dictFile !== undefined ? blobsOf(dictFile, 'chunk dict') : [];
  const fsVersion = o.fsVersion ?? 6;
  if (o.chunkSize !== undefined) checkChunkSize(o.chunkSize);
  const outputDir = o.outputDir || DEFAULT_OUTPUT_DIR;
  // A bad compact config is refused before anything is written.
  const compactConfig = o.compact ? loadPackCompactConfig(o.compact.configFile, outputDir) : undefined;
  if (o.compact && !o.parentBootstrap) log('--compact has nothing to do without --parent-bootstrap: only a parent bootstrap is compacted');

  const made = ensureOutputDir(outputDir);
  const paths = packPaths(outputDir, name);
  log(`start to build image from source directory "${o.sourceDir}"`);
  let blobs: string[];
  let parent = o.parentBootstrap;
  let parentBlobs: string[] = [];
  try {
    if (o.compact && compactConfig && parent) parent = await compactParent(o, o.compact, compactConfig, parent, outputDir, log);
    // The blobs of the parent the layer is built on: after compaction, the compacted ones.
    parentBlobs = parent ? blobsOf(parent, 'parent bootstrap') : [];
    if (o.nydusImage) {
      const args = packArgs({ ...o, parentBootstrap: parent, fsVersion, bootstrap: paths.bootstrap, blob: paths.blob, outputJson: paths.outputJson });
      await runBuilder(o.nydusImage, args);
      blobs = await readBuilderBlobs(paths.outputJson, `${o.nydusImage} create`);
    } else {
      const r = await create({
        source: o.sourceDir, type: 'dir-rafs', bootstrap: paths.bootstrap, blob: paths.blob, fsVersion,
        compressor: o.compressor ?? 'zstd', chunkSize: o.chunkSize, whiteoutSpec: 'oci',
        parentBootstrap: parent, chunkDict: o.chunkDict,
      });
      await writeOutputJson(paths.outputJson, outputJson({ bootstrap: r.bootstrap, blobs: r.blobs, trace: r.trace, fsVersion: r.fsVersion, compressor: r.compressor }), true);
      blobs = r.blobs;
    }
  } catch (e) {
    // A failed first build leaves no output directory behind.
    if (made !== undefined) fs.rmSync(made, { recursive: true, force: true });
    throw e;
  }

  // The new blob: the first of output.json's blobs that is neither the parent's nor the dict's.
  const known = new Set([...parentBlobs, ...dictBlobs]);
  const blobId = blobs.find((b) => !known.has(b)) ?? '';
  let blob = '';
  if (blobId !== '') {
    blob = paths.blob;
    if (parent || o.push) {
      const named = path.join(outputDir, blobId);
      try {
        fs.renameSync(paths.blob, named);
      } catch (e) {
        throw fsError('OUTPUT', paths.blob, e);
      }
      blob = named;
    }
  }
  const result: PackResult = { bootstrap: paths.bootstrap, blob, blobId, blobs, parentBlobs, ...(parent ? { parent } : {}) };
  if (!o.push) return result;
  // Compacted blobs are in blobs_dir (by default the output directory itself).
  const blobDirs = [outputDir, ...(compactConfig && compactConfig.blobs_dir !== outputDir ? [compactConfig.blobs_dir] : [])];
  return { ...result, ...(await pushPacked(o.push, { outputDir, blobDirs, name, bootstrap: paths.bootstrap, blobId, parentBlobs }, log)) };
}

/**
 * Upstream's Pusher: the parent's blobs (from <out>/<id>) and the new blob go up unless the
 * backend has them; the bootstrap always goes up, last, so it never names a blob that is not there.
 */
export async function pushPacked(
  target: PackPushTarget,
  p: { outputDir: string; blobDirs?: string[]; name: string; bootstrap: string; blobId: string; parentBlobs: string[] },
  log: (line: string) => void = () => undefined,
): Promise<Pick<PackResult, 'remoteMeta' | 'remoteBlob' | 'uploaded' | 'skipped'>> {
  const uploaded: string[] = [];
  const skipped: string[] = [];
  const ids = [...new Set([...p.parentBlobs, ...(p.blobId ? [p.blobId] : [])])];
  for (const id of ids) {
    if (await target.blobs.exists(id)) {
      log(`skip upload because blob exists: ${id}`);
      skipped.push(id);
      continue;
    }
    const dirs = p.blobDirs ?? [p.outputDir];
    const file = dirs.map((d) => path.join(d, id)).find((f) => fs.existsSync(f)) ?? path.join(p.outputDir, id);
    if (!fs.existsSync(file)) throw new NydusError('SOURCE', `blob ${id} of the parent bootstrap is neither in the backend nor at ${file}`);
    log(`push blob ${id}`);
    await target.blobs.putFile(id, file);
    uploaded.push(id);
  }
  log(`push bootstrap ${p.name}`);
  await target.meta.putFile(p.name, p.bootstrap);
  return { remoteMeta: target.meta.url(p.name), remoteBlob: p.blobId ? target.blobs.url(p.blobId) : '', uploaded, skipped };
}
