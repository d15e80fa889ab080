#!/usr/bin/env bash
# Scale benchmark: for labs of 10, 100 and 1000 instances (VPCs peered in a chain, one route
# table per subnet; examples/scale_lab.rs writes them), times `vpclab up` and `vpclab down`,
# reads the daemon's peak memory (VmHWM), times the first successful ping between instances of
# two peered VPCs after `up` returns, and checks that `down` left nothing behind.
# Prints a table and writes target/bench/scale-DATE.json.
# Usage: sudo scripts/scale.sh [SIZES...]   (default: 10 100 1000 tgw100; root; each step is
# bounded). `tgwN` is N VPCs of one instance each on one transit gateway.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10 100 1000 tgw100)
[ "$(id -u)" -eq 0 ] || { echo "scale.sh: run as root" >&2; exit 1; }
vpclab=target/release/vpclab
gen=target/release/examples/scale_lab
if [ ! -x "$vpclab" ] || [ ! -x "$gen" ]; then
    cargo build --release --locked --bin vpclab --example scale_lab
fi
mkdir -p target/bench
out=target/bench/scale-$(date +%Y%m%d-%H%M%S).json
lab=""
cleanup() { [ -z "$lab" ] || timeout 120 "$vpclab" down "$lab" >/dev/null 2>&1 || true; }
trap cleanup EXIT

now() { date +%s.%N; }
# True while a thread of process $1 has not exited (a killed process's leader turns zombie
# before its other threads are done closing its files).
running() {
    local task state
    for task in /proc/"$1"/task/*/stat; do
        state=$(awk '{ print $3 }' "$task" 2>/dev/null || echo Z)
        [ "$state" = Z ] || [ "$state" = X ] || return 0
    done
    return 1
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
load=$(cut -d' ' -f1-3 /proc/loadavg)
rows=()
printf '%-9s %8s %9s %15s %10s %14s %8s %7s\n' instances "up (s)" "down (s)" "daemon gone (s)" "peak RSS" "first ping (s)" threads leaked
for n in "${sizes[@]}"; do
    lab="scale$n"
    file=target/bench/scale-$n.yaml
    "$gen" "$n" > "$file"
    if [ -e "/run/vpclab/$lab" ]; then
        echo "scale.sh: lab $lab exists already; run \`vpclab down $lab\` first" >&2
        exit 1
    fi
    # Two instances in different subnets of two peered VPCs (or of one VPC when there is one);
    # with a transit gateway, the first VPC's and the last's.
    from=h0-0-0
    if grep -q '^  v1:' "$file"; then to=10.1.0.10; else to=10.0.1.10; fi
    case "$n" in
        tgw*) from=h0; to=10.$(( ${n#tgw} - 1 )).1.10 ;;
    esac

    t0=$(now)
    timeout 300 "$vpclab" up "$file" >/dev/null
    t1=$(now)
    first=""
    while [ "$(secs "$t1" "$(now)" | cut -d. -f1)" -lt 30 ]; do
        if timeout 5 "$vpclab" exec "$from" --lab "$lab" -- ping -c1 -W1 -q "$to" >/dev/null 2>&1; then
            first=$(secs "$t1" "$(now)")
            break
        fi
    done
    pid=$(sed -n 's/.*"daemon_pid": *\([0-9]*\).*/\1/p' "/run/vpclab/$lab/state.json")
    hwm_kb=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
    threads=$(awk '/^Threads/ { print $2 }' "/proc/$pid/status")

    t2=$(now)
    timeout 300 "$vpclab" down "$lab" >/dev/null
    t3=$(now)
    # `down` should return only once the daemon is gone; measure when it really is.
    while running "$pid" && [ "$(secs "$t3" "$(now)" | cut -d. -f1)" -lt 60 ]; do sleep 0.01; done
    t4=$(now)
    lab_done=$lab
    lab=""

    left=$( { ls /run/netns 2>/dev/null | sed 's|^|/run/netns/|' | grep "/vl-$lab_done-" || true
              ls /etc/netns 2>/dev/null | sed 's|^|/etc/netns/|' | grep "/vl-$lab_done-" || true
              grep -o " /run/netns/vl-$lab_done-[^ ]*" /proc/self/mountinfo | sed 's/^ /mount /' || true
              [ ! -e "/run/vpclab/$lab_done" ] || echo "/run/vpclab/$lab_done"
              ! running "$pid" || echo "daemon $pid"
            } )
    leaked=$(printf '%s' "$left" | grep -c . || true)
    [ -z "$left" ] || printf 'scale.sh: lab %s left behind:\n%s\n' "$lab_done" "$left" | head -20 >&2
    up=$(secs "$t0" "$t1"); down=$(secs "$t2" "$t3"); gone=$(secs "$t2" "$t4")
    rss_mb=$(awk -v k="$hwm_kb" 'BEGIN { printf "%.1f", k / 1024 }')
    printf '%-9s %8s %9s %15s %7s MB %14s %8s %7s\n' "$n" "$up" "$down" "$gone" "$rss_mb" "${first:-none}" "$threads" "$leaked"
    rows+=("{\"instances\": \"$n\", \"up_s\": $up, \"down_s\": $down, \"daemon_gone_s\": $gone, \"peak_rss_mb\": $rss_mb, \"first_ping_s\": ${first:-null}, \"daemon_threads\": $threads, \"leaked\": $leaked}")
done
{
    printf '{\n  "date": "%s",\n  "host": "%s",\n  "cpus": %s,\n  "loadavg_before": "%s",\n  "commit": "%s",\n  "labs": [\n' \
        "$(date -Is)" "$(hostname)" "$(nproc)" "$load" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    for i in "${!rows[@]}"; do
        sep=","; [ "$i" -eq $((${#rows[@]} - 1)) ] && sep=""
        printf '    %s%s\n' "${rows[$i]}" "$sep"
    done
    printf '  ]\n}\n'
} > "$out"
echo "load average before: $load; written to $out"
