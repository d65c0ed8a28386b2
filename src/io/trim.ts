// Hands malloc's free pages back to the kernel in a big build. glibc keeps the pages of what the
// build's threads freed (the pipeline's buffers, the workers' task copies) wherever a live block
// sits above them: on a 500,000-file tree well over 100 MB that no one uses.
import { native } from './native.js';

/** Below this RSS the build is left alone (a trim walks every arena: tens of milliseconds at 1 GB). */
const TRIM_ABOVE = 512 << 20;

/** Returns the free pages of every malloc arena when the process has grown past TRIM_ABOVE. */
export function releaseFreePages(): void {
  if (process.memoryUsage.rss() > TRIM_ABOVE) native.mallocTrim();
}
