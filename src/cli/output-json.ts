// --output-json in upstream's schema and field order (blob.md §7.4).
import { writeFileAtomic } from '../io/atomic.js';
import type { Trace } from '../build/trace.js';
import { TOOL_VERSION } from '../version.js';

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
