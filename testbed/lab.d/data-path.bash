# testbed/lab.d/data-path.bash: the Service data path of `testbed/lab up --data-path` (sourced by testbed/lab,
# whose variables and helpers it uses: kube-proxy in every node namespace, the Pod agent, Pod CIDR routes).

# kube-proxy's mode: nftables where the kernel (>= 5.13, kube-proxy's own minimum) and `nft` allow it,
# iptables otherwise.
proxy_mode() {
  local v major minor
  v="$(uname -r)"; major="${v%%.*}"; minor="${v#*.}"; minor="${minor%%.*}"
  if command -v nft >/dev/null && { [ "$major" -gt 5 ] || { [ "$major" = 5 ] && [ "$minor" -ge 13 ]; }; }; then
    echo nftables
  elif command -v iptables-restore >/dev/null; then
    echo iptables
  else
    die "kube-proxy needs nft (kernel >= 5.13) or iptables-restore (run testbed/lab deps)"
  fi
}

# The Service data path (--data-path): Pod CIDRs routed between the nodes, kube-proxy in every node, the Pod agent.
data_path_up() {
  local bin=$1 i j ns mode nodes_arg=()
  # FERROLB_LAB_PROXY_MODE (nftables or iptables) overrides the choice, to try the other mode.
  mode="${FERROLB_LAB_PROXY_MODE:-$(proxy_mode)}"
  PROXY_MODE=$mode
  for i in $(seq 1 "$NODES"); do
    ns="$(node_ns "$i")"
    nodes_arg+=("node-$i=$ns")
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
    for j in $(seq 1 "$NODES"); do
      [ "$i" = "$j" ] || ip -n "$ns" route add "$POD_CIDR_PREFIX.$j.0/24" via "$(node_ip4 "$j")"
    done
    # --conntrack-*=0: leave the (host-global) conntrack table size and timeouts alone; healthz and metrics on
    # the namespace's loopback.
    spawn "kube-proxy-$i" "$ns" "$bin/kube-proxy" --kubeconfig "$D/kube-proxy.kubeconfig" \
      --hostname-override "node-$i" --proxy-mode "$mode" --cluster-cidr "$POD_CIDR_PREFIX.0.0/17" \
      --nodeport-addresses primary \
      --conntrack-max-per-core 0 --conntrack-tcp-timeout-established 0 --conntrack-tcp-timeout-close-wait 0 \
      --healthz-bind-address 127.0.0.1:10256 --metrics-bind-address 127.0.0.1:10249 --v 1
  done
  # The agent runs in the host namespace (it creates namespaces); `down` stops it by pid before the rest.
  python3 "$TESTBED/podagent.py" "$LAB" "$D" "https://$2:$APISERVER_PORT" "${nodes_arg[@]}" \
    >"$D/logs/podagent.log" 2>&1 </dev/null &
  echo $! >"$D/host-pids"
  for i in $(seq 1 "$NODES"); do
    wait_for 60 "kube-proxy in node-$i" ip netns exec "$(node_ns "$i")" curl -sf --max-time 1 \
      http://127.0.0.1:10256/healthz
  done
}
