#!/usr/bin/env bash
# Benchmark: TCP throughput (iperf3) and ping RTT between two instances through the fabric,
# beside the same between two namespaces through a kernel router namespace, in one run.
# Usage: sudo scripts/bench.sh [SECONDS]   (default 5 s per iperf3 run)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
vpclab=target/release/vpclab
[ -x "$vpclab" ] || cargo build --release --locked

k="vlbench$$"
cleanup() {
    $vpclab down bench >/dev/null 2>&1 || true
    for n in a r b; do ip netns del "$k-$n" 2>/dev/null || true; done
}
trap cleanup EXIT

# iperf3 receiver bitrate in Gbit/s from its text summary.
gbits() { awk '/receiver/ { for (i = 1; i < NF; i++) if ($(i+1) ~ /bits\/sec/) { v=$i; u=$(i+1) } }
    END { if (u ~ /^G/) print v; else if (u ~ /^M/) print v/1000; else if (u ~ /^K/) print v/1e6; else print 0 }'; }
rtt() { awk -F'/' '/^rtt|^round-trip/ { print $5 }'; }

# --- through the fabric
$vpclab up scripts/bench-lab.yaml >/dev/null
$vpclab exec bb -- iperf3 -s -D -1 >/dev/null
sleep 0.3
fabric_tput=$($vpclab exec ba -- iperf3 -c 10.77.2.10 -t "$secs" -f g | gbits)
fabric_rtt=$($vpclab exec ba -- ping -q -c 50 -i 0.02 10.77.2.10 | rtt)
$vpclab down bench >/dev/null

# --- through a kernel router namespace: a <-veth-> r <-veth-> b
for n in a r b; do ip netns add "$k-$n"; ip -n "$k-$n" link set lo up; done
ip link add "${k}ar" type veth peer name "${k}ra"
ip link set "${k}ar" netns "$k-a" name eth0
ip link set "${k}ra" netns "$k-r" name ra
ip link add "${k}br" type veth peer name "${k}rb"
ip link set "${k}br" netns "$k-b" name eth0
ip link set "${k}rb" netns "$k-r" name rb
ip -n "$k-a" addr add 10.77.1.10/24 dev eth0; ip -n "$k-a" link set eth0 up mtu 9001
ip -n "$k-b" addr add 10.77.2.10/24 dev eth0; ip -n "$k-b" link set eth0 up mtu 9001
ip -n "$k-r" addr add 10.77.1.1/24 dev ra; ip -n "$k-r" link set ra up mtu 9001
ip -n "$k-r" addr add 10.77.2.1/24 dev rb; ip -n "$k-r" link set rb up mtu 9001
ip -n "$k-a" route add default via 10.77.1.1
ip -n "$k-b" route add default via 10.77.2.1
ip netns exec "$k-r" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$k-b" iperf3 -s -D -1 >/dev/null
sleep 0.3
kernel_tput=$(ip netns exec "$k-a" iperf3 -c 10.77.2.10 -t "$secs" -f g | gbits)
kernel_rtt=$(ip netns exec "$k-a" ping -q -c 50 -i 0.02 10.77.2.10 | rtt)

printf '%-28s %12s %12s %8s\n' "metric" "fabric" "kernel" "ratio"
printf '%-28s %12s %12s %8s\n' "TCP throughput (Gbit/s)" "$fabric_tput" "$kernel_tput" \
    "$(awk -v f="$fabric_tput" -v k="$kernel_tput" 'BEGIN { printf "%.2f", (k > 0 ? f / k : 0) }')"
printf '%-28s %12s %12s %8s\n' "ping RTT avg (ms)" "$fabric_rtt" "$kernel_rtt" \
    "$(awk -v f="$fabric_rtt" -v k="$kernel_rtt" 'BEGIN { printf "%.2f", (k > 0 ? f / k : 0) }')"
