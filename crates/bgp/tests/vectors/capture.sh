#!/bin/bash
# Capture BGP messages between FRR bgpd (AS 4200000001) and GoBGP (AS 65002) for the hex
# vectors in tests/vectors_*.rs. Throw-away namespaces wire-cap-r (FRR) and wire-cap-g (GoBGP),
# one veth link 198.19.250.0/30 + 2001:db8:ff::/64; tshark records tcp/179 on GoBGP's side.
# Usage: capture.sh OUT.pcap [two-octet]   ("two-octet": FRR sends no capabilities at all, so
# it speaks as a 2-octet-AS speaker and must use AS_TRANS + AS4_PATH).
# Everything started is recorded by pid / name and removed on exit.
set -euo pipefail
OUT=${1:?pcap path}
MODE=${2:-normal}
R=wire-cap-r; G=wire-cap-g; NAME=wirecap
WORK=$(mktemp -d /tmp/wire-cap.XXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for ns in $R $G; do
    for p in $(ip netns pids $ns 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  done
  sleep 0.5
  for ns in $R $G; do ip netns del $ns 2>/dev/null || true; done
  rm -rf "/etc/frr/$NAME" "/var/run/frr/$NAME" "$WORK"
}
trap cleanup EXIT
ip netns add $R; ip netns add $G
ip link add wcap-r type veth peer name wcap-g
ip link set wcap-r netns $R; ip link set wcap-g netns $G
ip -n $R addr add 198.19.250.1/30 dev wcap-r; ip -n $G addr add 198.19.250.2/30 dev wcap-g
ip -n $R addr add 2001:db8:ff::1/64 dev wcap-r nodad; ip -n $G addr add 2001:db8:ff::2/64 dev wcap-g nodad
for ns in $R $G; do ip -n $ns link set lo up; done
ip -n $R link set wcap-r up; ip -n $G link set wcap-g up

mkdir -p /etc/frr/$NAME /var/run/frr/$NAME
EXTRA=""
PEER_AS=4200000001
if [ "$MODE" = two-octet ]; then
  EXTRA=" neighbor 198.19.250.2 dont-capability-negotiate"
  PEER_AS=23456   # what a 2-octet speaker's OPEN says (GoBGP sends Bad Peer AS otherwise)
fi
cat > /etc/frr/$NAME/frr.conf <<CONF
frr defaults datacenter
hostname wirecap
router bgp 4200000001
 bgp router-id 198.19.250.1
 no bgp ebgp-requires-policy
 no bgp network import-check
 bgp graceful-restart
 neighbor 198.19.250.2 remote-as 65002
$EXTRA
 address-family ipv4 unicast
  network 198.51.100.0/24
  network 198.51.100.128/25
  neighbor 198.19.250.2 activate
 exit-address-family
 address-family ipv6 unicast
  network 2001:db8:5::/48
  neighbor 198.19.250.2 activate
 exit-address-family
CONF
touch /etc/frr/$NAME/vtysh.conf
chown -R frr:frr /etc/frr/$NAME /var/run/frr/$NAME
cat > $WORK/gobgp.toml <<CONF
[global.config]
  as = 65002
  router-id = "198.19.250.2"
  port = -1
[[neighbors]]
  [neighbors.config]
    neighbor-address = "198.19.250.1"
    peer-as = $PEER_AS
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = 120
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true
CONF
ip netns exec $G tshark -q -i wcap-g -f "tcp port 179" -w "$WORK/cap.pcap" >/dev/null 2>&1 &
PIDS+=($!)
sleep 2
ip netns exec $R /usr/lib/frr/zebra -N $NAME -d -f /etc/frr/$NAME/frr.conf
ip netns exec $R /usr/lib/frr/bgpd -N $NAME -d -f /etc/frr/$NAME/frr.conf
ip netns exec $G gobgpd -f $WORK/gobgp.toml --api-hosts 127.0.0.1:50771 >$WORK/gobgpd.log 2>&1 &
PIDS+=($!)
sleep 3
ip netns exec $G gobgp -p 50771 global rib add 203.0.113.0/25 nexthop 198.19.250.2 \
  community 65002:100,65002:200 large-community 65002:1:2 med 50 -a ipv4
ip netns exec $G gobgp -p 50771 global rib add 203.0.113.7/32 nexthop 198.19.250.2 -a ipv4
ip netns exec $G gobgp -p 50771 global rib add 2001:db8:7::/48 nexthop 2001:db8:ff::2 \
  community 65002:300 -a ipv6
for i in $(seq 1 30); do
  st=$(ip netns exec $G gobgp -p 50771 neighbor -j | grep -o '"session_state":[0-9]*' | head -1 || true)
  [ "$st" = '"session_state":6' ] && break
  sleep 1
done
echo "session: $st"
sleep 4
ip netns exec $G gobgp -p 50771 global rib del 203.0.113.7/32 -a ipv4
ip netns exec $G gobgp -p 50771 global rib del 2001:db8:7::/48 -a ipv6
sleep 2
ip netns exec $G gobgp -p 50771 neighbor 198.19.250.1 softresetout || true
sleep 2
vtysh -N $NAME -c "clear bgp ipv4 unicast 198.19.250.2 soft in" || true
sleep 2
ip netns exec $G gobgp -p 50771 neighbor 198.19.250.1 shutdown --reason "ferrolb vector capture" || true
sleep 3
kill "${PIDS[0]}"; sleep 1
cp "$WORK/cap.pcap" "$OUT"
echo "captured to $OUT"
