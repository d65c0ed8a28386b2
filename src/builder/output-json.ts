// The --output-json document of create, merge and check, in upstream's schema and field order
// (blob.md §7.4), and writeOutputJson, which writes it as create, merge, compact and check do
// (`nydusify check` writes it as nydus_output.json).
import type { Trace } from './trace.js';
import { writeFileAtomic } from '../io/atomic.js';
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

/** create/merge write pretty JSON (2-space indent), check compact; neither ends with a newline. */
export function writeOutputJson(file: string, data: unknown, pretty: boolean): Promise<void> {
  return writeFileAtomic(file, Buffer.from(pretty ? JSON.stringify(data, null, 2) : JSON.stringify(data)));
}
