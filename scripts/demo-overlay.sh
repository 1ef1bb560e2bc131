#!/usr/bin/env bash
# The node part of `npm run demo` (root only): a 3-node vxlan overlay in throwaway network namespaces.
#
#   switch (br0) ── etcd 192.0.2.250 ── node1 192.0.2.1 ─ pod1   node2 .2 ─ pod2   node3 .3 ─ pod3
#
# Each node runs `flannelctl node apply --iface veth0 --bridge cni0` against the etcd in its own namespace; each pod
# gets an address from its node's subnet. Then: verify on every node, pod-to-pod pings across nodes, subnets list.
# Everything this script creates (namespaces, etcd, temp files) is removed on exit, also on failure or Ctrl-C.
# Nothing is added to the host's own network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."

id="fd$$"
ETCD_NS="$id-etcd" SW_NS="$id-sw"
ENDPOINT=http://192.0.2.250:2379 PREFIX=/demo/network
work=$(mktemp -d /tmp/flannelctl-demo.XXXXXX)
etcd_pid=""

cleanup() {
  set +e
  [ -n "$etcd_pid" ] && kill "$etcd_pid" 2>/dev/null && wait "$etcd_pid" 2>/dev/null
  for ns in $(ip netns list | awk '{print $1}' | grep "^$id-"); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del "$ns"
  done
  rm -rf "$work"
  echo "Demo overlay removed (namespaces $id-*, etcd, $work)."
}
trap cleanup EXIT INT TERM

inns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
fctl_in() { local ns=$1; shift; echo "[$ns] \$ flannelctl $*"; inns "$ns" node bin/run.js "$@" --endpoints $ENDPOINT --prefix $PREFIX; }

plug() { # plug NS IFNAME ADDRESS: a veth from NS into the switch bridge
  local ns=$1 ifname=$2 addr=$3 peer="p$RANDOM$RANDOM"
  ip link add "$ifname" netns "$ns" type veth peer name "$peer" netns "$SW_NS"
  inns "$SW_NS" ip link set "$peer" master br0 up
  inns "$ns" ip addr add "$addr" dev "$ifname"
  inns "$ns" ip link set "$ifname" up
  inns "$ns" ip link set lo up
}

echo "== Building the demo overlay (namespaces $id-*) =="
ip netns add "$SW_NS"
inns "$SW_NS" ip link add br0 type bridge
inns "$SW_NS" ip link set br0 up
ip netns add "$ETCD_NS"
plug "$ETCD_NS" eth0 192.0.2.250/24
inns "$ETCD_NS" etcd --name demo --data-dir "$work/etcd" --listen-client-urls $ENDPOINT --advertise-client-urls $ENDPOINT \
  --listen-peer-urls http://192.0.2.250:2380 --initial-advertise-peer-urls http://192.0.2.250:2380 \
  --initial-cluster demo=http://192.0.2.250:2380 --log-level error --logger zap >"$work/etcd.log" 2>&1 &
etcd_pid=$!
for _ in $(seq 1 100); do
  inns "$ETCD_NS" env ETCDCTL_API=3 etcdctl --endpoints=$ENDPOINT endpoint health --command-timeout=1s >/dev/null 2>&1 && break
  sleep 0.2
done

for i in 1 2 3; do
  ip netns add "$id-node$i"
  plug "$id-node$i" veth0 "192.0.2.$i/24"
  inns "$id-node$i" sysctl -qw net.ipv4.ip_forward=1
done
echo
fctl_in "$id-node1" network create --network 10.1.0.0/16 --backend vxlan
echo

declare -A subnet
for i in 1 2 3 1 2; do # nodes 1 and 2 apply again to learn the nodes that joined after them
  echo "[$id-node$i] \$ flannelctl node apply --iface veth0 --bridge cni0"
  out=$(inns "$id-node$i" node bin/run.js node apply --endpoints $ENDPOINT --prefix $PREFIX --iface veth0 --bridge cni0 \
    --subnet-file "$work/node$i.env" -o json)
  subnet[$i]=$(node -e 'const s=JSON.parse(process.argv[1]); console.log(s.lease.subnet)' "$out")
  node -e 'const s=JSON.parse(process.argv[1]); console.log(`  lease ${s.lease.subnet} (${s.lease.action}), device ${s.device?.name ?? "-"}, entries +${s.entries.added} ~${s.entries.changed} -${s.entries.removed}`)' "$out"
done
echo

for i in 1 2 3; do # a pod behind each node's cni0, as a CNI bridge plugin would attach it: overlay MTU, .2, via .1
  pod="$id-pod$i" base=${subnet[$i]%.0/*}
  mtu=$(sed -n 's/^FLANNEL_MTU=//p' "$work/node$i.env")
  ip netns add "$pod"
  ip link add eth0 mtu "$mtu" netns "$pod" type veth peer name "vp$i" mtu "$mtu" netns "$id-node$i"
  inns "$id-node$i" ip link set "vp$i" master cni0 up
  inns "$pod" ip addr add "$base.2/${subnet[$i]#*/}" dev eth0
  inns "$pod" ip link set eth0 up
  inns "$pod" ip link set lo up
  inns "$pod" ip route add default via "$base.1"
done

for i in 1 2 3; do fctl_in "$id-node$i" node verify --iface veth0 --bridge cni0 --subnet-file "$work/node$i.env" | tail -n 2; done
echo
for target in 2 3; do
  base=${subnet[$target]%.0/*}
  echo "[$id-pod1] \$ ping -c 2 $base.2   (pod on node$target, across the vxlan overlay)"
  inns "$id-pod1" ping -c 2 -W 2 -i 0.3 "$base.2" | tail -n 2
done
echo
fctl_in "$id-node1" subnets list
