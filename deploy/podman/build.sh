#!/bin/sh
# `podman build ... -t IMAGE`, then the image IMAGE named before, if the build replaced it, is removed.
#
#   deploy/podman/build.sh IMAGE [podman build arguments...]
#
# Layers stay cached between builds (the point of building on the same machine), but each code edit would
# otherwise leave the previous image behind, untagged: for the GPU image gigabytes a build. Removing it frees
# only its own layers; those a newer image or the build cache still uses stay.
set -eu
image=$1
shift
before=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
podman build "$@" -t "$image"
after=$(podman image inspect --format '{{.Id}}' "$image")
if [ -n "$before" ] && [ "$before" != "$after" ]; then
    podman rmi "$before" >/dev/null 2>&1 || true
fi
