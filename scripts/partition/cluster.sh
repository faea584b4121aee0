#!/usr/bin/env bash
# A 3-node remise cluster (replication factor 3) in network namespaces rn0..rn2, each pair of nodes
# on a link of its own so that one link can be cut: the fault harness of scenario.ts. Needs root
# and iproute2. S3 of node I: http://10.1.I.2:3900 (from the root namespace); key in DIR/key.json.
#
#   cluster.sh up DIR          build the network, start the nodes, create a key and bucket "bkt"
#   cluster.sh cut I J [END]   take the link between nodes I < J down: at both ends, or at END only
#                              (the other end then sends into a blackhole)
#   cluster.sh heal I J        bring the link back
#   cluster.sh down            stop every process in the namespaces and remove them
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
command -v deno >/dev/null || PATH="$ROOT/.tools/node_modules/deno:$PATH" # where `make deno` puts it
remise() { deno run --unstable-kv -A "$ROOT/main.ts" "$@"; }
in_ns() { local i=$1; shift; ip netns exec "rn$i" env PATH="$PATH" NO_COLOR=1 "$@"; }
node_cli() { local dir=$1 i=$2; shift 2; in_ns "$i" deno run --unstable-kv -A "$ROOT/main.ts" -c "$dir/n$i/remise.toml" "$@"; }
# The link between nodes i < j: mIJa in rn$i (10.2.IJ.1), mIJb in rn$j (10.2.IJ.2).
route_peers() { local i=$1 j=$2; ip -n "rn$i" route replace "10.0.0.$((j + 1))/32" via "10.2.$i$j.2"; ip -n "rn$j" route replace "10.0.0.$((i + 1))/32" via "10.2.$i$j.1"; }

network_up() {
  for i in 0 1 2; do
    ip netns add "rn$i"
    ip -n "rn$i" link set lo up
    ip -n "rn$i" addr add "10.0.0.$((i + 1))/32" dev lo # the node's RPC address
    ip link add "h$i" type veth peer name "c$i"         # root namespace <-> node, for S3 clients
    ip link set "c$i" netns "rn$i"
    ip addr add "10.1.$i.1/24" dev "h$i" && ip link set "h$i" up
    ip -n "rn$i" addr add "10.1.$i.2/24" dev "c$i" && ip -n "rn$i" link set "c$i" up
  done
  for pair in "0 1" "0 2" "1 2"; do
    read -r i j <<<"$pair"
    ip link add "m$i${j}a" type veth peer name "m$i${j}b"
    ip link set "m$i${j}a" netns "rn$i" && ip link set "m$i${j}b" netns "rn$j"
    ip -n "rn$i" addr add "10.2.$i$j.1/24" dev "m$i${j}a" && ip -n "rn$i" link set "m$i${j}a" up
    ip -n "rn$j" addr add "10.2.$i$j.2/24" dev "m$i${j}b" && ip -n "rn$j" link set "m$i${j}b" up
    route_peers "$i" "$j"
  done
}

start_node() {
  local dir=$1 i=$2
  # Not through in_ns: $! must be the node's pid (ip and env exec it).
  ip netns exec "rn$i" env PATH="$PATH" deno run --unstable-kv -A "$ROOT/main.ts" server \
    -c "$dir/n$i/remise.toml" >>"$dir/n$i.log" 2>&1 &
  echo $! >"$dir/n$i.pid"
  for _ in $(seq 1 150); do
    curl -sf "http://10.1.$i.2:3903/health" >/dev/null && return 0
    sleep 0.2
  done
  echo "node $i did not start: see $dir/n$i.log" >&2 && return 1
}

up() {
  local dir=$1
  mkdir -p "$dir" && dir=$(cd "$dir" && pwd)
  network_up
  remise cert ca --out "$dir/ca" >/dev/null
  for i in 0 1 2; do
    remise cert node --ca "$dir/ca" --name "node$i" --host "10.0.0.$((i + 1))" --out "$dir/n$i" >/dev/null
    local peers=""
    for j in 0 1 2; do [ "$j" != "$i" ] && peers="$peers\"10.0.0.$((j + 1)):3901\","; done
    cat >"$dir/n$i/remise.toml" <<TOML
metadata_dir = "$dir/n$i/meta"
data_dir = "$dir/n$i/data"
replication_factor = 3
rpc_bind_addr = "0.0.0.0:3901"
rpc_public_addr = "10.0.0.$((i + 1)):3901"
bootstrap_peers = [${peers%,}]
ca_cert = "$dir/ca/ca.crt"
node_cert = "$dir/n$i/node.crt"
node_key = "$dir/n$i/node.key"
api_bind_addr = "0.0.0.0:3900"
admin_bind_addr = "0.0.0.0:3903"
admin_token = "partition-harness-admin-token"
TOML
    start_node "$dir" "$i"
  done
  for _ in $(seq 1 60); do
    [ "$(node_cli "$dir" 0 status | grep -c " up ")" = 3 ] && break
    sleep 1
  done
  for i in 0 1 2; do
    node_cli "$dir" 0 layout assign "$(node_cli "$dir" "$i" node id)" -z "site$i" -c 10G >/dev/null
  done
  node_cli "$dir" 0 layout apply --version 1 >/dev/null
  node_cli "$dir" 0 key create harness --json >"$dir/key.json"
  node_cli "$dir" 0 bucket create bkt >/dev/null
  node_cli "$dir" 0 bucket allow --read --write --owner bkt --key "$(grep -o 'GK[0-9a-f]*' "$dir/key.json")" >/dev/null
  echo "cluster up in $dir: S3 at http://10.1.{0,1,2}.2:3900, bucket bkt, key in $dir/key.json"
}

down() {
  # Every process in the namespaces, the nodes and whatever a test started there.
  for i in 0 1 2; do ip netns pids "rn$i" 2>/dev/null | xargs -r kill 2>/dev/null || true; done
  sleep 2
  for i in 0 1 2; do ip netns del "rn$i" 2>/dev/null || true; done
}

cut_link() {
  local i=$1 j=$2 end=${3:-both}
  [ "$end" != "$j" ] && ip -n "rn$i" link set "m$i${j}a" down
  [ "$end" != "$i" ] && ip -n "rn$j" link set "m$i${j}b" down
  true
}

heal_link() {
  local i=$1 j=$2
  ip -n "rn$i" link set "m$i${j}a" up && ip -n "rn$j" link set "m$i${j}b" up
  route_peers "$i" "$j" # a link taken down loses its routes
}

case "${1:-}" in
up) up "$2" ;;
down) down ;;
cut) cut_link "$2" "$3" "${4:-both}" ;;
heal) heal_link "$2" "$3" ;;
*) sed -n '2,10p' "$0" && exit 2 ;;
esac
