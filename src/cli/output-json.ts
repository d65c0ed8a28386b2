// Writes the --output-json document (src/build/output-json.ts) as create, merge and check do.
import { writeFileAtomic } from '../io/atomic.js';

/** create/merge write pretty JSON (2-space indent), check compact; neither ends with a newline. */
export function writeOutputJson(file: string, data: unknown, pretty: boolean): Promise<void> {
  return writeFileAtomic(file, Buffer.from(pretty ? JSON.stringify(data, null, 2) : JSON.stringify(data)));
}
