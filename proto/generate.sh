#!/usr/bin/env bash
# Regenerates the Go code from the .proto files with pinned tool versions.
# Usage: proto/generate.sh          (writes the generated code)
#        proto/generate.sh --check  (fails if the committed code is stale)
set -euo pipefail
cd "$(dirname "$0")"
BUF_VERSION=v1.75.0
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
bin="$(go env GOPATH)/bin"
export PATH="$bin:$PATH"
need() { # tool module version
  if ! "$1" --version 2>/dev/null | grep -q "${3#v}"; then
    GOBIN="$bin" go install "$2@$3"
  fi
}
need buf github.com/bufbuild/buf/cmd/buf "$BUF_VERSION"
need protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
need protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"
buf lint
if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  buf generate --template '{"version":"v2","plugins":[{"local":"protoc-gen-go","out":"'"$tmp"'","opt":"module=github.com/yrd-exchange/yrdnode"},{"local":"protoc-gen-go-grpc","out":"'"$tmp"'","opt":"module=github.com/yrd-exchange/yrdnode"}]}'
  if ! diff -r "$tmp/proto" ../proto --exclude='*.proto' --exclude='*.yaml' --exclude='*.sh' --exclude='*.md' --exclude='doc.go' -q; then
    echo "generated code is stale: run proto/generate.sh and commit" >&2
    exit 1
  fi
  echo "generated code is current"
else
  buf generate
fi
