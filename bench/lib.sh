# Shared by the bench scripts: sourced, not run. The sourcing script sets
# ROOT, KEEP and tmpdir, and defines `log`, `die` and `stop_all` (which stops
# whatever it started); this file provides the rest.

# Stops a background process: SIGTERM, up to 10 s grace, then SIGKILL.
stop_process() {
    local pid=$1 i
    [[ -n $pid ]] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "process $pid did not exit after SIGTERM; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# On exit: stop everything, then remove (or keep, KEEP=1) the temporary directory.
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_all
    if [[ -n $tmpdir && -d $tmpdir ]]; then
        if [[ $KEEP == 1 ]]; then
            log "kept $tmpdir"
        else
            rm -rf -- "$tmpdir"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() {
    local file=$1
    if [[ -f $file ]]; then
        log "last lines of $file:"
        tail -n 40 "$file" | sed 's/^/    /' >&2
    fi
}

fail() {
    local msg=$1
    shift
    local f
    for f in "$@"; do show_log "$f"; done
    die "$msg"
}

now() {
    # Wall clock in seconds with microseconds (bash 5 has EPOCHREALTIME).
    if [[ -n ${EPOCHREALTIME:-} ]]; then
        printf '%s\n' "${EPOCHREALTIME/,/.}"
    else
        date +%s.%N
    fi
}

# utime + stime of a process, in clock ticks.
cpu_ticks() {
    local stat rest
    stat=$(<"/proc/$1/stat") || return 1
    rest=${stat##*) }
    local -a f
    read -ra f <<<"$rest"
    # rest starts at field 3 (state); utime and stime are fields 14 and 15.
    echo $((f[11] + f[12]))
}

# Number of stored samples, or empty if the query failed (e.g. database busy).
count_rows() {
    local engine=$1 dir=$2 url=$3
    case $engine in
        sqlite)
            sqlite3 -readonly -cmd '.timeout 5000' "$dir/outpost.db" \
                'SELECT count(*) FROM metric_samples' 2>/dev/null || true
            ;;
        postgres)
            psql -X -Atq "$url" -c 'SELECT count(*) FROM metric_samples' 2>/dev/null || true
            ;;
    esac
}

# The agent port announced in the collector log ("agent port listening on
# 127.0.0.1:PORT"), or nothing yet. The log may not exist yet.
agent_port_from_log() {
    [[ -f $1 ]] || return 0
    sed -e 's/\x1b\[[0-9;]*m//g' "$1" 2>/dev/null \
        | sed -n -e 's/.*agent port listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' \
        | sed -n -e 1p || true
}
