// An entry stage that drops every entry whose path (from the source root, starting with "/")
// matches one of the `exclude` globs, before the chunker reads it. Dropping a directory drops
// everything below it. Globs: `*` matches within one path component, `**` across components.
//
//   nydus-image create --plugin './plugins/path-filter?exclude=**/*.log,/tmp' -B boot -b blob rootfs/

/** @param {string} glob */
export function globToRegExp(glob) {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  // A pattern without a leading "/" may match at any depth.
  return new RegExp(glob.startsWith('/') ? `^${re}$` : `(^|/)${re}$`);
}

/**
 * @param {Record<string, string>} options  `exclude`: comma-separated globs
 * @returns {import('nydus-ts/plugin').EntryStage}
 */
export default function pathFilter(options = {}) {
  const patterns = (options.exclude ?? '').split(',').map((s) => s.trim()).filter(Boolean).map(globToRegExp);
  return {
    name: 'path-filter',
    kind: 'entry',
    create() {
      return async function* (entries) {
        for await (const entry of entries) {
          const path = entry.node.path.toString('utf8');
          if (entry.parent && patterns.some((re) => re.test(path))) continue;
          yield entry;
        }
      };
    },
  };
}
