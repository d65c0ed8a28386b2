// `check`: a bootstrap's structure and references (the loader checks those), plus, when the
// blobs are at hand, every chunk read back, decompressed and verified against its digest.
import type { ImageNode, RafsImage } from './model.js';
import { isReg } from './model.js';
import { openImage } from './open.js';
import { BlobReader, type BlobLocation } from './data.js';
import { FEATURE_WORDS } from '../format/rafs/blob-table.js';
import { Trace } from '../builder/trace.js';

export interface CheckResult {
  image: RafsImage;
  trace: Trace;
  /** Chunks read and verified (0 without blobs). */
  verifiedChunks: number;
}

export function featureWords(features: number): string {
  return FEATURE_WORDS.filter(([bit]) => (features & bit) !== 0).map(([, w]) => w).join(' ');
}

/** Every node with its path, parents before children (an explicit stack: depth is the image's to choose). */
export function* walkImage(root: ImageNode, base = ''): Generator<[string, ImageNode]> {
  const stack: Array<[string, ImageNode]> = [[base, root]];
  for (let top = stack.pop(); top; top = stack.pop()) {
    const [p, n] = top;
    yield [p === '' ? '/' : p, n];
    const kids = n.children ?? [];
    for (let i = kids.length - 1; i >= 0; i--) stack.push([`${p}/${kids[i].name.toString('utf8')}`, kids[i]]);
  }
}

export function check(bootstrap: string, blobs?: BlobLocation): CheckResult {
  const trace = new Trace();
  const t = trace.start('load_tree_from_bootstrap');
  const image = openImage(bootstrap);
  t.end();
  let verifiedChunks = 0;
  if (blobs && (blobs.blobDir || blobs.blob || blobs.files || blobs.backend)) {
    const reader = new BlobReader(image, { ...blobs, imageFile: bootstrap });
    try {
      const seen = new Set<string>();
      const seenIno = new Set<number>();
      for (const [, n] of walkImage(image.root)) {
        // Every name of an inode shares its chunks: they are read once, not once per name.
        if (!isReg(n.mode) || seenIno.has(n.ino)) continue;
        seenIno.add(n.ino);
        for (const c of n.chunks ?? []) {
          const key = `${c.blobIndex}:${c.index}`;
          if (seen.has(key)) continue;
          seen.add(key);
          reader.readChunk(c, true);
          verifiedChunks++;
        }
      }
    } finally {
      reader.close();
    }
  }
  return { image, trace, verifiedChunks };
}

/** The lines upstream prints after a successful check. */
export function checkReport(image: RafsImage): string {
  const lines = ['RAFS filesystem metadata is valid, referenced data blobs: '];
  for (const b of image.blobs) {
    lines.push(`\t ${b.index}: ${b.blobId}, compressed size ${b.compressedSize}, uncompressed size ${b.uncompressedSize}, chunk size: ${b.chunkSize}, chunk count: ${b.chunkCount}, features: ${featureWords(b.features)}`);
  }
  return lines.join('\n') + '\n';
}

/**
 * The verbose listing, line by line: one line per name, and an inode's chunk lines under its first
 * name only (its other names share its ino). A hostile image names one 10,000-chunk inode 5,000 times; listing its chunks under
 * every name was 50 million lines held in memory.
 */
export function* verboseLines(image: RafsImage): Generator<string> {
  const listed = new Set<number>();
  for (const [p, n] of walkImage(image.root)) {
    const again = n.chunks !== undefined && n.chunks.length > 0 && listed.has(n.ino);
    yield `inode: ${p} ino ${n.ino} mode 0o${n.mode.toString(8)} uid ${n.uid} gid ${n.gid} nlink ${n.nlink} size ${n.size} mtime ${n.mtime}.${String(n.mtimeNsec).padStart(9, '0')}${n.target ? ` -> ${n.target.toString('utf8')}` : ''}`;
    if (again || !n.chunks) continue;
    listed.add(n.ino);
    for (const c of n.chunks) {
      yield `\t chunk: file offset ${c.fileOffset}, blob ${c.blobIndex} index ${c.index}, compressed ${c.compressedOffset}/${c.compressedSize}, uncompressed ${c.uncompressedOffset}/${c.uncompressedSize}, digest ${c.digest.toString('hex')}`;
    }
  }
}

/** The verbose listing as one string (small images, tests). */
export function verboseListing(image: RafsImage): string {
  return [...verboseLines(image)].join('\n') + '\n';
}
