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

