#!/usr/bin/env bash
# imagegate and sigstore policy-controller side by side through one
# kube-apiserver (make bench-peer; not part of make test): builds or reuses
# the e2e tools and the peer (scripts/e2e-tools.sh, scripts/peer-tools.sh),
# then runs TestPeerPolicyController once per registry latency in
# PEER_REGISTRY_DELAYS (default "0s 20ms"), each on a fresh API server.
# Tables go to $PEER_OUT_DIR (default bench-peer-out/) and to the output.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${IMAGEGATE_TOOLS_CACHE:-$HOME/.cache/imagegate-tools}
out_dir=${PEER_OUT_DIR:-$repo/bench-peer-out}

bash "$repo/scripts/e2e-tools.sh"
bash "$repo/scripts/peer-tools.sh"
# shellcheck source=/dev/null
source "$cache/env.sh"
# shellcheck source=/dev/null
source "$cache/peer-env.sh"
export KUBE_APISERVER ETCD REGISTRY COSIGN POLICY_CONTROLLER POLICY_CONTROLLER_CONFIG POLICY_CONTROLLER_VERSION

mkdir -p "$out_dir"
cd "$repo/test/e2e"
for delay in ${PEER_REGISTRY_DELAYS:-0s 20ms}; do
  out=$out_dir/peer-$delay.md
  IMAGEGATE_E2E=1 IMAGEGATE_E2E_PEER=1 PEER_REGISTRY_DELAY=$delay PEER_OUT=$out \
    go test -count=1 -timeout 60m -v -run '^TestPeerPolicyController$' . | grep -v '^ *{"'
  echo "== $out (load: $(cut -d' ' -f1-3 /proc/loadavg))"
  cat "$out"
done
