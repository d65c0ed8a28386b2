// The --output-json document of create, merge and check, in upstream's schema and field order
// (blob.md §7.4). Data only: the CLI writes it (src/cli/output-json.ts), and `nydusify check`
// writes it as nydus_output.json.
import type { Trace } from './trace.js';
import { TOOL_VERSION } from '../version.js';

/** The version the documents and the nydus-builder-version annotation carry (src/version.ts). */
export { TOOL_VERSION };

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
