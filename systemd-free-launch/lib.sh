# Shared by start, stop, status and logs (POSIX sh; sourced, not run).
#
# Where things live, by flag or environment (flags win):
#   --home DIR     / ASSAY_HOME      launcher state: assay.pid, console.log, run-dir, results/
#                                    (default: ./assay-home)
#   --run-dir DIR  / ASSAY_RUN_DIR   the soak's results directory (default: the one the last
#                                    `start` recorded in $ASSAY_HOME/run-dir)
#   ASSAY_PYTHON   python for reading results (default: python3)

ASSAY_HOME=${ASSAY_HOME:-$PWD/assay-home}
RUN_DIR_OVERRIDE=${ASSAY_RUN_DIR:-}
PY=${ASSAY_PYTHON:-python3}
HERE=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
REPO=$(dirname -- "$HERE")

die() { echo "$PROG: $*" >&2; exit 2; }

# The script's leading comment block is its help text.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

# Consume the common flags; leaves the rest in REST_ARGS handling to the caller via OPTIND-like
# shifting: call `common_flag "$@"` and shift by $SHIFT when it returns 0.
common_flag() {
    SHIFT=0
    case "$1" in
        --home) [ $# -ge 2 ] || die "--home needs a directory"; ASSAY_HOME=$2; SHIFT=2 ;;
        --home=*) ASSAY_HOME=${1#--home=}; SHIFT=1 ;;
        --run-dir)
            [ $# -ge 2 ] || die "--run-dir needs a directory"
            RUN_DIR_OVERRIDE=$2; SHIFT=2 ;;
        --run-dir=*) RUN_DIR_OVERRIDE=${1#--run-dir=}; SHIFT=1 ;;
        *) return 1 ;;
    esac
    return 0
}

paths() {
    PIDFILE=$ASSAY_HOME/assay.pid
    CONSOLE=$ASSAY_HOME/console.log
    RUN_DIR_FILE=$ASSAY_HOME/run-dir
}

# The coordinator's pid if it is alive, else empty.
live_pid() { pid_in_file "$PIDFILE" -e coordinator -e assay; }

# pid_in_file FILE GREP-PATTERNS...: the pid in FILE if that process is alive and its
# command line matches (a recycled pid is not ours), else empty.
pid_in_file() {
    pidfile=$1
    shift
    [ -f "$pidfile" ] || return 0
    pid=$(cat "$pidfile" 2>/dev/null) || return 0
    case "$pid" in ''|*[!0-9]*) return 0 ;; esac
    if kill -0 "$pid" 2>/dev/null; then
        if [ -r "/proc/$pid/cmdline" ] &&
            ! tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$@"; then
            return 0
        fi
        echo "$pid"
    fi
}

run_dir() {
    if [ -n "$RUN_DIR_OVERRIDE" ]; then
        echo "$RUN_DIR_OVERRIDE"
    elif [ -s "$RUN_DIR_FILE" ]; then
        head -n 1 "$RUN_DIR_FILE"
    fi
}
