#!/usr/bin/env bash
# Builds a Nydus (RAFS v6) image from examples/rootfs and shows what was made: the files, the
# check report, inspect's view, and, where the machine allows (root, EROFS), a kernel mount.
set -euo pipefail
cd "$(dirname "$0")/.."
out=examples/out
rm -rf "$out" && mkdir -p "$out/cache"
nydus() { node bin/nydus-image.js "$@"; }

echo "== nydus-image create: examples/rootfs -> $out/bootstrap + $out/blob (zstd, blake3, 1 MiB chunks)"
nydus create -t dir-rafs -B "$out/bootstrap" -b "$out/blob" -J "$out/output.json" examples/rootfs
ls -l "$out/bootstrap" "$out/blob"
echo
echo "== nydus-image check (reads every chunk back and verifies its digest)"
nydus check "$out/bootstrap" -b "$out/blob"
echo
echo "== nydus-image inspect"
nydus inspect "$out/bootstrap"
echo
echo "== the same tree with --blob-cache-dir: uncompressed chunks the kernel can read as a block device"
nydus create --log-level warn -B "$out/cache.boot" --blob-cache-dir "$out/cache" examples/rootfs
ls -l "$out/cache"

if [ "$(id -u)" = 0 ] && grep -qw erofs /proc/filesystems && command -v losetup >/dev/null; then
  mnt=$(mktemp -d)
  loop=$(losetup --find --show --read-only "$out"/cache/*.blob.data)
  trap 'umount "$mnt" 2>/dev/null || true; losetup -d "$loop" 2>/dev/null || true; rmdir "$mnt"' EXIT
  mount -t erofs -o "ro,device=$loop" "$out/cache.boot" "$mnt"
  echo
  echo "== mounted by the Linux kernel (mount -t erofs -o ro,device=$loop): ls -lR"
  ls -lR "$mnt"
  echo
  echo "== contents equal the source: $(diff -r examples/rootfs "$mnt" >/dev/null && echo yes || echo NO)"
  sh "$mnt/usr/bin/hello"
else
  echo "(not root or no EROFS in this kernel: skipping the kernel mount)"
fi
