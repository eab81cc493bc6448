#!/usr/bin/env bash
# End-to-end ingest throughput benchmark: one agent streams N queued metric
# samples to a collector over mutual-TLS gRPC on loopback, once per storage
# engine. See bench/README.md.
#
# Usage: [N=500000] [ENGINES="sqlite postgres"] [TIMEOUT=600] bench/ingest.sh
#
# Environment:
#   N        number of metric samples (default 500000)
#   ENGINES  engines to run, in order (default "sqlite postgres")
#   TIMEOUT  seconds to wait for all samples to be stored (default 600)
#   KEEP=1   keep the temporary directory (data dirs, logs) afterwards
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

N=${N:-500000}
ENGINES=${ENGINES:-sqlite postgres}
TIMEOUT=${TIMEOUT:-600}
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
for engine in $ENGINES; do
    case $engine in sqlite | postgres) ;; *) die "unknown engine '$engine' (use sqlite and/or postgres)" ;; esac
done

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
COLLECTOR=$TARGET_DIR/release/outpost-collector
AGENT=$TARGET_DIR/release/outpost-agent
CLK_TCK=$(getconf CLK_TCK)

# Tracing output goes to files; keep it free of colour escape codes.
export NO_COLOR=1
# Every option is passed explicitly; settings from the shell must not leak in.
unset OUTPOST_DATA_DIR OUTPOST_DATABASE_URL OUTPOST_AGENT_ADDR OUTPOST_CONSOLE_ADDR \
    OUTPOST_LOG_FORMAT OUTPOST_ENROLL_TOKEN OUTPOST_AGENT_DATA_DIR

tmpdir=""
pg_dir=""
collector_pid=""
agent_pid=""

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

stop_all() {
    stop_process "$agent_pid"
    agent_pid=""
    stop_process "$collector_pid"
    collector_pid=""
    if [[ -n $pg_dir ]]; then
        "$ROOT/scripts/pg-server" stop "$pg_dir" || log "warning: could not stop PostgreSQL in $pg_dir"
        pg_dir=""
    fi
}

run_engine() {
    local engine=$1
    local work=$tmpdir/$engine
    local C=$work/collector A=$work/agent
    local clog=$work/collector.log alog=$work/agent.log
    local url="" port="" token="" i
    local -a db_args=()
    mkdir -p "$work"

    log "=== $engine: N=$N ==="
    if [[ $engine == postgres ]]; then
        pg_dir=$tmpdir/pg
        url=$("$ROOT/scripts/pg-server" start "$pg_dir") || die "could not start PostgreSQL"
        db_args=(--database-url "$url")
    fi

    # Admin password printed by init is not needed.
    local -a init_args=(init --data-dir "$C")
    if [[ $engine == postgres ]] && "$COLLECTOR" init --help 2>/dev/null | grep -q -- '--database-url'; then
        init_args+=("${db_args[@]}")
    fi
    log "outpost-collector ${init_args[*]}"
    "$COLLECTOR" "${init_args[@]}" >"$work/init.out" 2>"$work/init.err" \
        || fail "outpost-collector init failed" "$work/init.err" "$work/init.out"

    log "starting collector"
    "$COLLECTOR" serve --data-dir "$C" --agent-addr 127.0.0.1:0 --console-addr 127.0.0.1:0 \
        "${db_args[@]}" >"$clog" 2>&1 </dev/null &
    collector_pid=$!

    # Wait (bounded) for the agent port to be announced in the log.
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

    log "enrolling agent"
    "$AGENT" enroll --collector "127.0.0.1:$port" --token "$token" --data-dir "$A" \
        >"$work/enroll.log" 2>&1 </dev/null \
        || fail "outpost-agent enroll failed" "$work/enroll.log" "$clog"

    log "queueing $N samples"
    "$AGENT" synth --data-dir "$A" --count "$N" >"$work/synth.log" 2>&1 </dev/null \
        || fail "outpost-agent synth failed" "$work/synth.log"

    local before
    before=$(count_rows "$engine" "$C" "$url")
    [[ $before == 0 ]] || fail "expected an empty metric_samples table before the run, found '${before:-query failed}' rows"

    local cpu0 cpu1 t0 t1 agent_cpu0 agent_cpu1 rows="" deadline
    cpu0=$(cpu_ticks "$collector_pid") || fail "collector is not running" "$clog"
    t0=$(now)
    "$AGENT" run --data-dir "$A" >"$alog" 2>&1 </dev/null &
    agent_pid=$!
    agent_cpu0=$(cpu_ticks "$agent_pid" 2>/dev/null || echo 0)
    log "agent pid $agent_pid; waiting for $N rows (at most ${TIMEOUT}s)"

    deadline=$(($(date +%s) + TIMEOUT))
    while :; do
        rows=$(count_rows "$engine" "$C" "$url")
        if [[ $rows =~ ^[0-9]+$ ]] && ((rows >= N)); then
            t1=$(now)
            cpu1=$(cpu_ticks "$collector_pid") || fail "collector exited" "$clog"
            agent_cpu1=$(cpu_ticks "$agent_pid" 2>/dev/null || echo "$agent_cpu0")
            break
        fi
        kill -0 "$collector_pid" 2>/dev/null || fail "collector exited during the run (rows: ${rows:-?}/$N)" "$clog" "$alog"
        if ! kill -0 "$agent_pid" 2>/dev/null; then
            rows=$(count_rows "$engine" "$C" "$url")
            if [[ $rows =~ ^[0-9]+$ ]] && ((rows >= N)); then continue; fi
            fail "agent exited during the run (rows: ${rows:-?}/$N)" "$alog" "$clog"
        fi
        if (($(date +%s) >= deadline)); then
            fail "timed out after ${TIMEOUT}s with ${rows:-?}/$N rows stored" "$alog" "$clog"
        fi
        sleep "$POLL_INTERVAL"
    done
    ((rows == N)) || fail "metric_samples has $rows rows, expected exactly $N" "$clog"

    local result
    result=$(awk -v e="$engine" -v n="$N" -v t0="$t0" -v t1="$t1" \
        -v c="$((cpu1 - cpu0))" -v ac="$((agent_cpu1 - agent_cpu0))" -v hz="$CLK_TCK" 'BEGIN {
        s = t1 - t0; if (s <= 0) s = 0.000001
        printf "%-8s %10d %10.2f %12.0f %14.1f %14.1f\n", e, n, s, n / s,
            c * 1000 / hz / (n / 1000), ac * 1000 / hz / (n / 1000)
    }')
    results+=("$result")
    printf '%s\n' "$result" | awk '{ printf "engine=%s N=%s elapsed_s=%s obs_per_s=%s collector_cpu_ms_per_1k=%s agent_cpu_ms_per_1k=%s\n", $1, $2, $3, $4, $5, $6 }'
    printf 'reproduce: N=%s ENGINES=%s bench/ingest.sh\n' "$N" "$engine"

    stop_all
}

command -v cargo >/dev/null 2>&1 || die "cargo not found"
"$ROOT/scripts/install-deps"

log "building release binaries"
cargo build --release --locked -p outpost-collector -p outpost-agent >&2
[[ -x $COLLECTOR && -x $AGENT ]] || die "release binaries not found in $TARGET_DIR/release"

tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench.XXXXXX")
# The PostgreSQL server may run as the postgres system user; it must be able to enter tmpdir.
chmod 755 "$tmpdir"

results=()
for engine in $ENGINES; do
    run_engine "$engine"
done

commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git -C "$ROOT" diff --quiet HEAD 2>/dev/null; then commit="$commit+dirty"; fi
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)

echo
echo "commit $commit, $(nproc) CPUs${cpu_model:+ ($cpu_model)}, $(uname -sr)"
printf '%-8s %10s %10s %12s %14s %14s\n' engine N elapsed_s obs_per_s coll_cpu_ms/1k agent_cpu_ms/1k
printf '%s\n' "${results[@]}"
printf 'reproduce: N=%s ENGINES="%s" bench/ingest.sh\n' "$N" "$ENGINES"
