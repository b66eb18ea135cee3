#!/usr/bin/env bash
# Installs the tools of the end-to-end tests (test/e2e) and writes their
# paths to $CACHE/env.sh, which test/e2e/run.sh sources:
#
#   ETCD, REGISTRY   Debian packages etcd-server and docker-registry (apt-get,
#                    only when the binaries are missing)
#   PG_BINDIR        Debian package postgresql (apt-get, only when no
#                    /usr/lib/postgresql/<version>/bin/initdb is there): the
#                    shared-store tests run initdb and postgres from it
#   promtool         Debian package prometheus (apt-get, only when promtool is
#                    missing): checks and unit-tests the alerting rules
#   KUBE_APISERVER   built from the k8s.io/kubernetes module at the version
#                    test/tools/go.mod pins (about 8 minutes the first time)
#   COSIGN           the cosign v2 CLI, go installed at $COSIGN_VERSION
#   HELM             the helm v3 CLI, go installed at $HELM_VERSION
#
# CACHE is ${IMAGEGATE_TOOLS_CACHE:-$HOME/.cache/imagegate-tools}; builds go to
# $CACHE/<tool>-<version>/ and are reused, so running this again is quick.
# Nothing is downloaded but Go modules (through the Go module proxy) and
# Debian packages.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${IMAGEGATE_TOOLS_CACHE:-$HOME/.cache/imagegate-tools}
cosign_version=${COSIGN_VERSION:-v2.6.5}
kube_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3} $1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2}' "$repo/test/tools/go.mod" | head -n1)
if [[ -z $kube_version ]]; then
  echo "e2e-tools: no k8s.io/kubernetes version in test/tools/go.mod" >&2
  exit 1
fi
go=${GO:-go}
build_flags=(-trimpath -ldflags=-s\ -w)

mkdir -p "$cache"
# One installer at a time per cache directory.
if command -v flock >/dev/null; then
  exec 9>"$cache/.lock"
  flock 9
fi

log() { echo "e2e-tools: $*" >&2; }

# Runs "$@" and logs how long it took.
timed() {
  local what=$1 start=$SECONDS
  shift
  log "$what ..."
  "$@"
  log "$what: done in $((SECONDS - start))s"
}

# --- Debian packages: etcd and the distribution registry -------------------
apt_missing=()
command -v etcd >/dev/null || apt_missing+=(etcd-server)
command -v docker-registry >/dev/null || apt_missing+=(docker-registry)
# initdb is not on PATH in Debian's layout: look where the package puts it.
pg_bindir() {
  local d best=
  for d in /usr/lib/postgresql/*/bin; do
    if [[ -x $d/initdb ]]; then best=$d; fi
  done
  echo "$best"
}
[[ -n $(pg_bindir) ]] || apt_missing+=(postgresql)
command -v promtool >/dev/null || apt_missing+=(prometheus)
if ((${#apt_missing[@]})); then
  as_root() {
    if [[ $(id -u) == 0 ]]; then
      "$@"
    elif command -v sudo >/dev/null; then
      sudo "$@"
    else
      log "need root or sudo to run: $*"
      exit 1
    fi
  }
  start=$SECONDS
  log "apt-get install ${apt_missing[*]} ..."
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
  log "apt-get install ${apt_missing[*]}: done in $((SECONDS - start))s"
  # The packages install services; the tests start their own processes.
  if command -v systemctl >/dev/null; then
    for svc in etcd docker-registry postgresql prometheus; do
      if systemctl is-active --quiet "$svc" 2>/dev/null; then
        as_root systemctl disable --now "$svc" >/dev/null 2>&1 || true
      fi
    done
  fi
fi
etcd_bin=$(command -v etcd)
registry_bin=$(command -v docker-registry)
pg_bin=$(pg_bindir)
# initdb and postgres refuse root; the tests run them as this user.
if [[ $(id -u) == 0 ]] && ! id postgres >/dev/null 2>&1; then
  useradd --system --no-create-home --shell /usr/sbin/nologin postgres
fi

# --- kube-apiserver from k8s.io/kubernetes ----------------------------------
kube_dir=$cache/kube-apiserver-$kube_version
kube_bin=$kube_dir/kube-apiserver
if [[ ! -x $kube_bin ]]; then
  mkdir -p "$kube_dir"
  (
    cd "$repo/test/tools"
    # Stamp the version, as the release build does (/version, --version).
    minor=${kube_version#v1.}
    minor=${minor%%.*}
    v=k8s.io/component-base/version
    ldflags="-s -w -X $v.gitVersion=$kube_version -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
    timed "go build kube-apiserver $kube_version" \
      "$go" build -trimpath -ldflags="$ldflags" -o "$kube_bin.tmp" k8s.io/kubernetes/cmd/kube-apiserver
  )
  mv -f "$kube_bin.tmp" "$kube_bin"
else
  log "kube-apiserver $kube_version: cached"
fi

# go_install NAME VERSION PACKAGE BIN installs PACKAGE@VERSION as BIN unless
# BIN is there. It builds into a temporary directory, so an interrupted build
# leaves no half-written BIN to be taken for cached; go install pkg@version
# ignores any go.mod around it, so it runs from the cache.
go_install() {
  local name=$1 version=$2 pkg=$3 bin=$4
  if [[ -x $bin ]]; then
    log "$name $version: cached"
    return
  fi
  local tmp
  tmp=$(mktemp -d "$cache/.$name-XXXXXX")
  (
    trap 'rm -rf "$tmp"' EXIT
    cd "$cache"
    timed "go install $name $version" \
      env GOBIN="$tmp" "$go" install "${build_flags[@]}" "$pkg@$version"
    mkdir -p "$(dirname "$bin")"
    mv -f "$tmp/$(basename "$pkg")" "$bin"
  )
}

# --- cosign v2 CLI ----------------------------------------------------------
cosign_bin=$cache/cosign-$cosign_version/cosign
go_install cosign "$cosign_version" github.com/sigstore/cosign/v2/cmd/cosign "$cosign_bin"

# --- helm v3 CLI (renders deploy/helm in TestDeployManifests) -----------------
helm_version=${HELM_VERSION:-v3.19.0}
helm_bin=$cache/helm-$helm_version/helm
go_install helm "$helm_version" helm.sh/helm/v3/cmd/helm "$helm_bin"

# --- env file ---------------------------------------------------------------
env_file=$cache/env.sh
{
  echo "# Written by scripts/e2e-tools.sh; source it before the end-to-end tests."
  printf 'export KUBE_APISERVER=%q\n' "$kube_bin"
  printf 'export ETCD=%q\n' "$etcd_bin"
  printf 'export REGISTRY=%q\n' "$registry_bin"
  printf 'export PG_BINDIR=%q\n' "$pg_bin"
  printf 'export COSIGN=%q\n' "$cosign_bin"
  # The root module's cosign conformance test (attestation/) runs when set.
  printf 'export IMAGEGATE_COSIGN=%q\n' "$cosign_bin"
  printf 'export HELM=%q\n' "$helm_bin"
} >"$env_file.tmp"
mv -f "$env_file.tmp" "$env_file"

echo "kube-apiserver $kube_version: $kube_bin"
echo "etcd $("$etcd_bin" --version 2>/dev/null | awk '/etcd Version/ {print $3}'): $etcd_bin"
echo "docker-registry $("$registry_bin" --version 2>/dev/null | awk '{print $3}'): $registry_bin"
echo "postgresql $("$pg_bin/postgres" --version 2>/dev/null | awk '{print $3}'): $pg_bin"
echo "cosign $cosign_version: $cosign_bin"
echo "helm $helm_version: $helm_bin"
echo "env file: $env_file"
