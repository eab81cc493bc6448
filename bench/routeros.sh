#!/usr/bin/env bash
# RouterOS polling at fleet scale: one collector (SQLite), one agent and
# simulated devices (outpost-sim, 3,000 per process, with their SSH ports for
# configuration backups) imported with
# `outpost-collector device import` and polled every INTERVAL seconds. Over a
# measured window of steady polling it reads the agent's and the collector's
# CPU time and memory from /proc and counts the polls stored. Then, against
# the same simulated devices, PyPI librouteros does the same poll set
# (bench/routeros_librouteros.py) twice: logging in for every poll, and over
# persistent connections; its CPU time per device-poll is compared with the
# agent's. See bench/README.md.
#
# Usage: [NS="1000 10000"] [INTERVAL=60] [WINDOW=180] bench/routeros.sh
#
# Environment:
#   NS           fleet sizes to run, in order (default "1000 10000")
#   INTERVAL     seconds between polls of a device (default 60)
#   WINDOW       measured window in seconds (default 3 intervals)
#   CONCURRENCY  the agent's routeros_concurrency (default: the agent's default)
#   PY_SECONDS   wall-time budget of each librouteros pass (default INTERVAL)
#   PY           0 skips the librouteros passes (default 1)
#   UP_TIMEOUT   seconds to wait for every device to be up (default 300)
#   RESULTS      file the summary is appended to (default bench/results.md; empty: none)
#   KEEP=1       keep the temporary directory (data dirs, logs) afterwards
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

NS=${NS:-1000 10000}
INTERVAL=${INTERVAL:-60}
WINDOW=${WINDOW:-$((3 * INTERVAL))}
CONCURRENCY=${CONCURRENCY:-}
PY_SECONDS=${PY_SECONDS:-$INTERVAL}
PY=${PY:-1}
UP_TIMEOUT=${UP_TIMEOUT:-300}
RESULTS=${RESULTS-$ROOT/bench/results.md}
KEEP=${KEEP:-0}
PER_SIM=3000
PASSWORD=bench-ros-pass

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
on_err() {
    local rc=$?
    ((BASH_SUBSHELL == 0)) || return 0
    log "error: command failed (exit $rc) at line ${BASH_LINENO[0]}: $BASH_COMMAND"
}
trap on_err ERR

for n in $NS; do
    [[ $n =~ ^[1-9][0-9]*$ ]] && ((n <= 20000)) || die "NS must list fleet sizes from 1 to 20000 (got '$n')"
done
[[ $INTERVAL =~ ^[1-9][0-9]*$ ]] && ((INTERVAL >= 10)) || die "INTERVAL must be at least 10 (got '$INTERVAL')"
[[ $WINDOW =~ ^[1-9][0-9]*$ ]] || die "WINDOW must be a positive integer (got '$WINDOW')"
[[ $PY_SECONDS =~ ^[1-9][0-9]*$ ]] || die "PY_SECONDS must be a positive integer (got '$PY_SECONDS')"
[[ $UP_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "UP_TIMEOUT must be a positive integer (got '$UP_TIMEOUT')"
[[ -z $CONCURRENCY || $CONCURRENCY =~ ^[1-9][0-9]*$ ]] || die "CONCURRENCY must be a positive integer"

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
COLLECTOR=$TARGET_DIR/release/outpost-collector
AGENT=$TARGET_DIR/release/outpost-agent
SIM=$TARGET_DIR/release/outpost-sim
PYVENV=${OUTPOST_PYVENV:-$ROOT/target/pyvenv}
CLK_TCK=$(getconf CLK_TCK)

export NO_COLOR=1
unset OUTPOST_DATA_DIR OUTPOST_DATABASE_URL OUTPOST_AGENT_ADDR OUTPOST_CONSOLE_ADDR \
    OUTPOST_LOG_FORMAT OUTPOST_ENROLL_TOKEN OUTPOST_AGENT_DATA_DIR RUST_LOG OUTPOST_ROS_PASSWORD

tmpdir=""
collector_pid=""
agent_pid=""
sim_pids=()

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

stop_all() {
    stop_process "$agent_pid"
    agent_pid=""
    stop_process "$collector_pid"
    collector_pid=""
    local p
    for p in "${sim_pids[@]}"; do stop_process "$p"; done
    sim_pids=()
}

# VmRSS of a process in kB (0 if gone).
rss_kb() {
    awk '/^VmRSS:/ { print $2; found = 1 } END { if (!found) print 0 }' "/proc/$1/status" 2>/dev/null || echo 0
}

open_fds() {
    local fds=("/proc/$1/fd/"*)
    echo "${#fds[@]}"
}

# A query on the collector's SQLite database (read-only; waits when busy).
q() {
    sqlite3 -readonly -cmd '.timeout 10000' "$1/outpost.db" "$2"
}

wait_ready() {
    local out=$1 err=$2 pid=$3 i
    for ((i = 0; i < 3000; i++)); do
        grep -q '^ready ' "$out" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || fail "outpost-sim exited during start-up" "$err"
        sleep 0.1
    done
    fail "outpost-sim did not print 'ready' within 300 s" "$err"
}

# One fleet size: agent window, then the librouteros passes.
run_size() {
    local n=$1
    local work=$tmpdir/n$n
    local C=$work/collector A=$work/agent
    local clog=$work/collector.log alog=$work/agent.log
    local port="" token="" i k
    mkdir -p "$work"
    log "=== N=$n: interval ${INTERVAL}s, window ${WINDOW}s ==="

    # Simulated devices, at most PER_SIM per process: each device listens on
    # API, API-SSL and SSH, and the open-file hard limit here is 20,000.
    local sims=$(((n + PER_SIM - 1) / PER_SIM)) left=$n count
    local -a outs=()
    for ((k = 0; k < sims; k++)); do
        count=$((left < PER_SIM ? left : PER_SIM))
        left=$((left - count))
        "$SIM" --devices "$count" --first-ip "127.$((20 + k)).0.1" --ros mixed --seed "$((k + 1))" \
            --api-port 0 --api-ssl-port 0 --ssh-port 0 --password "$PASSWORD" \
            >"$work/sim$k.out" 2>"$work/sim$k.err" </dev/null &
        sim_pids+=($!)
        outs+=("$work/sim$k.out")
    done
    for ((k = 0; k < sims; k++)); do wait_ready "${outs[k]}" "$work/sim$k.err" "${sim_pids[k]}"; done
    log "$sims simulator process(es) ready"

    "$COLLECTOR" init --data-dir "$C" >"$work/init.out" 2>"$work/init.err" \
        || fail "outpost-collector init failed" "$work/init.err"
    "$COLLECTOR" serve --data-dir "$C" --agent-addr 127.0.0.1:0 --console-addr 127.0.0.1:0 \
        >"$clog" 2>&1 </dev/null &
    collector_pid=$!
    for ((i = 0; i < 300; i++)); do
        port=$(agent_port_from_log "$clog")
        [[ -n $port ]] && break
        kill -0 "$collector_pid" 2>/dev/null || fail "collector exited during startup" "$clog"
        sleep 0.1
    done
    [[ -n $port ]] || fail "collector did not announce its agent port within 30 s" "$clog"
    "$COLLECTOR" token create --data-dir "$C" --tenant bench --site bench >"$work/token.out" 2>"$work/token.err" \
        || fail "outpost-collector token create failed" "$work/token.err"
    token=$(tail -n 1 "$work/token.out" | tr -d '[:space:]')
    "$AGENT" enroll --collector "127.0.0.1:$port" --token "$token" --data-dir "$A" \
        >"$work/enroll.log" 2>&1 </dev/null || fail "outpost-agent enroll failed" "$work/enroll.log" "$clog"
    if [[ -n $CONCURRENCY ]]; then
        printf 'routeros_concurrency = %s\n' "$CONCURRENCY" >>"$A/agent.toml"
    fi

    # The devices, from the simulators' device lines.
    {
        echo "address,port,user,tls,ssh_port,interval"
        cat "${outs[@]}" |
            sed -n 's/^device \([0-9.]*\) api=\([0-9]*\) api-ssl=[0-9]* ssh=\([0-9]*\) .*/\1,\2,admin,false,\3,'"$INTERVAL"'/p'
    } >"$work/devices.csv"
    (($(wc -l <"$work/devices.csv") == n + 1)) || fail "expected $n device lines from the simulators" "$work/devices.csv"
    local t_import0 t_import1
    t_import0=$(now)
    OUTPOST_ROS_PASSWORD=$PASSWORD "$COLLECTOR" device import --data-dir "$C" --tenant bench --site bench \
        "$work/devices.csv" >"$work/import.out" 2>"$work/import.err" </dev/null \
        || fail "device import failed" "$work/import.err" "$work/import.out"
    t_import1=$(now)
    log "$(head -n 1 "$work/import.out")"

    local t_start t_up
    t_start=$(now)
    "$AGENT" run --data-dir "$A" >"$alog" 2>&1 </dev/null &
    agent_pid=$!
    log "agent pid $agent_pid; waiting for $n devices to be up (at most ${UP_TIMEOUT}s)"
    local up=0 deadline=$(($(date +%s) + UP_TIMEOUT))
    while :; do
        up=$(q "$C" "SELECT count(*) FROM devices WHERE state = 'up'" 2>/dev/null || echo 0)
        [[ $up =~ ^[0-9]+$ ]] || up=0
        ((up >= n)) && break
        kill -0 "$agent_pid" 2>/dev/null || fail "agent exited (up: $up/$n)" "$alog"
        kill -0 "$collector_pid" 2>/dev/null || fail "collector exited (up: $up/$n)" "$clog"
        (($(date +%s) < deadline)) || fail "only $up/$n devices up after ${UP_TIMEOUT}s" "$alog" "$clog"
        sleep 1
    done
    t_up=$(now)
    log "all $n devices up after $(awk -v a="$t_start" -v b="$t_up" 'BEGIN { printf "%.1f", b - a }') s"

    # The window starts on a whole second (samples carry whole seconds).
    local t0 t1 now_s a0 a1 c0 c1 rss max_rss=0 crss max_crss=0 fds max_fds=0
    now_s=$(date +%s)
    t0=$((now_s + 1))
    while (($(date +%s) < t0)); do sleep 0.05; done
    a0=$(cpu_ticks "$agent_pid") || fail "agent exited" "$alog"
    c0=$(cpu_ticks "$collector_pid") || fail "collector exited" "$clog"
    t1=$((t0 + WINDOW))
    while (($(date +%s) < t1)); do
        rss=$(rss_kb "$agent_pid")
        ((rss > max_rss)) && max_rss=$rss
        crss=$(rss_kb "$collector_pid")
        ((crss > max_crss)) && max_crss=$crss
        fds=$(open_fds "$agent_pid" 2>/dev/null || echo 0)
        ((fds > max_fds)) && max_fds=$fds
        kill -0 "$agent_pid" 2>/dev/null || fail "agent exited during the window" "$alog"
        sleep 1
    done
    a1=$(cpu_ticks "$agent_pid") || fail "agent exited" "$alog"
    c1=$(cpu_ticks "$collector_pid") || fail "collector exited" "$clog"
    local agent_threads
    agent_threads=$(awk '/^Threads:/ { print $2 }' "/proc/$agent_pid/status")
    # Let the last polls of the window reach the database.
    sleep 15

    local polls samples late max_gap dur pct
    local series="SELECT id FROM metric_series WHERE metric = 'poll_duration_ms'"
    polls=$(q "$C" "SELECT count(*) FROM metric_raw WHERE series_id IN ($series) AND ts >= $t0 AND ts < $t1")
    samples=$(q "$C" "SELECT count(*) FROM metric_raw WHERE ts >= $t0 AND ts < $t1")
    # A poll is late when it came more than 2 s after one interval from the
    # device's previous poll.
    read -r late max_gap < <(q "$C" "WITH p AS (SELECT ts, ts - lag(ts) OVER (PARTITION BY series_id ORDER BY ts) AS gap \
        FROM metric_raw WHERE series_id IN ($series) AND ts >= $((t0 - 2 * INTERVAL)) AND ts < $t1) \
        SELECT coalesce(sum(gap > $((INTERVAL + 2))), 0), coalesce(max(gap), 0) FROM p WHERE ts >= $t0" | tr '|' ' ')
    dur=$(q "$C" "SELECT count(*), avg(value) FROM metric_raw WHERE series_id IN ($series) AND ts >= $t0 AND ts < $t1" | tr '|' ' ')
    local cnt
    cnt=${dur%% *}
    pct=$(q "$C" "SELECT value FROM metric_raw WHERE series_id IN ($series) AND ts >= $t0 AND ts < $t1 \
        ORDER BY value LIMIT 1 OFFSET $((cnt * 99 / 100))")
    local warns
    warns=$(grep -c ' WARN ' "$alog" || true)
    stop_process "$agent_pid"
    agent_pid=""
    stop_process "$collector_pid"
    collector_pid=""

    # The same poll set by librouteros, against the same devices.
    local py_login="" py_persist=""
    if [[ $PY == 1 ]]; then
        log "librouteros, login per poll (${PY_SECONDS}s budget)"
        py_login=$("$PYVENV/bin/python" "$ROOT/bench/routeros_librouteros.py" --mode login \
            --seconds "$PY_SECONDS" --password "$PASSWORD" "${outs[@]}" 2>"$work/py-login.err") \
            || fail "librouteros (login) failed" "$work/py-login.err"
        log "  $py_login"
        log "librouteros, persistent connections (${PY_SECONDS}s budget)"
        py_persist=$("$PYVENV/bin/python" "$ROOT/bench/routeros_librouteros.py" --mode persistent \
            --seconds "$PY_SECONDS" --password "$PASSWORD" "${outs[@]}" 2>"$work/py-persist.err") \
            || fail "librouteros (persistent) failed" "$work/py-persist.err"
        log "  $py_persist"
    fi
    for p in "${sim_pids[@]}"; do stop_process "$p"; done
    sim_pids=()

    local result
    result=$(awk -v n="$n" -v iv="$INTERVAL" -v w="$WINDOW" -v hz="$CLK_TCK" \
        -v imp="$(awk -v a="$t_import0" -v b="$t_import1" 'BEGIN { print b - a }')" \
        -v upt="$(awk -v a="$t_start" -v b="$t_up" 'BEGIN { print b - a }')" \
        -v polls="$polls" -v samples="$samples" -v late="$late" -v gap="$max_gap" \
        -v avgd="${dur#* }" -v p99="${pct:-0}" \
        -v ac="$((a1 - a0))" -v cc="$((c1 - c0))" -v rss="$max_rss" -v crss="$max_crss" -v fds="$max_fds" \
        -v thr="$agent_threads" -v warns="$warns" -v pl="$py_login" -v pp="$py_persist" '
        function field(json, key,   m) {
            if (match(json, "\"" key "\": [0-9.]+")) { m = substr(json, RSTART, RLENGTH); sub(/.*: /, "", m); return m + 0 }
            return -1
        }
        BEGIN {
            expected = n * w / iv
            acpu = ac / hz; ccpu = cc / hz
            ams = 0; cms = 0
            if (polls > 0) { ams = acpu * 1000 / polls; cms = ccpu * 1000 / polls }
            printf("%6d %8.2f %6.1f %8d %8d %6.1f %5d %5d %8.2f %7.3f %8.3f %7.1f %7.1f %8.3f %9.0f %6d %7.1f %6.0f",
                n, imp, upt, polls, expected, 100 * polls / expected, late, gap, acpu, ams, acpu / w,
                rss / 1024, crss / 1024, cms, samples / w, fds, avgd, p99)
            if (pl != "") {
                lp = field(pl, "polls"); lms = field(pl, "cpu_ms_per_poll")
                pp_ = field(pp, "polls"); pms = field(pp, "cpu_ms_per_poll")
                xl = 0; xp = 0
                if (ams > 0) { xl = lms / ams; xp = pms / ams }
                printf(" %6d/%-6d %8.3f %6d/%-6d %8.3f %7.1f %7.1f", lp, n, lms, pp_, n, pms, xl, xp)
            }
            printf "\n"
        }')
    results+=("$result")
    printf '%s\n' "$result"
    details+=("N=$n: agent threads $agent_threads, agent WARN lines $warns; librouteros login: ${py_login:-skipped}; persistent: ${py_persist:-skipped}")
}

command -v sqlite3 >/dev/null 2>&1 || "$ROOT/scripts/install-deps"
command -v sqlite3 >/dev/null 2>&1 || die "sqlite3 not found"
if [[ $PY == 1 ]]; then "$ROOT/scripts/python-deps"; fi

# Simulators, agent and librouteros each need a descriptor per device
# connection (and the simulators one per listener): as high as allowed.
ulimit -n "$(ulimit -Hn)"
log "open-file limit $(ulimit -n)"

log "building release binaries"
cargo build --release --locked -p outpost-collector -p outpost-agent -p outpost-sim >&2
[[ -x $COLLECTOR && -x $AGENT && -x $SIM ]] || die "release binaries not found in $TARGET_DIR/release"

tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/outpost-bench.XXXXXX")
results=()
details=()
for n in $NS; do
    run_size "$n"
done

commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git -C "$ROOT" diff --quiet HEAD 2>/dev/null; then commit="$commit+dirty"; fi
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
header=$(printf '%6s %8s %6s %8s %8s %6s %5s %5s %8s %7s %8s %7s %7s %8s %9s %6s %7s %6s' \
    N import_s up_s polls expected pct late maxgap agent_s agent_ms ag_core agentMB collMB coll_ms samples/s ag_fds avg_ms p99_ms)
[[ $PY == 1 ]] && header+=$(printf ' %13s %8s %13s %8s %7s %7s' py_login_done login_ms py_pers_done pers_ms x_login x_pers)
summary=$(
    echo "commit $commit, $(nproc) CPUs${cpu_model:+ ($cpu_model)}, $(uname -sr), $(date -u +%Y-%m-%dT%H:%MZ); interval ${INTERVAL}s, window ${WINDOW}s, SQLite"
    printf '%s\n' "$header"
    printf '%s\n' "${results[@]}"
    printf '%s\n' "${details[@]}"
    printf 'reproduce: NS="%s" INTERVAL=%s WINDOW=%s CONCURRENCY="%s" PY_SECONDS=%s bench/routeros.sh\n' \
        "$NS" "$INTERVAL" "$WINDOW" "$CONCURRENCY" "$PY_SECONDS"
)
echo
printf '%s\n' "$summary"
if [[ -n $RESULTS ]]; then
    {
        [[ -s $RESULTS ]] || printf '# Benchmark results\n\nAppended by the bench scripts; newest last.\n'
        printf '\n## routeros.sh\n\n```\n%s\n```\n' "$summary"
    } >>"$RESULTS"
    log "appended the summary to $RESULTS"
fi
