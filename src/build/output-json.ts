// The --output-json document of create, merge and check, in upstream's schema and field order
// (blob.md §7.4). Data only: the CLI writes it (src/cli/output-json.ts), and `nydusify check`
// writes it as nydus_output.json.
import type { Trace } from './trace.js';

/** The version the documents and the nydus-builder-version annotation carry. */
export const TOOL_VERSION = 'v2.4.4-nydus-ts-0.1.0';

export interface OutputJson {
  version: string;
  bootstrap: string;
  blobs: string[];
  external_bootstrap: string;
  external_blobs: string[];
  trace: ReturnType<Trace['toJSON']>;
  fs_version: string;
  compressor: string;
}

export function outputJson(o: { bootstrap: string; blobs: string[]; trace: Trace; fsVersion: string; compressor: string }): OutputJson {
  return {
    version: TOOL_VERSION,
    bootstrap: o.bootstrap,
    blobs: o.blobs,
    external_bootstrap: '',
    external_blobs: [],
    trace: o.trace.toJSON(),
    fs_version: o.fsVersion,
    compressor: o.compressor,
  };
}
