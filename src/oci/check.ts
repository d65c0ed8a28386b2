// `nydusify check` (spec oci-and-converters.md §3.2): a Nydus image in a registry checked on its
// own and against the image it was converted from, without root, mounts, nydusd or nydus-image.
// Rule 1 (manifest): the shape of each manifest, the bootstrap layer's diff_id, the two configs'
// `config` equal. Rule 2 (bootstrap): the bootstrap read by our reader, every blob it names a
// blob layer. Rule 3 (filesystem): the source image's root file system (its layers streamed,
// decompressed and overlaid) against the Nydus image's (its bootstrap, with every chunk read
// back from the blob layers): every difference, not just the first. The work dir gets upstream's
// layout (source/ and target/ with the JSON documents, nydus_bootstrap/, nydus_output.json) and
// check-report.json, the differences as JSON.
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import PQueue from 'p-queue';
import { outputJson } from '../builder/output-json.js';
import { NydusError, fsError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { check as checkBootstrap } from '../read/check.js';
import { BlobReader } from '../read/data.js';
import { SyncBlobReader } from '../backends/sync-reader.js';
import type { BackendSpec } from '../backends/config.js';
import type { RafsImage } from '../read/model.js';
import { ANNOTATION, OS_FEATURE_NYDUS, decompressed, layerCompression } from './convert.js';
import { BOOTSTRAP_IN_LAYER, unpackBootstrapLayer } from './bootstrap-layer.js';
import { quote, type Digest } from './digest.js';
import { compareRootfs, describeFsDifference, type FsDifference } from './fs-compare.js';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest } from './manifest.js';
import { MEDIA } from './media-types.js';
import { formatPlatform, hostPlatform, parsePlatform, platformMatches, type PlatformSpec } from './platform.js';
import { formatReference, parseReference, refTarget, type Reference } from './reference.js';
import { RegistryClient } from './registry.js';
import { nydusRootfs, ociRootfs, type Rootfs } from './rootfs.js';

/** Zran (--oci-ref) blob layers name the OCI layer they index; rule 2 skips them as upstream does. */
const REPORT = 'check-report.json';

export interface CheckOptions {
  /** The image the target was converted from (OCI or Nydus); without it, rules 1 and 2 check the target alone. */
  source?: string;
  /** The Nydus image to check. */
  target: string;
  sourceInsecure?: boolean;
  targetInsecure?: boolean;
  /** Speak HTTP to both registries. */
  plainHttp?: boolean;
  /** os/arch[/variant] choosing the manifest of an index; default linux/<host arch>. A single manifest is taken whatever its platform. */
  platform?: string;
  /** The target must be an index holding both an OCI and a Nydus manifest for the platform. */
  multiPlatform?: boolean;
  /** Default ./output; removed first, as upstream does. */
  workDir?: string;
  /** Environment for DOCKER_CONFIG and credential helpers (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Each difference as it is found. */
  onDifference?: (d: CheckDifference) => void;
  /** What is being done, one line at a time. */
  onProgress?: (line: string) => void;
  /** The storage backend holding the target's blobs (images converted with --backend-type): read by ranged gets. */
  targetBackend?: BackendSpec;
}

export type CheckRule = 'manifest' | 'bootstrap' | 'filesystem';
export type RuleState = 'passed' | 'failed' | 'skipped';

/** One finding. Rules 1 and 2 name the image; rule 3 names the path and the field. */
export interface CheckDifference {
  rule: CheckRule;
  image?: 'source' | 'target';
  /** The path (UTF-8; `pathHex` holds its bytes when they are not UTF-8). */
  path?: string;
  pathHex?: string;
  field?: string;
  source?: string;
  target?: string;
  /** The one line printed for it. */
  message: string;
}

export interface CheckedImage {
  reference: string;
  kind: 'oci' | 'nydus';
  /** The manifest checked. */
  digest: Digest;
  mediaType: string;
  /** The index entry's platform, when the reference names an index. */
  platform?: string;
}

export interface CheckResult {
  /** True only when no rule found anything. */
  ok: boolean;
  differences: CheckDifference[];
  rules: Record<CheckRule, RuleState>;
  workDir: string;
  /** Path of check-report.json. */
  report: string;
  source?: CheckedImage;
  target: CheckedImage;
}

type Role = 'source' | 'target';

interface Img {
  kind: 'oci' | 'nydus';
  desc: Descriptor;
  manifest: ImageManifest;
  config: ImageConfig;
  platform?: string;
}

interface Side {
  role: Role;
  ref: Reference;
  text: string;
  client: RegistryClient;
  dir: string;
  index?: ImageIndex;
  oci?: Img;
  nydus?: Img;
  /** The manifest the rules check: the source prefers OCI, the target Nydus. */
  chosen?: Img;
  /** The unpacked image/image.boot of the chosen Nydus manifest, and the bootstrap tar's sha256. */
  bootPath?: string;
  bootDiffId?: Digest;
  image?: RafsImage;
  /** False once a finding makes its root file system unreadable (rule 3 then skips). */
  usable: boolean;
}

/** A manifest is Nydus when its last layer is a bootstrap layer, or when any layer says it is Nydus (then rule 1 tells what is wrong). */
function kindOf(m: ImageManifest): 'oci' | 'nydus' {
  if (m.layers.at(-1)?.annotations?.[ANNOTATION.BOOTSTRAP] === 'true') return 'nydus';
  const nydusish = m.layers.some((l) => l.mediaType === MEDIA.NYDUS_BLOB || l.annotations?.[ANNOTATION.BLOB] !== undefined || l.annotations?.[ANNOTATION.BOOTSTRAP] !== undefined);
  return nydusish ? 'nydus' : 'oci';
}

const isGzipLayer = (t: string) => t === MEDIA.OCI_LAYER_GZIP || t === MEDIA.DOCKER_LAYER_GZIP;

/** Removing the work dir must never take the root or the directory the user stands in with it. */
function checkWorkDir(dir: string): void {
  const rel = path.relative(dir, process.cwd());
  if (dir === path.parse(dir).root || rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) {
    throw new NydusError('USAGE', `--work-dir ${quote(dir)} is removed before the check, and it holds the current directory; give a directory of its own`);
  }
}

async function writeJson(file: string, doc: unknown, pretty = true): Promise<void> {
  await writeFileAtomic(file, Buffer.from(pretty ? JSON.stringify(doc, null, 2) : JSON.stringify(doc)));
}

/** Go's omitempty view of config.config, without ArgsEscaped: what upstream's byte comparison sees. */
function goConfig(c: unknown): Record<string, unknown> {
  if (c === null || typeof c !== 'object' || Array.isArray(c)) return {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c as Record<string, unknown>)) {
    if (k === 'ArgsEscaped') continue;
    if (v === null || v === '' || v === false || v === 0) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0) continue;
    out[k] = v;
  }
  return out;
}

/** JSON with object keys sorted, so equal documents give equal text. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as object).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x));
}

class Checker {
  readonly differences: CheckDifference[] = [];
  readonly rules: Record<CheckRule, RuleState> = { manifest: 'skipped', bootstrap: 'skipped', filesystem: 'skipped' };
  /** True once the work dir is this run's (wiped and made again): a report may go there. */
  prepared = false;
  private readonly platform: PlatformSpec;

  constructor(private readonly o: CheckOptions, readonly work: string, readonly target: Side, readonly source: Side | undefined) {
    this.platform = parsePlatform(o.platform ?? formatPlatform(hostPlatform()));
  }

  private progress(line: string): void {
    this.o.onProgress?.(line);
  }

  private found(d: Omit<CheckDifference, 'message'> & { message?: string }, message: string): void {
    const full: CheckDifference = { ...d, message };
    this.differences.push(full);
    this.o.onDifference?.(full);
  }

  /** A rule 1 or 2 finding about one image. */
  private imageFinding(rule: CheckRule, side: Side, what: string): void {
    this.found({ rule, image: side.role }, `${rule}: ${side.role} image ${side.text}: ${what}`);
  }

  async run(): Promise<void> {
    const sides = [this.source, this.target].filter((s): s is Side => s !== undefined);
    for (const s of sides) await this.resolve(s);
    await rm(this.work, { recursive: true, force: true }).catch((e: unknown) => {
      throw fsError('OUTPUT', this.work, e);
    });
    await mkdir(this.work, { recursive: true }).catch((e: unknown) => {
      throw fsError('OUTPUT', this.work, e);
    });
    this.prepared = true;
    for (const s of sides) await this.output(s);

    const before = () => this.differences.length;
    let n = before();
    this.manifestRule(sides);
    this.rules.manifest = before() === n ? 'passed' : 'failed';

    n = before();
    for (const s of sides) this.bootstrapRule(s);
    this.rules.bootstrap = sides.some((s) => s.chosen?.kind === 'nydus') ? (before() === n ? 'passed' : 'failed') : 'skipped';

    if (this.source && this.source.usable && this.target.usable) {
      n = before();
      await this.filesystemRule(this.source, this.target);
      this.rules.filesystem = before() === n ? 'passed' : 'failed';
    }
  }

  // ---- resolving and the output layout ----

  /** Fetches the manifest (or index, then the manifests for the platform) and the configs. */
  private async resolve(side: Side): Promise<void> {
    const repo = side.ref.repository;
    const top = await side.client.getManifest(repo, refTarget(side.ref));
    const load = async (desc: Descriptor, manifest: ImageManifest, hinted: boolean, platform?: string): Promise<void> => {
      const kind = hinted ? 'nydus' : kindOf(manifest);
      if (side[kind]) return;
      const { config } = await side.client.getConfig(repo, manifest.config);
      side[kind] = { kind, desc, manifest, config, ...(platform ? { platform } : {}) };
    };
    if (top.kind === 'manifest') {
      await load({ mediaType: top.mediaType, digest: top.digest, size: top.bytes.length }, top.manifest, false);
    } else {
      side.index = top.index;
      for (const d of top.index.manifests) {
        if (!d.platform || !platformMatches(d.platform, this.platform)) continue;
        const f = await side.client.getManifest(repo, d.digest);
        if (f.kind !== 'manifest') throw new NydusError('SOURCE', `${side.text}: index entry ${d.digest} is itself an index; nested indexes are not supported`);
        const hinted = d.artifactType === MEDIA.NYDUS_ARTIFACT || (d.platform['os.features'] ?? []).includes(OS_FEATURE_NYDUS);
        await load({ mediaType: f.mediaType, digest: f.digest, size: f.bytes.length }, f.manifest, hinted, formatPlatform(d.platform));
      }
      if (!side.oci && !side.nydus) {
        const have = top.index.manifests.map((m) => (m.platform ? formatPlatform(m.platform) : '?')).join(', ');
        throw new NydusError('SOURCE', `${side.text}: the index has no manifest for ${formatPlatform(this.platform)} (it has ${have || 'none'})`);
      }
    }
    side.chosen = side.role === 'source' ? (side.oci ?? side.nydus) : (side.nydus ?? side.oci);
    this.progress(`${side.role}: ${side.text} is ${side.chosen!.kind === 'nydus' ? 'a Nydus' : 'an OCI'} image (manifest ${side.chosen!.desc.digest})`);
  }

  /** <work>/<role>/: the index, manifests and configs as JSON, and the Nydus bootstrap layer unpacked. */
  private async output(side: Side): Promise<void> {
    try {
      await mkdir(side.dir, { recursive: true });
    } catch (e) {
      throw fsError('OUTPUT', side.dir, e);
    }
    const at = (name: string) => path.join(side.dir, name);
    if (side.index && side.oci) await writeJson(at('oci_index.json'), side.index);
    if (side.index && side.nydus) await writeJson(at('nydus_index.json'), side.index);
    if (side.oci) {
      await writeJson(at('oci_manifest.json'), side.oci.manifest);
      await writeJson(at('oci_config.json'), side.oci.config);
    }
    if (side.nydus) {
      await writeJson(at('nydus_manifest.json'), side.nydus.manifest);
      await writeJson(at('nydus_config.json'), side.nydus.config);
    }
    const img = side.chosen!;
    const last = img.manifest.layers.at(-1);
    if (img.kind === 'nydus' && last && last.annotations?.[ANNOTATION.BOOTSTRAP] === 'true' && isGzipLayer(last.mediaType)) {
      this.progress(`${side.role}: pulling the bootstrap layer ${last.digest}`);
      const where = `${side.text}: bootstrap layer ${last.digest}`;
      const layerTar = decompressed(await side.client.getBlob(side.ref.repository, last.digest, last.size), 'gzip', where);
      const r = await unpackBootstrapLayer(layerTar, { dir: at('nydus_bootstrap') }, where);
      side.bootDiffId = r.diffId;
      side.bootPath = r.boot;
    }
  }

  // ---- rule 1: manifests ----

  private manifestRule(sides: Side[]): void {
    if (this.o.multiPlatform) {
      const t = this.target;
      if (!t.index) this.imageFinding('manifest', t, `--multi-platform: not an image index`);
      else {
        if (!t.nydus) this.imageFinding('manifest', t, `--multi-platform: the index has no Nydus manifest for ${formatPlatform(this.platform)}`);
        if (!t.oci) this.imageFinding('manifest', t, `--multi-platform: the index has no OCI manifest for ${formatPlatform(this.platform)}`);
      }
    }
    for (const s of sides) {
      const img = s.chosen!;
      if (img.kind === 'oci') this.ociManifest(s, img);
      else this.nydusManifest(s, img);
    }
    if (this.source) this.compareConfigs(this.source.chosen!, this.target.chosen!);
  }

  private diffIdCount(side: Side, img: Img): void {
    const ids = img.config.rootfs.diff_ids.length;
    if (ids !== img.manifest.layers.length) this.imageFinding('manifest', side, `invalid diff ids in image config: ${ids} (diff ids) != ${img.manifest.layers.length} (layers)`);
  }

  private ociManifest(side: Side, img: Img): void {
    this.diffIdCount(side, img);
    img.manifest.layers.forEach((l, i) => {
      try {
        layerCompression(l, side.text);
      } catch (e) {
        if (!(e instanceof NydusError)) throw e;
        side.usable = false;
        this.imageFinding('manifest', side, `layer ${i} (${l.digest}) has media type ${quote(l.mediaType)}, not a tar, tar+gzip or tar+zstd layer`);
      }
    });
  }

  private nydusManifest(side: Side, img: Img): void {
    const layers = img.manifest.layers;
    const last = layers.at(-1);
    if (!last || last.annotations?.[ANNOTATION.BOOTSTRAP] !== 'true') {
      side.usable = false;
      const what = last ? `the last layer (${last.digest})` : 'the manifest has no layers: its last layer';
      this.imageFinding('manifest', side, `invalid bootstrap layer in nydus image manifest: ${what} lacks the annotation ${ANNOTATION.BOOTSTRAP}: "true"`);
    } else if (!isGzipLayer(last.mediaType)) {
      side.usable = false;
      this.imageFinding('manifest', side, `invalid bootstrap layer in nydus image manifest: the last layer (${last.digest}) has media type ${quote(last.mediaType)}, not a gzip tar layer`);
    }
    layers.slice(0, -1).forEach((l, i) => {
      if (l.mediaType !== MEDIA.NYDUS_BLOB) this.imageFinding('manifest', side, `invalid blob layer in nydus image manifest: layer ${i} (${l.digest}) has media type ${quote(l.mediaType)}, not ${MEDIA.NYDUS_BLOB}`);
      else if (l.annotations?.[ANNOTATION.BLOB] !== 'true') this.imageFinding('manifest', side, `invalid blob layer in nydus image manifest: layer ${i} (${l.digest}) lacks the annotation ${ANNOTATION.BLOB}: "true"`);
    });
    this.diffIdCount(side, img);
    const ids = img.config.rootfs.diff_ids;
    if (side.bootDiffId !== undefined && ids.length > 0 && ids.at(-1) !== side.bootDiffId) {
      this.imageFinding('manifest', side, `invalid bootstrap layer diff id: ${side.bootDiffId} (calculated) != ${ids.at(-1)} (in image config)`);
    }
  }

  /** The two configs' `config` (Env, Cmd, …) must be equal, ArgsEscaped aside: one line per key that differs. */
  private compareConfigs(a: Img, b: Img): void {
    const s = goConfig(a.config.config);
    const t = goConfig(b.config.config);
    for (const k of [...new Set([...Object.keys(s), ...Object.keys(t)])].sort()) {
      const x = s[k] === undefined ? undefined : canonical(s[k]);
      const y = t[k] === undefined ? undefined : canonical(t[k]);
      if (x === y) continue;
      this.found(
        { rule: 'manifest', field: `config.${k}`, ...(x !== undefined ? { source: x } : {}), ...(y !== undefined ? { target: y } : {}) },
        `manifest: the image configs differ: config.${k} is ${x === undefined ? '(none)' : quote(x, 120)} in the source, ${y === undefined ? '(none)' : quote(y, 120)} in the target`,
      );
    }
  }

  // ---- rule 2: the bootstrap ----

  private bootstrapRule(side: Side): void {
    const img = side.chosen!;
    if (img.kind !== 'nydus' || !side.usable) return;
    if (!side.bootPath) {
      side.usable = false;
      this.imageFinding('bootstrap', side, `invalid nydus bootstrap: the bootstrap layer holds no ${BOOTSTRAP_IN_LAYER}`);
      return;
    }
    let r: ReturnType<typeof checkBootstrap>;
    try {
      r = checkBootstrap(side.bootPath);
    } catch (e) {
      if (!(e instanceof NydusError)) throw e;
      side.usable = false;
      this.imageFinding('bootstrap', side, `invalid nydus bootstrap: ${e.message}`);
      return;
    }
    side.image = r.image;
    const blobs = r.image.blobs.map((b) => b.blobId);
    this.pendingOutputs.push(writeJson(path.join(side.dir, 'nydus_output.json'), outputJson({
      bootstrap: side.bootPath, blobs, trace: r.trace, fsVersion: String(r.image.version), compressor: r.image.compressor,
    }), false));
    const layers = img.manifest.layers.slice(0, -1).filter((l) => l.annotations?.[ANNOTATION.REF] === undefined).map((l) => l.digest.slice(7));
    // With the blobs in a storage backend the manifest lists none: nothing to hold the table against (as upstream).
    if (layers.length === 0) return;
    const have = new Set(layers);
    for (const id of blobs) {
      if (!have.has(id)) this.imageFinding('bootstrap', side, `blob ${quote(id)} of the bootstrap's blob table is not a blob layer of the manifest`);
    }
  }

  /** nydus_output.json files being written; awaited before the run ends. */
  readonly pendingOutputs: Array<Promise<void>> = [];

  // ---- rule 3: the file systems ----

  private async filesystemRule(source: Side, target: Side): Promise<void> {
    this.progress(`comparing the file systems of ${source.text} and ${target.text}`);
    const tasks = [this.rootfsOf(source), this.rootfsOf(target)];
    const settled = await Promise.allSettled(tasks);
    try {
      for (const s of settled) if (s.status === 'rejected') throw s.reason;
      const [a, b] = settled.map((s) => (s as PromiseFulfilledResult<Rootfs>).value) as [Rootfs, Rootfs];
      for (const d of compareRootfs(a, b)) this.fsFinding(d);
    } finally {
      await Promise.allSettled([source, target].map((s) => rm(path.join(s.dir, 'blobs'), { recursive: true, force: true })));
    }
  }

  private fsFinding(d: FsDifference): void {
    const text = d.path.toString('utf8');
    const exact = Buffer.from(text, 'utf8').equals(d.path);
    this.found(
      {
        rule: 'filesystem', path: text, ...(exact ? {} : { pathHex: d.path.toString('hex') }), field: d.field,
        ...(d.source !== undefined ? { source: d.source } : {}), ...(d.target !== undefined ? { target: d.target } : {}),
      },
      `filesystem: ${describeFsDifference(d)}`,
    );
  }

  private async rootfsOf(side: Side): Promise<Rootfs> {
    const img = side.chosen!;
    const repo = side.ref.repository;
    if (img.kind === 'oci') {
      const count = img.manifest.layers.length;
      return ociRootfs(img.manifest.layers.map((l, i) => {
        const where = `${side.text}: layer ${i} (${l.digest})`;
        return {
          where,
          open: async () => {
            this.progress(`${side.role}: reading layer ${i + 1}/${count} ${l.digest}`);
            return decompressed(await side.client.getBlob(repo, l.digest, l.size), layerCompression(l, side.text), where);
          },
        };
      }), side.text);
    }
    const image = side.image!;
    const dir = path.join(side.dir, 'blobs');
    const files = new Map<string, string>();
    const byHex = new Map(img.manifest.layers.slice(0, -1).map((l) => [l.digest.slice(7), l]));
    // A zran blob is the gzip layer its ref blob layer names; the ref blob holds its ZRAN table.
    const byRef = new Map(img.manifest.layers.slice(0, -1).flatMap((l) => {
      const ref = l.annotations?.[ANNOTATION.REF];
      return ref !== undefined && ref.startsWith('sha256:') ? [[ref.slice(7), l] as const] : [];
    }));
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      throw fsError('OUTPUT', dir, e);
    }
    const queue = new PQueue({ concurrency: Math.min(4, os.availableParallelism()) });
    const fetch = async (digest: string, size: number, file: string) => {
      this.progress(`${side.role}: fetching blob ${digest}`);
      try {
        await pipeline(await side.client.getBlob(repo, digest as Digest, size), createWriteStream(file));
      } catch (e) {
        if (e instanceof NydusError) throw e;
        throw fsError('OUTPUT', file, e);
      }
    };
    const fetches = image.blobs.map((b) => queue.add(async () => {
      const layer = byHex.get(b.blobId);
      const ref = layer ? undefined : byRef.get(b.blobId);
      if (!layer && !ref) return;
      const file = path.join(dir, b.blobId);
      if (layer) await fetch(layer.digest, layer.size, file);
      else {
        // The gzip layer (its size is the blob's), and the ref blob under its digest, where the reader looks for the table.
        await fetch(`sha256:${b.blobId}`, b.compressedSize, file);
        await fetch(ref!.digest, ref!.size, path.join(dir, ref!.digest.slice(7)));
      }
      files.set(b.blobId, file);
    }, { throwOnTimeout: true }));
    const settled = await Promise.allSettled(fetches);
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
    // Blobs that are not layers of the manifest are read from the target's backend, when given.
    const backend = side === this.target && this.o.targetBackend ? new SyncBlobReader(this.o.targetBackend) : undefined;
    const reader = new BlobReader(image, { files, blobDir: dir, ...(backend ? { backend } : {}) });
    try {
      return nydusRootfs(image, reader);
    } finally {
      reader.close();
      backend?.close();
    }
  }
}

function summary(side: Side | undefined): CheckedImage | undefined {
  const img = side?.chosen;
  if (!side || !img) return undefined;
  return { reference: side.text, kind: img.kind, digest: img.desc.digest, mediaType: img.desc.mediaType, ...(img.platform ? { platform: img.platform } : {}) };
}

/**
 * Checks a Nydus image (rules 1 and 2) and, given its source, compares their file systems (rule 3).
 * Findings do not throw: they are in the result (ok false) and in <work-dir>/check-report.json.
 * What stops the check (a registry that cannot be reached, a source layer that is not a tar) throws.
 */
export async function check(o: CheckOptions): Promise<CheckResult> {
  const work = path.resolve(o.workDir ?? './output');
  checkWorkDir(work);
  const env = o.env;
  const side = (role: Role, text: string): Side => {
    const ref = parseReference(text);
    const insecure = role === 'source' ? o.sourceInsecure : o.targetInsecure;
    const client = new RegistryClient(ref.registry, {
      role: 'source', insecure, plainHttp: o.plainHttp, env, userAgent: 'nydusify-ts',
      hints: { insecure: `--${role}-insecure`, plainHttp: '--plain-http' },
    });
    return { role, ref, text: formatReference(ref), client, dir: path.join(work, role), usable: true };
  };
  const target = side('target', o.target);
  let source: Side | undefined;
  try {
    source = o.source !== undefined ? side('source', o.source) : undefined;
  } catch (e) {
    await target.client.close();
    throw e;
  }
  const c = new Checker(o, work, target, source);
  const report = path.join(work, REPORT);
  const result = (): CheckResult => ({
    ok: c.differences.length === 0, differences: c.differences, rules: c.rules, workDir: work, report,
    ...(source?.chosen ? { source: summary(source)! } : {}), target: summary(target)!,
  });
  try {
    await c.run();
    await Promise.all(c.pendingOutputs);
    const r = result();
    await writeJson(report, { source: r.source ?? null, target: r.target, ok: r.ok, rules: r.rules, differences: r.differences });
    return r;
  } catch (e) {
    await Promise.allSettled(c.pendingOutputs);
    // The report says what stopped the check, when the work dir is ours by then.
    if (c.prepared) {
      await writeJson(report, {
        source: summary(source) ?? null, target: summary(target) ?? null, ok: false, rules: c.rules, differences: c.differences,
        error: String((e as Error)?.message ?? e).split('\n')[0],
      }).catch(() => undefined);
    }
    throw e;
  } finally {
    await Promise.allSettled([target.client.close(), source?.client.close()]);
  }
}
