// What each target runs: the same case as a library call (in the worker) and as a command line
// (through bin/nydus-image.js). Paths are relative to the slot directory, the process's cwd.

/** argv for bin/nydus-image.js. */
export function cliArgv(spec) {
  const o = spec.opts;
  const a = [];
  const add = (flag, v) => {
    if (v !== undefined && v !== false) a.push(flag, ...(v === true ? [] : [String(v)]));
  };
  switch (spec.target) {
    case 'check':
      a.push('check', o.bootstrap);
      add('-D', o.blobDir);
      add('--blob', o.blob);
      if (o.verbose) a.push('-v');
      break;
    case 'inspect':
      a.push('inspect', o.bootstrap);
      add('-R', o.request);
      break;
    case 'unpack':
      a.push('unpack', o.bootstrap, '--output', o.output);
      add('-D', o.blobDir);
      add('--blob', o.blob);
      if (o.verify) a.push('--verify');
      break;
    case 'export':
      a.push('export', '--block', '-B', o.bootstrap, '-D', o.blobDir);
      add('-O', o.output);
      if (o.verity) a.push('--verity');
      break;
    case 'merge':
      a.push('merge', '-B', o.bootstrap, ...o.sources);
      break;
    case 'create':
      a.push('create', '-t', o.type, o.source);
      add('-B', o.bootstrap);
      add('-D', o.blobDir);
      add('--blob-cache-dir', o.blobCacheDir);
      add('--blob-id', o.blobId);
      add('--compressor', o.compressor);
      add('--chunk-size', o.chunkSize !== undefined ? `0x${o.chunkSize.toString(16)}` : undefined);
      if (o.blobInlineMeta) a.push('--blob-inline-meta');
      if (o.blobToc) a.push('--features', 'blob-toc');
      break;
    default:
      throw new Error(`unknown target ${spec.target}`);
  }
  return a;
}

/**
 * Runs the case in this process. Returns { texts } (what would be printed, for the canary scan)
 * and, for create, the outputs to read back.
 */
export async function runInProcess(lib, spec) {
  const o = spec.opts;
  const texts = [];
  switch (spec.target) {
    case 'check': {
      const r = lib.check(o.bootstrap, { blobDir: o.blobDir, blob: o.blob });
      if (o.verbose) texts.push(lib.verboseListing(r.image));
      texts.push(lib.checkReport(r.image));
      break;
    }
    case 'inspect': {
      const image = lib.openImage(o.bootstrap);
      if (o.request !== undefined) texts.push(lib.renderAnswer(lib.inspectRequest(image, o.request)));
      else texts.push(lib.inspectReport(image));
      break;
    }
    case 'unpack':
      await lib.unpack({ bootstrap: o.bootstrap, output: o.output, blob: o.blob, blobDir: o.blobDir, verify: o.verify });
      break;
    case 'export':
      await lib.exportBlock({ bootstrap: o.bootstrap, blobDir: o.blobDir, output: o.output, verity: o.verity });
      break;
    case 'merge':
      await lib.merge({ sources: o.sources, bootstrap: o.bootstrap });
      break;
    case 'create': {
      const r = await lib.create({
        source: o.source, type: o.type, bootstrap: o.bootstrap, blobDir: o.blobDir, blobCacheDir: o.blobCacheDir, blobId: o.blobId,
        compressor: o.compressor, chunkSize: o.chunkSize, blobInlineMeta: o.blobInlineMeta, blobToc: o.blobToc, threads: 0,
      });
      return { texts, created: r };
    }
    default:
      throw new Error(`unknown target ${spec.target}`);
  }
  return { texts };
}
