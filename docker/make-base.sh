#!/usr/bin/env bash
# Build the CPU base image from Debian packages alone (no container registry needed):
# debootstrap a minimal bookworm root with Python 3.11 + venv, then `podman import` it.
#   docker/make-base.sh IMAGE [MIRROR]
# Needs root, debootstrap, and podman (or docker). GPU images use a CUDA PyTorch base instead.
set -euo pipefail

image=${1:?usage: make-base.sh IMAGE [MIRROR]}
mirror=${2:-http://deb.debian.org/debian}
engine=${CONTAINER_ENGINE:-podman}
command -v debootstrap >/dev/null || { echo "make-base.sh: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "make-base.sh: debootstrap needs root" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/editfleet-base.XXXXXX")
trap 'rm -rf "$work"' EXIT

# python3 in bookworm is 3.11: the same minor version the wheelhouse is built for on the host.
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$work/root" "$mirror"

# Nothing the services need at run time: apt caches, docs, man pages, locales.
chroot "$work/root" apt-get clean
rm -rf "$work/root"/var/lib/apt/lists/* "$work/root"/var/cache/apt/* \
       "$work/root"/usr/share/{doc,man,info,locale}/* "$work/root"/var/log/*.log
echo "bookworm-minbase python3 $(chroot "$work/root" python3 -V | cut -d' ' -f2) built $(date -u +%F)" \
    > "$work/root/etc/editfleet-base"

tar -C "$work/root" --numeric-owner -c . \
    | "$engine" import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$image"
echo "base image: $image"
