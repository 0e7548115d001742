#!/usr/bin/env bash
# Direct-vs-gateway benchmark of azproxy: one Markdown table on stdout and in
# bench/results/latest.md.
#
#   bench/run.sh PYTHON [--quick] [--streams N] [--idle-streams N] [...]
#
# PYTHON is a Python with azproxy installed (`pip install -e .`) and bench/requirements.txt;
# `make bench` passes its venv's. Every other argument goes to bench/bench.py (--help there).
# Installs nginx and wrk from Debian's packages if they are missing, and says so.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${1:-}"
if [[ -z "$python" || "$python" == -* ]]; then
    echo "usage: bench/run.sh PYTHON [--quick] [--streams N] [--idle-streams N]" >&2
    exit 2
fi
shift

if ! "$python" -c 'import azproxy, aiohttp' 2>/dev/null; then
    echo "bench: $python cannot import azproxy and aiohttp; run 'pip install -e . -r bench/requirements.txt' first" >&2
    exit 2
fi

# --- tools from Debian -------------------------------------------------------------------
as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "bench: need root (or sudo) to run: $*" >&2
        return 1
    fi
}

missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
if ((${#missing[@]})); then
    echo "bench: installing ${missing[*]} from Debian's packages (apt-get install -y ${missing[*]})"
    # Debian's nginx package starts a system nginx on port 80 when installed; a policy-rc.d
    # that refuses service starts prevents that, and is removed straight after.
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [[ ! -e $policy ]]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
        made_policy=1
    fi
    status=0
    as_root apt-get update -qq || status=$?
    if ((status == 0)); then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null || status=$?
    fi
    if ((made_policy)); then
        as_root rm -f "$policy"
    fi
    if ((status != 0)); then
        echo "bench: could not install ${missing[*]} (apt-get exit $status)" >&2
        exit 1
    fi
    echo "bench: installed ${missing[*]}"
fi
export PATH="$PATH:/usr/sbin:/sbin"

# --- limits and clean-up -----------------------------------------------------------------
# 10,000 idle streams need ~20,000 descriptors in the gateway and 10,000 in each peer.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < 30000)); then
    echo "bench: warning: open-file limit is $(ulimit -n); the idle-stream row may fail" >&2
fi

# bench.py starts every process in its own process group and records its pid here; it stops
# them itself, and this trap stops whatever is left if bench.py itself dies.
pids_dir="$(mktemp -d -t azproxy-bench-pids.XXXXXX)"
cleanup() {
    local file pid
    for file in "$pids_dir"/*; do
        [[ -e "$file" ]] || continue
        pid="$(cat "$file")"
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    sleep 0.5
    for file in "$pids_dir"/*; do
        [[ -e "$file" ]] || continue
        pid="$(cat "$file")"
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$pids_dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

BENCH_PIDS_DIR="$pids_dir" "$python" "$here/bench.py" "$@"
