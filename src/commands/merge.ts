import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { BaseCommand } from '../cli/base.js';
import { merge } from '../builder/merge.js';
import { NydusError } from '../errors.js';
import { outputJson, writeOutputJson } from '../builder/output-json.js';
import { readPrefetchList } from '../cli/prefetch-list.js';
import { checkNoCollision } from '../io/collide.js';

/** A comma list flag: items trimmed, as upstream splits them. */
const list = (v: string | undefined) => (v === undefined ? undefined : v.split(',').map((s) => s.trim()));

function numberList(flag: string, v: string | undefined): number[] | undefined {
  return list(v)?.map((s) => {
    const n = /^[0-9]+$/.test(s) ? Number(s) : NaN;
    if (!Number.isSafeInteger(n)) throw new NydusError('USAGE', `invalid number ${JSON.stringify(s)} in --${flag}: expected a decimal integer`);
    return n;
  });
}

export default class Merge extends BaseCommand {
  static override summary = 'Merge multiple bootstraps into a overlaid bootstrap';
  static override description =
    'Overlays per-layer RAFS bootstraps, lower to upper, with OCI whiteouts into one image bootstrap. ' +
    'Each layer\'s own blob is named by its source file name with every extension stripped, unless --original-blob-ids or --blob-digests say otherwise. Prints nothing on success.';
  static override examples = [
    '<%= config.bin %> merge -B image.boot layer0.boot layer1.boot',
    'echo / | <%= config.bin %> merge --prefetch-policy fs --output-json out.json --bootstrap image.boot W/<hex0> W/<hex1>',
  ];

  static override strict = false;
  static override args = {
    source: Args.string({ description: 'layer bootstraps (one or more), lower to upper', required: true }),
  };

  static override flags = {
    'parent-bootstrap': Flags.string({ description: 'File path of the parent/referenced RAFS metadata blob (optional)' }),
    bootstrap: Flags.string({ char: 'B', description: 'Output path of nydus overlaid bootstrap' }),
    'blob-dir': Flags.string({ char: 'D', description: 'Directory path to save generated RAFS metadata and data blobs' }),
    'chunk-dict': Flags.string({ description: 'chunk dictionary: PATH or bootstrap=PATH' }),
    'prefetch-policy': Flags.string({ options: ['fs', 'blob', 'none'], default: 'none', description: 'prefetch policy; with fs or blob, paths to prefetch are read from stdin' }),
    'output-json': Flags.string({ char: 'J', description: 'write merge results as JSON to this file' }),
    'blob-digests': Flags.string({ description: 'RAFS blob digest list separated by comma' }),
    'original-blob-ids': Flags.string({ description: 'original blob id list separated by comma, it may usually be a sha256 hex string' }),
    'blob-sizes': Flags.string({ description: 'RAFS blob size list separated by comma' }),
    'blob-toc-digests': Flags.string({ description: 'RAFS blob toc digest list separated by comma' }),
    'blob-toc-sizes': Flags.string({ description: 'RAFS blob toc size list separated by comma' }),
    config: Flags.string({ char: 'C', description: 'nydusd configuration file (not supported yet)' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Merge);
    const log = this.initLogger(flags);
    if (flags.config) throw new NydusError('UNSUPPORTED', '--config is not supported yet; merge names blobs by their source file names');
    const sources = argv as string[];
    checkNoCollision(
      [...sources.map((s) => ['source', s] as const), ['--parent-bootstrap', flags['parent-bootstrap']], ['--chunk-dict', flags['chunk-dict']?.replace(/^bootstrap=/, '')]],
      [['--bootstrap', flags.bootstrap], ['--output-json', flags['output-json']]],
    );
    const policy = flags['prefetch-policy'];
    const patterns = policy === 'none' ? [] : readPrefetchList();
    const result = await merge({
      sources,
      bootstrap: flags.bootstrap,
      blobDir: flags['blob-dir'],
      parentBootstrap: flags['parent-bootstrap'],
      chunkDict: flags['chunk-dict'],
      prefetch: policy === 'fs' ? patterns : [],
      blobDigests: list(flags['blob-digests']),
      originalBlobIds: list(flags['original-blob-ids']),
      blobSizes: numberList('blob-sizes', flags['blob-sizes']),
      blobTocDigests: list(flags['blob-toc-digests']),
      blobTocSizes: numberList('blob-toc-sizes', flags['blob-toc-sizes']),
      warn: (m) => log.warn(m),
    });
    if (flags['output-json']) {
      await writeOutputJson(flags['output-json'], outputJson({
        bootstrap: result.bootstrap, blobs: result.blobs, trace: result.trace,
        fsVersion: result.fsVersion, compressor: result.compressor,
      }), true);
    }
  }
}
