#!/usr/bin/env bash
# Installs what vpclab needs on a fresh Debian machine and builds it. Idempotent.
# Usage: sudo scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: run as root (it installs packages; vpclab itself needs root for namespaces)" >&2
    exit 1
fi

# gcc builds the C parts of ring (WireGuard's crypto). Tools the lab's hosts and tests run: ip,
# ping, curl, iperf3, tcpdump, ps/pkill, dig, nft, and OpenSSH (the `ssh` service starts its own
# sshd inside hosts; the machine's sshd is never used). A site's customer gateway is a real
# WireGuard peer: wireguard-go (userspace, as the kernel may lack the module) driven by wg and
# wg-quick from wireguard-tools; bird2 is the BGP daemon a site runs for dynamic routing.
packages=(gcc libc6-dev iproute2 iputils-ping curl iperf3 tcpdump procps ca-certificates dnsutils
          openssh-client openssh-server nftables wireguard-go wireguard-tools bird2)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Keep packages (openssh-server) from starting their system services: the lab runs its own.
    own_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        own_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [ -n "$own_policy" ]; then
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
fi

# From PyPI: DuckDB, the SQL engine the flow-log test queries the delivered files with (as
# Athena would); moto's server, which plays the lab's AWS services (S3, DynamoDB, ...); and
# the AWS CLI, the real client run against them.
pip_install() {
    if ! python3 -m pip --version >/dev/null 2>&1; then
        apt-get install -y -qq --no-install-recommends python3 python3-pip >/dev/null
    fi
    python3 -m pip install -q "$@" 2>/dev/null || python3 -m pip install -q --break-system-packages "$@"
}
python3 -c 'import duckdb' 2>/dev/null || pip_install duckdb
python3 -c 'import moto.server' 2>/dev/null || pip_install 'moto[server]'
command -v aws >/dev/null 2>&1 || pip_install awscli

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "setup.sh: cargo not found; install Rust 1.85 or newer (rustup), then run this again" >&2
        exit 1
    fi
fi

# The TUN device node (present on most kernels; containers sometimes lack it).
if [ ! -e /dev/net/tun ]; then
    mkdir -p /dev/net
    mknod /dev/net/tun c 10 200
    chmod 0666 /dev/net/tun
fi

cargo build --release --locked 2>&1 | tail -n 2
echo "setup.sh: built $(pwd)/target/release/vpclab"
