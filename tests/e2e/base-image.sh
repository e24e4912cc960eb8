#!/usr/bin/env bash
# A base image equivalent to python:3.11-slim-bookworm, made without any image registry:
# debootstrap (minbase) from the Debian mirror apt already uses, Debian's python3 + venv + pip,
# the machine's extra CA certificates (so pip inside `docker build` trusts the same proxy), as a
# tar of the root filesystem ready for `docker import`.
#   tests/e2e/base-image.sh            prints the tarball's path on its last stdout line
# Cached in $BASE_IMAGE_CACHE (default /var/cache/face-match-worker) under a name that hashes this
# script and the CA certificates: a second run costs nothing; a missing cache is rebuilt.
# Exit 3: not root, or no debootstrap (tests/e2e/install-docker.sh installs it).
set -euo pipefail
started=$(date +%s)
cache=${BASE_IMAGE_CACHE:-/var/cache/face-match-worker}
suite=bookworm

if [ "$(id -u)" != 0 ] || ! command -v debootstrap >/dev/null 2>&1; then
  echo "base image: needs root and debootstrap (apt-get install debootstrap)"
  exit 3
fi

# The mirror apt already uses (deb822 sources first, then sources.list).
mirror=$(
  { grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' || true
    grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' || true
  } | { grep -v -- '-security' || true; } | head -1
)
mirror=${mirror:-http://deb.debian.org/debian}

extra_certs=(/usr/local/share/ca-certificates/*)
[ -e "${extra_certs[0]}" ] || extra_certs=()
key=$({ cat "$0"; echo "$mirror"; [ ${#extra_certs[@]} -eq 0 ] || cat "${extra_certs[@]}"; } | sha256sum | cut -c1-16)
tarball="$cache/python-$suite-$key.tar"
if [ -s "$tarball" ]; then
  echo "base image: cached $tarball (0 s)" >&2
  echo "$tarball"
  exit 0
fi

mkdir -p "$cache"
work=$(mktemp -d "${TMPDIR:-/tmp}/base-image.XXXXXX")
rootfs="$work/rootfs"
cleanup() {
  for m in proc dev/pts dev; do umount -l "$rootfs/$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; exit 1; }
echo "base image: debootstrap $suite from $mirror in $(($(date +%s) - started)) s" >&2

cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
mount -t proc proc "$rootfs/proc"
if [ ${#extra_certs[@]} -gt 0 ]; then
  mkdir -p "$rootfs/usr/local/share/ca-certificates"
  cp "${extra_certs[@]}" "$rootfs/usr/local/share/ca-certificates/"
fi
chroot "$rootfs" /bin/sh -ec '
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    python3 python3-venv python3-pip ca-certificates netbase tzdata >/dev/null
  update-ca-certificates >/dev/null
  ln -sf python3 /usr/bin/python
  apt-get clean
  rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
' >"$work/chroot.log" 2>&1 || { tail -20 "$work/chroot.log" >&2; exit 1; }
umount -l "$rootfs/proc"
: >"$rootfs/etc/resolv.conf"

tar --numeric-owner -C "$rootfs" -cf "$tarball.partial" .
mv "$tarball.partial" "$tarball"
# Older tarballs of this cache (another script or CA version) are of no further use.
find "$cache" -maxdepth 1 -name "python-$suite-*.tar" ! -name "$(basename "$tarball")" -delete
echo "base image: $(du -m "$tarball" | cut -f1) MB in $(($(date +%s) - started)) s" >&2
echo "$tarball"
