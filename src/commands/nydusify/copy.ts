import * as Flags from '@oclif/core/flags';
import { BaseCommand } from '../../cli/base.js';
import { NydusError } from '../../errors.js';
import { copy, type CopyEvent } from '../../oci/copy.js';

/** Upstream's flags that this copy does not do yet: refused by name, never ignored. */
const NOT_YET: Array<[flag: string, why: string]> = [
  ['source-backend-type', 'copying blobs from a storage backend (--source-backend-type) is not supported yet'],
  ['source-backend-config', 'copying blobs from a storage backend (--source-backend-config) is not supported yet'],
  ['source-backend-config-file', 'copying blobs from a storage backend (--source-backend-config-file) is not supported yet'],
];

/** go-humanize's ParseBytes, as upstream reads --push-chunk-size: "16MB" is 16·10^6, "16MiB" 16·2^20, a bare number bytes. */
export function parseByteSize(flag: string, value: string): number {
  const m = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*$/.exec(value.replace(/,/g, ''));
  const units: Record<string, number> = {
    '': 1, b: 1, k: 1e3, kb: 1e3, ki: 2 ** 10, kib: 2 ** 10, m: 1e6, mb: 1e6, mi: 2 ** 20, mib: 2 ** 20,
    g: 1e9, gb: 1e9, gi: 2 ** 30, gib: 2 ** 30, t: 1e12, tb: 1e12, ti: 2 ** 40, tib: 2 ** 40,
  };
  const unit = m ? units[m[2]!.toLowerCase()] : undefined;
  const n = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(n)) throw new NydusError('USAGE', `invalid value ${JSON.stringify(value)} for --${flag}: expected a size such as 0MB, 16MB or 8MiB`);
  return n;
}

export default class Copy extends BaseCommand {
  static override summary = 'Copy an image (OCI or Nydus) between registries and OCI-layout archives';
  static override description =
    'Manifests and blobs are copied byte for byte; each blob streams from the source into the target (mounted when both are ' +
    'repositories of one registry, skipped when the target has it) and the manifest goes last. file://PATH reads or writes an ' +
    'OCI-layout tar archive (an existing empty directory as the target gets a layout directory).';
  static override examples = [
    'nydusify copy --source myregistry/repo:tag-nydus --target otherregistry/repo:tag-nydus',
    'nydusify copy --source localhost:5000/app:v1 --target file:///tmp/app.tar --plain-http',
    'nydusify copy --source file:///tmp/app.tar --target localhost:5000/app:v1 --plain-http --push-chunk-size 16MB',
  ];

  static override flags = {
    source: Flags.string({ description: 'source image reference, or file://PATH of an OCI-layout archive', required: true, env: 'SOURCE' }),
    target: Flags.string({ description: 'target image reference, or file://PATH of the OCI-layout archive to write', required: true, env: 'TARGET' }),
    'source-insecure': Flags.boolean({ description: 'skip verifying the source registry\'s TLS certificate', env: 'SOURCE_INSECURE' }),
    'target-insecure': Flags.boolean({ description: 'skip verifying the target registry\'s TLS certificate', env: 'TARGET_INSECURE' }),
    'plain-http': Flags.boolean({ description: 'speak plain HTTP to the registries', env: 'PLAIN_HTTP' }),
    platform: Flags.string({ description: 'os/arch[/variant] to copy from a multi-platform source, comma list (default linux/<host arch>)' }),
    'all-platforms': Flags.boolean({ description: 'copy the whole index with every platform', exclusive: ['platform'] }),
    'push-chunk-size': Flags.string({ description: 'send each blob in PATCH requests of this size (0MB: one streamed request)', default: '0MB' }),
    'work-dir': Flags.string({ description: 'working directory (copy stages nothing on disk; accepted for upstream\'s scripts)', default: './tmp', env: 'WORK_DIR' }),
    'nydus-image': Flags.string({ description: 'path to nydus-image (upstream uses it only with storage backends; unused here)', default: 'nydus-image', env: 'NYDUS_IMAGE' }),
    concurrency: Flags.integer({ description: 'blobs copied at once', default: 5, min: 1 }),
    ...Object.fromEntries(NOT_YET.map(([flag]) => [flag, Flags.string({ hidden: true, description: 'not supported yet' })])),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Copy);
    const log = this.initLogger(flags);
    for (const [flag, why] of NOT_YET) if ((flags as Record<string, unknown>)[flag] !== undefined) throw new NydusError('UNSUPPORTED', why);
    const chunk = parseByteSize('push-chunk-size', flags['push-chunk-size']);
    if (chunk > 0) log.info(`pushing blobs in chunks of ${chunk} bytes`);
    const result = await copy({
      source: flags.source,
      target: flags.target,
      sourceInsecure: flags['source-insecure'],
      targetInsecure: flags['target-insecure'],
      plainHttp: flags['plain-http'],
      platform: flags.platform,
      allPlatforms: flags['all-platforms'],
      pushChunkSize: chunk,
      workDir: flags['work-dir'],
      concurrency: flags.concurrency,
      onProgress: progressLine(log.enabled('info') && process.stderr.isTTY === true),
    });
    const b = result.blobs;
    log.info(`copied ${flags.source} to ${result.target}@${result.digest} (${b.copied} blobs sent, ${b.mounted} mounted, ${b.skipped} already there)`);
  }
}

/** One line per blob and manifest on a TTY, nothing when piped. */
function progressLine(enabled: boolean): ((e: CopyEvent) => void) | undefined {
  if (!enabled) return undefined;
  return (e) => {
    const what = e.stage === 'skipped' ? 'already in the target' : e.stage === 'mounted' ? 'mounted' : e.stage === 'copied' ? 'copied' : 'manifest written';
    process.stderr.write(`${e.digest} (${e.size} bytes): ${what}\n`);
  };
}
