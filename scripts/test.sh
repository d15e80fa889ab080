#!/usr/bin/env bash
# Runs every test: formatting and lints, unit tests, whole scenarios through the model, and
# (as root) real labs in namespaces with a final check that nothing leaked.
# Usage: sudo scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

if cargo fmt --version >/dev/null 2>&1; then
    cargo fmt --all -- --check
fi
if cargo clippy --version >/dev/null 2>&1; then
    cargo clippy --release --all-targets --locked -- -D warnings
fi

# Root-tier tests build real labs; two at a time fit the 2-core machines this runs on.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --release --locked --lib --bins --tests -- --test-threads=2 2>&1 | tee "$log"

# Nothing of any test lab may remain.
left=$(ls /run/netns 2>/dev/null | grep -E '^(vl|vlt)-' || true)
left+=$(ls /etc/netns 2>/dev/null | grep -E '^(vl|vlt)-' || true)
if [ -n "$left" ]; then
    echo "test.sh: leaked after the tests: $left" >&2
    exit 1
fi
echo "test.sh: no namespace or host folder left behind"
# One closing line over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
