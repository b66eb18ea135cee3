#!/usr/bin/env bash
# Installs what the web console's build and browser test need, and writes
# their paths to $CACHE/console-env.sh:
#
#   CONSOLE_NODE_MODULES  console/web's npm packages at the versions its
#                         package-lock.json pins (esbuild, uPlot), installed
#                         with `npm ci` into $CACHE/console-npm-<lock hash>/:
#                         a new lock gets a new directory, an old one is reused
#   NODE                  node (Debian packages nodejs and npm when missing)
#   CHROMIUM              Debian's chromium (apt-get when missing), which the
#                         browser test (test/console) drives headless
#
# CACHE is ${IMAGEGATE_TOOLS_CACHE:-$HOME/.cache/imagegate-tools}, as for
# scripts/e2e-tools.sh. Nothing is downloaded but npm and Debian packages.
# With --no-browser chromium is not installed (building the assets needs
# only node).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${IMAGEGATE_TOOLS_CACHE:-$HOME/.cache/imagegate-tools}
browser=1
[[ ${1:-} == --no-browser ]] && browser=0
mkdir -p "$cache"
if command -v flock >/dev/null; then
  exec 9>"$cache/.console-lock"
  flock 9
fi
log() { echo "console-tools: $*" >&2; }

apt_missing=()
command -v node >/dev/null || apt_missing+=(nodejs)
command -v npm >/dev/null || apt_missing+=(npm)
chromium=$(command -v chromium || command -v chromium-browser || true)
if ((browser)) && [[ -z $chromium ]]; then apt_missing+=(chromium); fi
if ((${#apt_missing[@]})); then
  log "apt-get install ${apt_missing[*]} ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >&2
  chromium=$(command -v chromium || command -v chromium-browser || true)
fi

lock=$repo/console/web/package-lock.json
hash=$(sha256sum "$lock" | cut -c1-16)
dir=$cache/console-npm-$hash
if [[ ! -x $dir/node_modules/.bin/esbuild ]]; then
  log "npm ci (console/web, lock $hash) ..."
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  cp "$repo/console/web/package.json" "$lock" "$dir.tmp/"
  (cd "$dir.tmp" && npm ci --no-audit --no-fund --loglevel=error >&2)
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
fi

{
  echo "export CONSOLE_NODE_MODULES=$dir/node_modules"
  echo "export NODE=$(command -v node)"
  if [[ -n $chromium ]]; then echo "export CHROMIUM=$chromium"; fi
} >"$cache/console-env.sh"
log "ready: $cache/console-env.sh"
