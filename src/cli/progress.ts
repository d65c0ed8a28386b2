// Progress on a TTY (files, bytes, throughput), silent when piped or above info level.
import type { Progress } from '../pipeline/stage.js';

export function progressReporter(enabled: boolean): { update(p: Progress): void; done(): void } {
  if (!enabled || !process.stderr.isTTY) return { update: () => undefined, done: () => undefined };
  const t0 = Date.now();
  let shown = false;
  return {
    update(p) {
      const secs = Math.max(0.001, (Date.now() - t0) / 1000);
      const mb = p.bytes / 1048576;
      process.stderr.write(`\r\x1b[K${p.files} files, ${mb.toFixed(1)} MiB, ${(mb / secs).toFixed(1)} MiB/s, ${p.dedupChunks} chunks deduplicated`);
      shown = true;
    },
    done() {
      if (shown) process.stderr.write('\r\x1b[K');
    },
  };
}
