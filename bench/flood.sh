#!/usr/bin/env bash
# Ingest throughput with and without an anonymous flood on the agent port:
# one agent streams N queued metric samples to a collector over mutual-TLS
# gRPC on loopback, first on a quiet port, then (with a fresh collector and
# agent) while `tests/examples/flood.rs` floods the port from 127.0.0.2-13
# with idle TCP, idle TLS without a client certificate and Enroll calls with
# unknown tokens. See bench/README.md.
#
# Usage: [N=3000000] [ENGINES=sqlite] [RAMP=15] [TIMEOUT=600] bench/flood.sh
#
# Environment:
#   N         number of metric samples per phase (default 3000000)
#   ENGINES   engines to run, in order (default "sqlite"; "sqlite postgres" for both)
#   RAMP      seconds the flood runs before the agent starts (default 15: past the
#             collector's handshake and idle timeouts, so it is in steady state)
#   TIMEOUT   seconds to wait for all samples to be stored (default 600)
#   FLOOD     extra options for the flood tool, e.g. "--tcp-per-source 100"
#   RESULTS   file the summary is appended to (default bench/results.md; empty: none)
#   KEEP=1    keep the temporary directory (data dirs, logs) afterwards
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

N=${N:-3000000}
ENGINES=${ENGINES:-sqlite}
RAMP=${RAMP:-15}
TIMEOUT=${TIMEOUT:-600}
FLOOD=${FLOOD:-}
RESULTS=${RESULTS-$ROOT/bench/results.md}
KEEP=${KEEP:-0}
POLL_INTERVAL=0.1

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# Report unexpected failures (set -e) with their location.
on_err() {
    local rc=$?
    ((BASH_SUBSHELL == 0)) || return 0
    log "error: command failed (exit $rc) at line ${BASH_LINENO[0]}: $BASH_COMMAND"
}
trap on_err ERR

[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer (got '$N')"
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "TIMEOUT must be a positive integer (got '$TIMEOUT')"
[[ $RAMP =~ ^[0-9]+$ ]] || die "RAMP must be a non-negative integer (got '$RAMP')"
for engine in $ENGINES; do
    case $engine in sqlite | postgres) ;; *) die "unknown engine '$engine' (use sqlite and/or postgres)" ;; esac
done

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
COLLECTOR=$TARGET_DIR/release/outpost-collector
AGENT=$TARGET_DIR/release/outpost-agent
FLOODER=$TARGET_DIR/release/examples/flood
CLK_TCK=$(getconf CLK_TCK)

# Tracing output goes to files; keep it free of colour escape codes.
export NO_COLOR=1
# Every option is passed explicitly; settings from the shell must not leak in.
unset OUTPOST_DATA_DIR OUTPOST_DATABASE_URL OUTPOST_AGENT_ADDR OUTPOST_CONSOLE_ADDR \
    OUTPOST_LOG_FORMAT OUTPOST_ENROLL_TOKEN OUTPOST_AGENT_DATA_DIR RUST_LOG

tmpdir=""
pg_dir=""
collector_pid=""
agent_pid=""
flood_pid=""

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

stop_all() {
    stop_process "$flood_pid"
    flood_pid=""
    stop_process "$agent_pid"
    agent_pid=""
    stop_process "$collector_pid"
    collector_pid=""
    if [[ -n $pg_dir ]]; then
        "$ROOT/scripts/pg-server" stop "$pg_dir" || log "warning: could not stop PostgreSQL in $pg_dir"
        pg_dir=""
    fi
}

# Open file descriptors of a process.
open_fds() {
    local fds=("/proc/$1/fd/"*)
    echo "${#fds[@]}"
}

# One phase ("quiet" or "flood") on one engine, with a fresh collector and agent.
run_phase() {
    local engine=$1 phase=$2
    local work=$tmpdir/$engine-$phase
    local C=$work/collector A=$work/agent
    local clog=$work/collector.log alog=$work/agent.log flog=$work/flood.log
    local url="" port="" token="" i
    local -a db_args=()
    mkdir -p "$work"

    log "=== $engine, $phase: N=$N ==="
    if [[ $engine == postgres ]]; then
        pg_dir=$tmpdir/pg-$phase
        url=$("$ROOT/scripts/pg-server" start "$pg_dir") || die "could not start PostgreSQL"
        db_args=(--database-url "$url")
    fi

    # Admin password printed by init is not needed.
    "$COLLECTOR" init --data-dir "$C" "${db_args[@]}" >"$work/init.out" 2>"$work/init.err" \
        || fail "outpost-collector init failed" "$work/init.err" "$work/init.out"

    "$COLLECTOR" serve --data-dir "$C" --agent-addr 127.0.0.1:0 --console-addr 127.0.0.1:0 \
        "${db_args[@]}" >"$clog" 2>&1 </dev/null &
    collector_pid=$!
    for ((i = 0; i < 300; i++)); do
        port=$(agent_port_from_log "$clog")
        [[ -n $port ]] && break
        kill -0 "$collector_pid" 2>/dev/null || fail "collector exited during startup" "$clog"
        sleep 0.1
    done
    [[ -n $port ]] || fail "collector did not log 'agent port listening on 127.0.0.1:PORT' within 30 s" "$clog"
    log "collector pid $collector_pid, agent port $port"

    "$COLLECTOR" token create --data-dir "$C" "${db_args[@]}" --tenant bench --site bench \
        >"$work/token.out" 2>"$work/token.err" \
        || fail "outpost-collector token create failed" "$work/token.err" "$work/token.out"
    token=$(tail -n 1 "$work/token.out" | tr -d '[:space:]')
    [[ -n $token ]] || fail "outpost-collector token create printed no token" "$work/token.out" "$work/token.err"
    "$AGENT" enroll --collector "127.0.0.1:$port" --token "$token" --data-dir "$A" \
        >"$work/enroll.log" 2>&1 </dev/null \
        || fail "outpost-agent enroll failed" "$work/enroll.log" "$clog"
    log "queueing $N samples"
    "$AGENT" synth --data-dir "$A" --count "$N" >"$work/synth.log" 2>&1 </dev/null \
        || fail "outpost-agent synth failed" "$work/synth.log"

    local before
    before=$(count_rows "$engine" "$C" "$url")
    [[ $before == 0 ]] || fail "expected an empty metric_samples table before the run, found '${before:-query failed}' rows"

    local flood_cpu0=0
    if [[ $phase == flood ]]; then
        # shellcheck disable=SC2086 # FLOOD is a list of options
        "$FLOODER" --collector-dir "$C" --agent-addr "127.0.0.1:$port" \
            --seconds $((RAMP + TIMEOUT + 30)) $FLOOD >"$flog" 2>&1 </dev/null &
        flood_pid=$!
        log "flood pid $flood_pid; letting it ramp up for ${RAMP}s"
        sleep "$RAMP"
        kill -0 "$flood_pid" 2>/dev/null || fail "the flood tool exited early" "$flog"
        flood_cpu0=$(cpu_ticks "$flood_pid")
    fi
    local warns0
    warns0=$(grep -c ' WARN ' "$clog" || true)

    local cpu0 cpu1 t0 t1 agent_cpu0 agent_cpu1 flood_cpu1=0 rows="" deadline fds max_fds=0
    cpu0=$(cpu_ticks "$collector_pid") || fail "collector is not running" "$clog"
    t0=$(now)
    "$AGENT" run --data-dir "$A" >"$alog" 2>&1 </dev/null &
    agent_pid=$!
    agent_cpu0=$(cpu_ticks "$agent_pid" 2>/dev/null || echo 0)
    log "agent pid $agent_pid; waiting for $N rows (at most ${TIMEOUT}s)"

    deadline=$(($(date +%s) + TIMEOUT))
    while :; do
        rows=$(count_rows "$engine" "$C" "$url")
        fds=$(open_fds "$collector_pid" 2>/dev/null || echo 0)
        ((fds > max_fds)) && max_fds=$fds
        if [[ $rows =~ ^[0-9]+$ ]] && ((rows >= N)); then
            t1=$(now)
            cpu1=$(cpu_ticks "$collector_pid") || fail "collector exited" "$clog"
            agent_cpu1=$(cpu_ticks "$agent_pid" 2>/dev/null || echo "$agent_cpu0")
            [[ -n $flood_pid ]] && flood_cpu1=$(cpu_ticks "$flood_pid" 2>/dev/null || echo "$flood_cpu0")
            break
        fi
        kill -0 "$collector_pid" 2>/dev/null || fail "collector exited during the run (rows: ${rows:-?}/$N)" "$clog" "$alog"
        if ! kill -0 "$agent_pid" 2>/dev/null; then
            rows=$(count_rows "$engine" "$C" "$url")
            if [[ $rows =~ ^[0-9]+$ ]] && ((rows >= N)); then continue; fi
            fail "agent exited during the run (rows: ${rows:-?}/$N)" "$alog" "$clog"
        fi
        if (($(date +%s) >= deadline)); then
            fail "timed out after ${TIMEOUT}s with ${rows:-?}/$N rows stored" "$alog" "$clog" "$flog"
        fi
        sleep "$POLL_INTERVAL"
    done
    ((rows == N)) || fail "metric_samples has $rows rows, expected exactly $N" "$clog"
    local warns1
    warns1=$(grep -c ' WARN ' "$clog" || true)

    local flood_stats="-"
    if [[ -n $flood_pid ]]; then
        stop_process "$flood_pid"
        flood_pid=""
        flood_stats=$(sed -n 's/^flood: \(seconds=.*\)/\1/p' "$flog" | tail -n 1)
        [[ -n $flood_stats ]] || fail "the flood tool printed no summary" "$flog"
    fi

    local result
    result=$(awk -v e="$engine" -v p="$phase" -v n="$N" -v t0="$t0" -v t1="$t1" \
        -v c="$((cpu1 - cpu0))" -v ac="$((agent_cpu1 - agent_cpu0))" -v fc="$((flood_cpu1 - flood_cpu0))" \
        -v hz="$CLK_TCK" -v fds="$max_fds" -v w="$((warns1 - warns0))" 'BEGIN {
        s = t1 - t0; if (s <= 0) s = 0.000001
        printf "%-8s %-6s %9d %9.2f %10.0f %14.1f %15.1f %11.1f %8d %6d\n", e, p, n, s, n / s,
            c * 1000 / hz / (n / 1000), ac * 1000 / hz / (n / 1000), fc / hz, fds, w
    }')
    results+=("$result")
    printf '%s\n' "$result"
    if [[ $phase == flood ]]; then
        floods+=("$engine: $flood_stats")
        printf 'flood %s\n' "$flood_stats"
    fi
    stop_all
}

command -v cargo >/dev/null 2>&1 || die "cargo not found"
"$ROOT/scripts/install-deps"

log "building release binaries"
cargo build --release --locked -p outpost-collector -p outpost-agent >&2
cargo build --release --locked -p outpost-tests --example flood >&2
[[ -x $COLLECTOR && -x $AGENT && -x $FLOODER ]] || die "release binaries not found in $TARGET_DIR/release"

tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench.XXXXXX")
# The PostgreSQL server may run as the postgres system user; it must be able to enter tmpdir.
chmod 755 "$tmpdir"

results=()
floods=()
for engine in $ENGINES; do
    run_phase "$engine" quiet
    run_phase "$engine" flood
done

commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git -C "$ROOT" diff --quiet HEAD 2>/dev/null; then commit="$commit+dirty"; fi
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
summary=$(
    echo "commit $commit, $(nproc) CPUs${cpu_model:+ ($cpu_model)}, $(uname -sr), $(date -u +%Y-%m-%dT%H:%MZ)"
    printf '%-8s %-6s %9s %9s %10s %14s %15s %11s %8s %6s\n' engine phase N elapsed_s obs_per_s \
        coll_cpu_ms/1k agent_cpu_ms/1k flood_cpu_s coll_fds warns
    printf '%s\n' "${results[@]}"
    printf 'flood %s\n' "${floods[@]}"
    # From the repository root; the checkout's own path says nothing to a reader.
    printf 'reproduce: N=%s ENGINES="%s" RAMP=%s FLOOD="%s" bench/flood.sh\n' \
        "$N" "$ENGINES" "$RAMP" "$FLOOD"
)
echo
printf '%s\n' "$summary"
if [[ -n $RESULTS ]]; then
    {
        [[ -s $RESULTS ]] || printf '# Benchmark results\n\nAppended by the bench scripts; newest last.\n'
        printf '\n## flood.sh\n\n```\n%s\n```\n' "$summary"
    } >>"$RESULTS"
    log "appended the summary to $RESULTS"
fi
