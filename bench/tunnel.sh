#!/usr/bin/env bash
# Tunnel throughput and latency against `ssh -L` on the same path, in the
# same run (tests/examples/tunnel_bench.rs): a simulated device's WinBox port
# (a byte echo) through `outpost tunnel` → collector → agent, through `ssh -L`
# to a real sshd on the device's address, and directly. Everything on
# loopback. Prints each round, the medians, p50/p99 round trips and the
# ratios. Needs openssh-server (scripts/install-deps installs it) and root
# for sshd.
#
# Usage: [SIZE=64] [ROUNDS=5] [PINGS=5000] bench/tunnel.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
"$ROOT/scripts/install-deps"
cargo build --release --locked -p outpost-collector -p outpost-agent -p outpost-sim -p outpost-cli
OUTPOST_BIN_DIR=$ROOT/target/release cargo run --release --locked -q -p outpost-tests --example tunnel_bench
