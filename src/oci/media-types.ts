// The media types of images in a registry (spec oci-and-converters.md §1): the one table that
// the client's Accept headers, the manifest validation and the converters read.

export const MEDIA = {
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_CONFIG: 'application/vnd.oci.image.config.v1+json',
  OCI_LAYER_TAR: 'application/vnd.oci.image.layer.v1.tar',
  OCI_LAYER_GZIP: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCI_LAYER_ZSTD: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OCI_EMPTY: 'application/vnd.oci.empty.v1+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_MANIFEST_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_CONFIG: 'application/vnd.docker.container.image.v1+json',
  DOCKER_LAYER_GZIP: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DOCKER_LAYER_FOREIGN_GZIP: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  /** Schema 1 manifests are only recognised, to refuse them by name. */
  DOCKER_SCHEMA1: 'application/vnd.docker.distribution.manifest.v1+json',
  DOCKER_SCHEMA1_SIGNED: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  NYDUS_BLOB: 'application/vnd.oci.image.layer.nydus.blob.v1',
  /** The config media type of the nydus manifest in a --merge-platform index (spec §1.4). */
  NYDUS_CONFIG: 'application/vnd.nydus.image.config.v1+json',
  /** The artifactType of nydus entries in a --merge-platform index (spec §1.6). */
  NYDUS_ARTIFACT: 'application/vnd.nydus.image.manifest.v1+json',
} as const;

export type ManifestKind = 'manifest' | 'index';

/** Manifest media types this client reads, and what each one is. */
export const MANIFEST_TYPES: ReadonlyMap<string, ManifestKind> = new Map([
  [MEDIA.OCI_MANIFEST, 'manifest'],
  [MEDIA.DOCKER_MANIFEST, 'manifest'],
  [MEDIA.OCI_INDEX, 'index'],
  [MEDIA.DOCKER_MANIFEST_LIST, 'index'],
]);

/** The Accept header of every manifest GET and HEAD: OCI first, as containerd orders them. */
export const MANIFEST_ACCEPT = [MEDIA.OCI_MANIFEST, MEDIA.DOCKER_MANIFEST, MEDIA.OCI_INDEX, MEDIA.DOCKER_MANIFEST_LIST].join(', ');

/** True for the media types of indexes (OCI index, Docker manifest list). */
export const isIndexType = (mediaType: string): boolean => MANIFEST_TYPES.get(mediaType) === 'index';

/** True for the media types of single-platform manifests (OCI, Docker schema 2). */
export const isManifestType = (mediaType: string): boolean => MANIFEST_TYPES.get(mediaType) === 'manifest';
