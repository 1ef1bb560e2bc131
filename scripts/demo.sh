#!/usr/bin/env bash
# `npm run demo`: flannelctl end to end on this machine.
#  1. installs what is missing, builds;
#  2. uses the etcd answering on 127.0.0.1:2379, or starts a local one (left running for you to explore);
#  3. creates the example network 10.1.0.0/16 (vxlan) under /lab/network, shows it, acquires leases, lists them;
#  4. as root: builds a 3-node overlay in throwaway network namespaces, applies, verifies, pings across nodes,
#     and removes everything it created (see scripts/demo-overlay.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-deps.sh
[ -f native/build/Release/flannel_udp.node ] || npm run --silent build:native
npm run --silent build

ENDPOINT=http://127.0.0.1:2379
export FLANNELCTL_ENDPOINTS=$ENDPOINT FLANNELCTL_PREFIX=/lab/network
fctl() { echo "\$ flannelctl $*"; node bin/run.js "$@"; echo; }

if ! ETCDCTL_API=3 etcdctl --endpoints=$ENDPOINT endpoint health --command-timeout=1s >/dev/null 2>&1; then
  data=/tmp/flannelctl-demo-etcd
  echo "No etcd answers on $ENDPOINT: starting one (data in $data, log in $data.log)."
  mkdir -p "$data"
  nohup etcd --name flannelctl-demo --data-dir "$data" --listen-client-urls $ENDPOINT --advertise-client-urls $ENDPOINT \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster flannelctl-demo=http://127.0.0.1:2380 >"$data.log" 2>&1 </dev/null &
  echo "  (stop it later with: kill $!)"
  for _ in $(seq 1 50); do
    ETCDCTL_API=3 etcdctl --endpoints=$ENDPOINT endpoint health --command-timeout=1s >/dev/null 2>&1 && break
    sleep 0.2
  done
fi
echo

if node bin/run.js network get >/dev/null 2>&1; then
  echo "A network config already exists under /lab/network; showing it."
else
  fctl network create --network 10.1.0.0/16 --backend vxlan
fi
fctl network get
fctl network validate - -o json <<<'{"Network":"10.1.0.0/16","Backend":{"Type":"vxlan"}}'
if node bin/run.js subnets acquire --help >/dev/null 2>&1; then
  fctl subnets acquire --public-ip 192.0.2.11 --backend-data '{"VNI":1,"VtepMAC":"0e:00:00:00:00:11"}'
  fctl subnets acquire --public-ip 192.0.2.12 --backend-data '{"VNI":1,"VtepMAC":"0e:00:00:00:00:12"}'
fi
fctl subnets list
if [ -x scripts/demo-overlay.sh ]; then
  if [ "$(id -u)" -eq 0 ]; then
    bash scripts/demo-overlay.sh
  else
    echo "Skipping the node overlay part of the demo: it needs root (network namespaces)."
  fi
fi
