import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { BaseCommand } from '../cli/base.js';
import { NydusError } from '../errors.js';
import { check, checkReport, verboseLines } from '../read/check.js';
import { once } from 'node:events';
import { outputJson, writeOutputJson } from '../builder/output-json.js';
import { backendFlags, backendSpecOf } from '../cli/backend-flags.js';
import { SyncBlobReader } from '../backends/sync-reader.js';

export default class Check extends BaseCommand {
  static override summary = 'Validate a RAFS filesystem metadata blob (bootstrap)';
  static override description = 'Checks the structure and every reference of a bootstrap; with --blob-dir also reads every chunk back and verifies its digest.';
  static override examples = ['<%= config.bin %> check out/bootstrap', '<%= config.bin %> check -B out/bootstrap -D blobs/ -v'];

  static override args = { bootstrap: Args.string({ description: 'bootstrap file (or a data blob with an inline bootstrap)' }) };
  static override flags = {
    bootstrap: Flags.string({ char: 'B', description: 'bootstrap file (deprecated: give it as the argument)' }),
    'blob-dir': Flags.string({ char: 'D', exclusive: ['config'], description: 'directory holding the data blobs: read and verify every chunk' }),
    blob: Flags.string({ char: 'b', description: 'the data blob file, for an image with one blob: read and verify every chunk' }),
    config: Flags.string({ char: 'C', description: 'nydusd configuration file (not supported yet)' }),
    verbose: Flags.boolean({ char: 'v', description: 'list every inode and chunk' }),
    'output-json': Flags.string({ char: 'J', description: 'write the result as JSON to this file' }),
    ...backendFlags,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Check);
    this.initLogger(flags);
    if (args.bootstrap && flags.bootstrap) throw new NydusError('USAGE', 'give the bootstrap either as the argument or with -B, not both');
    const file = args.bootstrap ?? flags.bootstrap;
    if (!file) throw new NydusError('USAGE', 'missing bootstrap: check BOOTSTRAP');
    if (flags.config) throw new NydusError('UNSUPPORTED', '--config is not supported yet; use --blob-dir');
    const spec = backendSpecOf(flags);
    if (spec && (flags['blob-dir'] !== undefined || flags.blob !== undefined)) throw new NydusError('USAGE', `--backend-type cannot be used with --${flags.blob !== undefined ? 'blob' : 'blob-dir'}`);
    const backend = spec ? new SyncBlobReader(spec) : undefined;
    let r: ReturnType<typeof check>;
    try {
      r = check(file, backend ? { backend } : { blobDir: flags['blob-dir'], blob: flags.blob });
    } finally {
      backend?.close();
    }
    if (flags.verbose) {
      // Streamed in 64 KiB pieces, waiting for the pipe: the listing grows with the image.
      let piece = '';
      for (const line of verboseLines(r.image)) {
        piece += `${line}\n`;
        if (piece.length >= 1 << 16) {
          if (!process.stdout.write(piece)) await once(process.stdout, 'drain');
          piece = '';
        }
      }
      process.stdout.write(piece);
    }
    process.stdout.write(checkReport(r.image));
    if (flags['output-json']) {
      await writeOutputJson(flags['output-json'], outputJson({
        bootstrap: file, blobs: r.image.blobs.map((b) => b.blobId), trace: r.trace,
        fsVersion: String(r.image.version), compressor: r.image.compressor,
      }), false);
    }
  }
}
