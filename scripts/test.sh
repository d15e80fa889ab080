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
cargo test --release --locked -- --test-threads=2

# Nothing of any test lab may remain.
left=$(ls /run/netns 2>/dev/null | grep -E '^(vl|vlt)-' || true)
left+=$(ls /etc/netns 2>/dev/null | grep -E '^(vl|vlt)-' || true)
if [ -n "$left" ]; then
    echo "test.sh: leaked after the tests: $left" >&2
    exit 1
fi
echo "test.sh: no namespace or host folder left behind"
