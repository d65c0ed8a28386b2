// THE one table of --type values: parsing, help text and dispatch all read it.
export interface Conversion {
  name: string;
  /** Other spellings upstream accepts. */
  aliases: string[];
  description: string;
  /** Which source reads SOURCE. */
  source: 'dir' | 'tar' | 'stargz';
  implemented: boolean;
  /** Upstream builds this type exactly as that one (same builder, same output). */
  sameAs?: string;
}

export const CONVERSIONS: readonly Conversion[] = [
  { name: 'dir-rafs', aliases: ['directory'], description: 'a directory into a RAFS filesystem and a data blob', source: 'dir', implemented: true },
  { name: 'tar-rafs', aliases: [], description: 'a tar stream into a RAFS filesystem and a data blob', source: 'tar', implemented: true },
  { name: 'targz-rafs', aliases: [], description: 'a tar.gz stream into a RAFS filesystem and a data blob', source: 'tar', implemented: true },
  { name: 'targz-ref', aliases: [], description: 'a tar.gz stream into a RAFS filesystem referencing it (zran)', source: 'tar', implemented: true },
  { name: 'tar-tarfs', aliases: [], description: 'a tar into a RAFS filesystem whose blob is the tar itself', source: 'tar', implemented: true },
  // An eStargz layer is a multi-member tar.gz: upstream reads it through its tarball builder,
  // the TOC entry skipped (tar-merge-export.md §1).
  { name: 'estargz-rafs', aliases: [], description: 'an eStargz layer into a RAFS filesystem and a data blob', source: 'tar', implemented: true },
  // Upstream builds it with targz-ref's zran builder over the eStargz blob (a multi-member gzip):
  // the TOC entry is skipped as above, the footer is an empty member, the blob id the blob's sha256.
  { name: 'estargz-ref', aliases: [], description: 'an eStargz layer into a RAFS filesystem referencing it (zran, as targz-ref)', source: 'tar', implemented: true, sameAs: 'targz-ref' },
  { name: 'estargztoc-ref', aliases: ['stargz_index'], description: 'an eStargz TOC (stargz.index.json, or the eStargz blob holding it) into a RAFS bootstrap whose chunks are the blob\'s gzip members', source: 'stargz', implemented: true },
];

export function conversionByName(name: string): Conversion | undefined {
  const c = CONVERSIONS.find((x) => x.name === name || x.aliases.includes(name));
  return c?.sameAs ? CONVERSIONS.find((x) => x.name === c.sameAs) : c;
}

export const CONVERSION_NAMES = CONVERSIONS.flatMap((c) => [c.name, ...c.aliases]);
