#!/bin/sh
# A base image for machines that reach no image registry: Debian 12 (minbase) with CPython 3.11 and its venv
# module, made by debootstrap from a Debian mirror and imported into podman. The Dockerfile's PYTHON_IMAGE.
#
#   deploy/podman/base-image.sh IMAGE MIRROR      e.g. localhost/muongan-base:bookworm http://deb.debian.org/debian
#
# Kept once made: debootstrap takes minutes on two cores, and every build on top of it reuses its layers.
# `podman rmi IMAGE` (or `make image-clean`) makes the next build start from a fresh one.
set -eu
image=$1
mirror=$2

if podman image exists "$image"; then
    echo "$image: present"
    exit 0
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates bookworm "$root" "$mirror"
# Package caches and indexes are rebuilt by `apt-get update` in any image that installs packages.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | podman import --change 'CMD ["python3"]' - "$image"
