#!/bin/sh
# Builds the yrdnode binary the one way it is built for deployment: the
# Dockerfile runs this script, and CI (.ci/run) runs it too, so the image's
# command and flags cannot drift from what CI builds.
#
#   deploy/build.sh [OUT]   (default: yrdnode; a relative OUT is taken from the repository root)
#
# VERSION, COMMIT and DATE, if set, are stamped into the binary (what
# `yrdnode version` prints). The build does not ask git (-buildvcs=false):
# an image's build context has no repository, and a build that depends on
# where it runs would differ between the image and CI.
# CGO is on: the embedded DuckDB is C++ and links against glibc's
# libstdc++, so the binary runs on a glibc system (Debian), not on musl.
set -eu
cd "$(dirname "$0")/.."
out=${1:-yrdnode}
CGO_ENABLED=1 go build -trimpath -buildvcs=false \
  -ldflags "-s -w -X main.version=${VERSION:-} -X main.commit=${COMMIT:-} -X main.date=${DATE:-}" \
  -o "$out" ./cmd/yrdnode
