#!/usr/bin/env bash
# Builds the peer that `make bench-peer` measures imagegate against, once per
# version, into the tools cache, and writes its paths to $CACHE/peer-env.sh:
#
#   POLICY_CONTROLLER         sigstore policy-controller's webhook (cmd/webhook),
#                             built from the github.com/sigstore/policy-controller
#                             module at $POLICY_CONTROLLER_VERSION
#   POLICY_CONTROLLER_CONFIG  that module's config/ (CRDs, ConfigMaps, webhook
#                             configurations), applied by the benchmark
#
# The module carries replace directives, so `go install pkg@version` refuses
# it: its source is taken from the module cache (go mod download) and built
# in a temporary directory with its own go.mod and go.sum. About 270 modules;
# the first build takes several minutes on 2 cores.
set -euo pipefail

cache=${IMAGEGATE_TOOLS_CACHE:-$HOME/.cache/imagegate-tools}
version=${POLICY_CONTROLLER_VERSION:-v0.13.1}
go=${GO:-go}
dir=$cache/policy-controller-$version
bin=$dir/webhook

log() { echo "peer-tools: $*" >&2; }

mkdir -p "$cache"
if command -v flock >/dev/null; then
  exec 9>"$cache/.peer-lock"
  flock 9
fi

if [[ ! -x $bin ]]; then
  start=$SECONDS
  src=$("$go" mod download -json "github.com/sigstore/policy-controller@$version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  if [[ -z $src || ! -d $src ]]; then
    log "go mod download github.com/sigstore/policy-controller@$version gave no source directory"
    exit 1
  fi
  tmp=$(mktemp -d "$cache/.policy-controller-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  cp -R "$src/." "$tmp/src"
  chmod -R u+w "$tmp/src"
  log "go build policy-controller $version (cmd/webhook) ..."
  (cd "$tmp/src" && GOFLAGS=-buildvcs=false "$go" build -trimpath -ldflags='-s -w' -o "$tmp/webhook" ./cmd/webhook)
  mkdir -p "$dir"
  rm -rf "$dir/config"
  cp -R "$tmp/src/config" "$dir/config"
  mv -f "$tmp/webhook" "$bin"
  log "go build policy-controller $version: done in $((SECONDS - start))s"
else
  log "policy-controller $version: cached"
fi

{
  echo "# Written by scripts/peer-tools.sh; source it before make bench-peer's test."
  printf 'export POLICY_CONTROLLER=%q\n' "$bin"
  printf 'export POLICY_CONTROLLER_CONFIG=%q\n' "$dir/config"
  printf 'export POLICY_CONTROLLER_VERSION=%q\n' "$version"
} >"$cache/peer-env.sh.tmp"
mv -f "$cache/peer-env.sh.tmp" "$cache/peer-env.sh"
echo "policy-controller $version: $bin"
