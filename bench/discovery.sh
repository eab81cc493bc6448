#!/usr/bin/env bash
# Discovery against nmap on a /24 of network namespaces (tests/examples/
# discovery_bench.rs): ~25 live hosts with a few open top-100 ports each;
# `outpost-agent discover` (ICMP sweep + nmap's top-100 TCP ports) against
# `nmap -T4 -sn` + `nmap -T4 -sT --top-ports 100` in the same run, the
# neighbour cache flushed before each. Prints every round, the median wall
# time ratio and whether the findings are identical. Needs root (network
# namespaces) and nmap (scripts/install-deps installs it). Traffic stays inside
# the namespaces the benchmark creates and removes.
#
# Usage: [HOSTS=25] [RATE=10000] [ROUNDS=5] bench/discovery.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
"$ROOT/scripts/install-deps"
cargo build --release --locked -p outpost-agent
OUTPOST_BIN_DIR=$ROOT/target/release cargo run --locked -q -p outpost-tests --example discovery_bench
