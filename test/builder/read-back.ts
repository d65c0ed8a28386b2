// Our reader as a judge of file contents: every regular file of an image read back from its blob
// (each chunk decompressed and digest-checked) and compared byte for byte with the source file.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { BlobReader, type BlobLocation } from '../../src/read/data.js';
import { isReg, type ImageNode, type RafsImage } from '../../src/read/model.js';
import { joinPath } from '../helpers/tree.js';

/** Every node of an image with its path relative to the root, as bytes ('' for the root). */
export function* imageEntries(root: ImageNode, rel: Buffer = Buffer.alloc(0)): Generator<[Buffer, ImageNode]> {
  yield [rel, root];
  for (const c of root.children ?? []) {
    const p = rel.length === 0 ? Buffer.from(c.name) : Buffer.concat([rel, Buffer.from('/'), c.name]);
    yield* imageEntries(c, p);
  }
}

export interface ReadBackResult {
  files: number;
  bytes: number;
  chunks: number;
  /** One line per file whose content, or size, is not the source's. */
  mismatches: string[];
}

/** Reads every regular file of image through BlobReader and compares it with sourceRoot's file. */
export function readBackAndCompare(image: RafsImage, where: BlobLocation, sourceRoot: string): ReadBackResult {
  const reader = new BlobReader(image, where);
  const out: ReadBackResult = { files: 0, bytes: 0, chunks: 0, mismatches: [] };
  let src = Buffer.alloc(0);
  try {
    for (const [rel, node] of imageEntries(image.root)) {
      if (!isReg(node.mode)) continue;
      out.files++;
      const show = `/${rel.toString('utf8')}`;
      const fd = openSync(joinPath(sourceRoot, rel), 'r');
      try {
        const size = fstatSync(fd).size;
        if (size !== node.size) out.mismatches.push(`${show}: image size ${node.size}, source size ${size}`);
        let pos = 0;
        let bad = false;
        for (const data of reader.readFile(node, true)) {
          out.chunks++;
          if (src.length < data.length) src = Buffer.alloc(data.length);
          const n = readSync(fd, src, 0, data.length, pos);
          if (!bad && (n !== data.length || !src.subarray(0, n).equals(data))) {
            out.mismatches.push(`${show}: content differs in the chunk at file offset ${pos}`);
            bad = true;
          }
          pos += data.length;
        }
        out.bytes += pos;
        if (pos !== node.size) out.mismatches.push(`${show}: chunks hold ${pos} bytes, inode says ${node.size}`);
      } finally {
        closeSync(fd);
      }
    }
  } finally {
    reader.close();
  }
  return out;
}
