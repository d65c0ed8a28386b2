import * as Flags from '@oclif/core/flags';
import { BaseCommand } from '../../cli/base.js';
import { NydusError } from '../../errors.js';
import { check } from '../../oci/check.js';
import { BACKEND_TYPES, backendFromFlags } from '../../backends/index.js';

/** Upstream's flags that this check does not honour: refused by name, never ignored. */
const REFUSED: Array<[flag: string, why: string]> = [
  ['nydus-image', '--nydus-image is not used: check reads the bootstrap with its own reader, in-process'],
  ['nydusd', '--nydusd is not used: check compares the file systems without mounting them'],
  ['source-backend-type', 'storage backends (--source-backend-type) are not supported yet; blobs are read from the registry'],
  ['source-backend-config', 'storage backends (--source-backend-config) are not supported yet; blobs are read from the registry'],
  ['source-backend-config-file', 'storage backends (--source-backend-config-file) are not supported yet; blobs are read from the registry'],
];

export default class Check extends BaseCommand {
  static override summary = 'Check a Nydus image in a registry, and compare its file system with its source image';
  static override description =
    'Checks the Nydus manifest and config, reads the bootstrap and holds its blob table against the blob layers, then ' +
    'compares every file of the source image (its layers applied with the OCI whiteout rules) with the Nydus image (every ' +
    'chunk read back from the registry): type, mode, owner, size, device, symlink target, xattrs, content, mtime, link ' +
    'count and hard links. No root, mount or nydusd is needed. Every difference is printed, one line each, and written ' +
    'to <work-dir>/check-report.json; the exit status is 0 only when there is none.';
  static override examples = [
    'nydusify check --source myregistry/repo:tag --target myregistry/repo:tag-nydus',
    'nydusify check --target localhost:5000/app:v1-nydus --plain-http',
  ];

  static override flags = {
    source: Flags.string({ description: 'the source image reference (the image the target was converted from)', env: 'SOURCE' }),
    target: Flags.string({ description: 'the target (Nydus) image reference', required: true, env: 'TARGET' }),
    'source-insecure': Flags.boolean({ description: 'skip verifying the source registry\'s TLS certificate', env: 'SOURCE_INSECURE' }),
    'target-insecure': Flags.boolean({ description: 'skip verifying the target registry\'s TLS certificate', env: 'TARGET_INSECURE' }),
    'plain-http': Flags.boolean({ description: 'speak plain HTTP to the registries', env: 'PLAIN_HTTP' }),
    platform: Flags.string({ description: 'os/arch[/variant] choosing the manifest of an index (default linux/<host arch>)' }),
    'multi-platform': Flags.boolean({ description: 'the target must be an index with both an OCI and a Nydus manifest for the platform', env: 'MULTI_PLATFORM' }),
    'work-dir': Flags.string({ description: 'where the manifests, configs, bootstrap and report go (removed first)', default: './output', env: 'WORK_DIR' }),
    'target-backend-type': Flags.string({ description: `storage backend holding the target's blobs: ${BACKEND_TYPES.join(', ')}` }),
    'target-backend-config': Flags.string({ description: 'that backend\'s config as JSON' }),
    'target-backend-config-file': Flags.string({ description: 'file holding that backend\'s config JSON' }),
    ...Object.fromEntries(REFUSED.map(([flag]) => [flag, Flags.string({ hidden: true, description: 'not supported' })])),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Check);
    const log = this.initLogger(flags);
    for (const [flag, why] of REFUSED) if ((flags as Record<string, unknown>)[flag] !== undefined) throw new NydusError('UNSUPPORTED', why);
    const targetBackend = backendFromFlags(flags['target-backend-type'], flags['target-backend-config'], flags['target-backend-config-file']);
    const result = await check({
      ...(targetBackend ? { targetBackend } : {}),
      source: flags.source,
      target: flags.target,
      sourceInsecure: flags['source-insecure'],
      targetInsecure: flags['target-insecure'],
      plainHttp: flags['plain-http'],
      platform: flags.platform,
      multiPlatform: flags['multi-platform'],
      workDir: flags['work-dir'],
      onDifference: (d) => process.stdout.write(`${d.message.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}\n`),
      onProgress: (line) => log.info(line),
    });
    if (!result.ok) {
      const n = result.differences.length;
      throw new NydusError('SOURCE', `check failed: ${n} difference${n === 1 ? '' : 's'} found (report: ${result.report})`);
    }
    log.info(`verified image ${result.target.reference}${result.source ? ` against ${result.source.reference}` : ''} (report: ${result.report})`);
  }
}
