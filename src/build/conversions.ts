// THE one table of --type values: parsing, help text and dispatch all read it.
export interface Conversion {
  name: string;
  /** Other spellings upstream accepts. */
  aliases: string[];
  description: string;
  /** Which source reads SOURCE. */
  source: 'dir' | 'tar' | 'stargz';
  implemented: boolean;
}

export const CONVERSIONS: readonly Conversion[] = [
  { name: 'dir-rafs', aliases: ['directory'], description: 'a directory into a RAFS filesystem and a data blob', source: 'dir', implemented: true },
  { name: 'tar-rafs', aliases: [], description: 'a tar stream into a RAFS filesystem and a data blob', source: 'tar', implemented: true },
  { name: 'targz-rafs', aliases: [], description: 'a tar.gz stream into a RAFS filesystem and a data blob', source: 'tar', implemented: true },
  { name: 'targz-ref', aliases: [], description: 'a tar.gz stream into a RAFS filesystem referencing it (zran)', source: 'tar', implemented: true },
  { name: 'tar-tarfs', aliases: [], description: 'a tar into a RAFS filesystem whose blob is the tar itself', source: 'tar', implemented: true },
  { name: 'estargz-rafs', aliases: [], description: 'an eStargz layer into a RAFS filesystem and a data blob', source: 'tar', implemented: false },
  { name: 'estargz-ref', aliases: [], description: 'an eStargz layer into a RAFS filesystem referencing it', source: 'tar', implemented: false },
  { name: 'estargztoc-ref', aliases: ['stargz_index'], description: 'an eStargz TOC index into a RAFS filesystem', source: 'stargz', implemented: false },
];

export function conversionByName(name: string): Conversion | undefined {
  return CONVERSIONS.find((c) => c.name === name || c.aliases.includes(name));
}

export const CONVERSION_NAMES = CONVERSIONS.flatMap((c) => [c.name, ...c.aliases]);
