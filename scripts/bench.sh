#!/usr/bin/env bash
# Benchmark (issue 6): the fabric beside the kernel, in one run on one machine, so that the
# ratios hold on a shared, noisy machine. For each path: iperf3 TCP with 1 and 4 streams, UDP
# with 64-byte datagrams (the rate the receiver gets, packets/s) and ping RTT (min, median,
# p99 of many pings, one every 5 ms).
#   fabric (scripts/bench-lab.yaml)            kernel reference (namespaces a, r, b, c)
#   vpc      ba -> bb, two subnets of a VPC    router  a -> r -> b   veth, ip_forward, MTU 9001
#   peering  ba -> bw, a peering connection    router  (same)
#   igw      ba -> inet, the IGW's 1:1 NAT     nat     a -> r -> c   + nftables masquerade,
#   natgw    bb -> inet, a NAT gateway + IGW   nat     (same)          far side MTU 1500
#   vpn      bs -> bb, a site through one VPN tunnel (wireguard-go in the site's router,
#            boringtun in the fabric), compared with the fabric's own vpc path, not the kernel
#   polled   ba -> bb again, the lab restarted with `--busy-poll` (one packet thread that keeps
#            polling for POLL_US after each packet instead of sleeping), beside the router
#            path measured again in the same turns (row router*)
# Both are up at once and measured in turns, test by test, so that both see the same moments of
# the machine. Each figure is the median of ROUNDS runs (RTT: percentiles of all the pings).
# Prints a table of figures and ratios (fabric / kernel) and writes it as JSON under
# target/bench/. Takes about ROUNDS x (21 x SECONDS + 25) s: 4 minutes by default.
# Usage: sudo scripts/bench.sh [SECONDS]   (default 3 s per iperf3 run; ROUNDS=3; PINGS=300 pings
#        per path and round; POLL_US=20000; VPCLAB=path/to/vpclab to bench a copy while the tree
#        is rebuilt)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
rounds=${ROUNDS:-3}
pings=${PINGS:-300}
poll_us=${POLL_US:-20000}
vpclab=${VPCLAB:-target/release/vpclab}
[ "$(id -u)" = 0 ] || { echo "bench: run as root (namespaces, TUN devices)" >&2; exit 1; }
for tool in iperf3 ping nft python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing (scripts/setup.sh installs it; nft: apt-get install nftables)" >&2; exit 1; }
done
[ -x "$vpclab" ] || cargo build --release --locked

k="vlb$$"
raw=$(mktemp -d)
cleanup() {
    for p in "$raw"/*.pid; do
        [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true
    done
    $vpclab down bench >/dev/null 2>&1 || true
    for n in a r b c; do ip netns del "$k-$n" 2>/dev/null || true; done
    rm -rf "$raw"
}
trap cleanup EXIT

load() { cut -d' ' -f1-3 /proc/loadavg; }
load_before=$(load)

# The paths: NAME "CLIENT COMMAND PREFIX" DESTINATION.
declare -A client dest
path() { client[$1]=$2; dest[$1]=$3; }
path router "ip netns exec $k-a" 10.77.2.10
path nat "ip netns exec $k-a" 198.51.100.10
path vpc "$vpclab exec ba --" 10.77.2.10
path peering "$vpclab exec ba --" 10.78.1.10
path igw "$vpclab exec ba --" 198.51.100.10
path natgw "$vpclab exec bb --" 198.51.100.10
path vpn "$vpclab exec bs --" 10.77.2.10
path polled "$vpclab exec ba --" 10.77.2.10
path router_again "ip netns exec $k-a" 10.77.2.10
order=(router vpc peering nat igw natgw vpn)

# run PATH TEST ROUND: one measurement, raw output in $raw/PATH.TEST.ROUND, bounded in time.
run() {
    local c=${client[$1]} d=${dest[$1]} out="$raw/$1.$2.$3" bound=$((secs + 20))
    case $2 in
        tcp1) timeout "$bound" $c iperf3 -c "$d" -t "$secs" -J >"$out" || true ;;
        tcp4) timeout "$bound" $c iperf3 -c "$d" -t "$secs" -P 4 -J >"$out" || true ;;
        udp) timeout "$bound" $c iperf3 -c "$d" -t "$secs" -u -l 64 -b 0 -J >"$out" || true ;;
        ping) timeout "$bound" $c ping -n -c "$pings" -i 0.005 "$d" >"$out" || true ;;
    esac
}

# --- the kernel: a <-veth-> r <-veth-> b, and r <-veth-> c (MTU 1500) behind masquerade
for n in a r b c; do ip netns add "$k-$n"; ip -n "$k-$n" link set lo up; done
leg() { # leg NS ROUTER_IF HOST_ADDR ROUTER_ADDR MTU
    ip link add "${k}x" type veth peer name "${k}y"
    ip link set "${k}x" netns "$k-$1" name eth0
    ip link set "${k}y" netns "$k-r" name "$2"
    ip -n "$k-$1" addr add "$3/24" dev eth0
    ip -n "$k-$1" link set eth0 up mtu "$5"
    ip -n "$k-r" addr add "$4/24" dev "$2"
    ip -n "$k-r" link set "$2" up mtu "$5"
    ip -n "$k-$1" route add default via "$4"
}
leg a ra 10.77.1.10 10.77.1.1 9001
leg b rb 10.77.2.10 10.77.2.1 9001
leg c rc 198.51.100.10 198.51.100.1 1500
ip netns exec "$k-r" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$k-r" nft -f - <<EOF
table ip nat {
    chain post { type nat hook postrouting priority 100; oifname "rc" masquerade; }
}
EOF

# --- the fabric, up beside it; an iperf3 server on each destination
$vpclab up scripts/bench-lab.yaml >/dev/null
i=0
for s in "ip netns exec $k-b" "ip netns exec $k-c" "$vpclab exec bb --" "$vpclab exec bw --" \
    "$vpclab exec inet --"; do
    $s iperf3 -s -D -I "$raw/server$i.pid" >/dev/null
    i=$((i + 1))
done
sleep 0.5
for round in $(seq "$rounds"); do
    for test in tcp1 tcp4 udp ping; do
        echo "bench: round $round/$rounds, $test" >&2
        for p in "${order[@]}"; do run "$p" "$test" "$round"; done
    done
done
$vpclab down bench >/dev/null

# --- the fabric again, busy polling: the same vpc path, beside the kernel router in turns
$vpclab up scripts/bench-lab.yaml --busy-poll "$poll_us" --packet-threads 1 >/dev/null
$vpclab exec bb -- iperf3 -s -D -I "$raw/server-polled.pid" >/dev/null
sleep 0.5
for round in $(seq "$rounds"); do
    for test in tcp1 tcp4 udp ping; do
        echo "bench: busy polling, round $round/$rounds, $test" >&2
        for p in router_again polled; do run "$p" "$test" "$round"; done
    done
done
$vpclab down bench >/dev/null

mkdir -p target/bench
out="target/bench/bench-$(date +%Y%m%d-%H%M%S).json"
RAW=$raw OUT=$out SECS=$secs ROUNDS=$rounds POLL_US=$poll_us LOAD_BEFORE=$load_before LOAD_AFTER=$(load) \
    COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo +dirty)" \
    python3 - <<'EOF'
import json, os, platform, re, statistics, time

raw, secs = os.environ["RAW"], float(os.environ["SECS"])
rounds = int(os.environ["ROUNDS"])

def one_iperf(path, udp):
    try:
        with open(path) as f:
            end = json.load(f).get("end", {})
    except (OSError, ValueError):
        return None, None
    if udp:
        got = end.get("sum_received") or end.get("sum") or {}
        seconds = got.get("seconds") or secs
        # Datagrams the receiver got per second (64 bytes each).
        return (got.get("bytes", 0) / 64 / seconds if seconds else None), None
    gbps = end.get("sum_received", {}).get("bits_per_second")
    return (gbps / 1e9 if gbps else None), end.get("sum_sent", {}).get("retransmits")

def iperf(name, test):
    """The median over the rounds, the retransmits of all rounds, and each round's figure."""
    runs = [one_iperf(f"{raw}/{name}.{test}.{r}", test == "udp") for r in range(1, rounds + 1)]
    values = [v for v, _ in runs if v is not None]
    retrans = [t for _, t in runs if t is not None]
    median = statistics.median(values) if values else None
    return median, (sum(retrans) if retrans else None), values

def rtt(name):
    times = []
    for r in range(1, rounds + 1):
        try:
            with open(f"{raw}/{name}.ping.{r}") as f:
                times += [float(t) * 1000 for t in re.findall(r"time=([\d.]+) ms", f.read())]
        except OSError:
            pass
    times.sort()
    if not times:
        return {"min": None, "median": None, "p99": None, "count": 0}
    p99 = times[min(len(times) - 1, int(round(0.99 * (len(times) - 1))))]
    return {"min": times[0], "median": statistics.median(times), "p99": p99, "count": len(times)}

paths = {}
for name in ["router", "nat", "vpc", "peering", "igw", "natgw", "vpn", "router_again", "polled"]:
    tcp1, re1, runs1 = iperf(name, "tcp1")
    tcp4, re4, runs4 = iperf(name, "tcp4")
    udp, _, runsu = iperf(name, "udp")
    paths[name] = {"tcp1_gbps": tcp1, "tcp1_retransmits": re1, "tcp4_gbps": tcp4,
                   "tcp4_retransmits": re4, "udp64_pps": udp, "rtt_us": rtt(name),
                   "runs": {"tcp1_gbps": runs1, "tcp4_gbps": runs4, "udp64_pps": runsu}}
# The VPN's reference is the fabric's plain path to the same server: what the tunnel costs.
reference = {"vpc": "router", "peering": "router", "igw": "nat", "natgw": "nat", "vpn": "vpc",
             "polled": "router_again"}
# Table names: the second measurement of the router path, beside the busy-polling lab.
shown = {"router_again": "router*", "polled": "polled"}

def ratio(a, b):
    return a / b if a is not None and b else None

ratios = {}
for name, ref in reference.items():
    f, k = paths[name], paths[ref]
    fm, km = f["rtt_us"]["median"], k["rtt_us"]["median"]
    ratios[name] = {"vs": ref,
                    "tcp1": ratio(f["tcp1_gbps"], k["tcp1_gbps"]),
                    "tcp4": ratio(f["tcp4_gbps"], k["tcp4_gbps"]),
                    "udp64": ratio(f["udp64_pps"], k["udp64_pps"]),
                    "added_median_rtt_us": (fm - km) if fm is not None and km is not None else None}

def show(v, fmt):
    return "-" if v is None else format(v, fmt)

print(f"bench: medians of {rounds} rounds of {secs:g} s per iperf3 run, load {os.environ['LOAD_BEFORE']} before, "
      f"{os.environ['LOAD_AFTER']} after (1, 5, 15 min)")
head = f"{'path':<9} {'vs':<7} {'TCP x1 Gb/s':>16} {'TCP x4 Gb/s':>16} {'UDP64 kpps':>16} " \
       f"{'RTT min/med/p99 us':>20} {'+med us':>8}"
print(head)
print("-" * len(head))
rows = ["router", "nat", "vpc", "peering", "igw", "natgw", "vpn", "router_again", "polled"]
for name in rows:
    p = paths[name]
    r = ratios.get(name, {})
    def cell(v, q, fmt):
        return show(v, fmt) + (f" ({show(q, '.2f')})" if name in reference else "")
    t = p["rtt_us"]
    print(f"{shown.get(name, name):<9} {shown.get(reference.get(name), reference.get(name, 'kernel')):<7} "
          f"{cell(p['tcp1_gbps'], r.get('tcp1'), '.2f'):>16} "
          f"{cell(p['tcp4_gbps'], r.get('tcp4'), '.2f'):>16} "
          f"{cell(p['udp64_pps'] and p['udp64_pps'] / 1e3, r.get('udp64'), '.0f'):>16} "
          f"{show(t['min'], '.0f') + '/' + show(t['median'], '.0f') + '/' + show(t['p99'], '.0f'):>20} "
          f"{show(r.get('added_median_rtt_us'), '.0f') if name in reference else '':>8}")
print("(ratio to the path in column vs in brackets; targets, to the kernel: TCP >= 0.80, UDP64 >= 0.50, "
      "+median RTT <= 30 us; vpn: what one tunnel costs beside the fabric's vpc path, no target)")
print(f"(polled: the vpc path with --busy-poll {os.environ['POLL_US']} --packet-threads 1, beside router*, the router path "
      "measured again in the same turns)")

report = {
    "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "commit": os.environ["COMMIT"],
    "kernel": platform.release(),
    "cpus": os.cpu_count(),
    "seconds_per_run": secs,
    "rounds": rounds,
    "load_before": os.environ["LOAD_BEFORE"],
    "load_after": os.environ["LOAD_AFTER"],
    "udp_datagram_bytes": 64,
    "busy_poll_us": int(os.environ["POLL_US"]),
    "paths": paths,
    "ratios": ratios,
    "targets": {"tcp_ratio": 0.8, "udp64_ratio": 0.5, "added_median_rtt_us": 30},
}
with open(os.environ["OUT"], "w") as f:
    json.dump(report, f, indent=2)
print(f"bench: written {os.environ['OUT']}")
EOF
