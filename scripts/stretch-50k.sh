#!/usr/bin/env bash
# Stretch run: 50 000 concurrent TCP connections through the epoll backend.
#
# Runs the ignored test `stretch_50k_epoll` of tests/scale.rs in release
# mode: one echo server process on epoll (edge-triggered) and five client
# processes bound to 127.0.0.2 .. 127.0.0.6 (one source address has only
# about 28 000 ephemeral ports towards one server port), 10 000 connections
# each, every connection open at once, two messages echoed on each and
# checked byte for byte.
#
# Needs: a hard RLIMIT_NOFILE of at least connections + 200 for the server
# process (root with CAP_SYS_RESOURCE can raise it; this script tries), and
# the whole of 127.0.0.0/8 on the loopback interface (Linux's default).
#
# Usage: scripts/stretch-50k.sh            # 50 000 connections
#        TRIPOLL_STRETCH_CONNS=15000 scripts/stretch-50k.sh   # a multiple of 5
set -euo pipefail
cd "$(dirname "$0")/.."

conns="${TRIPOLL_STRETCH_CONNS:-50000}"
if (( conns % 5 != 0 || conns / 5 > 18000 )); then
    echo "stretch: TRIPOLL_STRETCH_CONNS must be a multiple of 5, at most 90000" >&2
    exit 2
fi
need=$((conns + 200))
hard=$(ulimit -Hn)
if [[ "$hard" != unlimited ]] && (( hard < need )); then
    if ! ulimit -Hn "$need" 2>/dev/null; then
        echo "stretch: the server needs $need descriptors but the hard limit is $hard" >&2
        echo "stretch: and cannot be raised here (no CAP_SYS_RESOURCE)." >&2
        echo "stretch: run as root on a machine that allows it, or with" >&2
        echo "stretch: TRIPOLL_STRETCH_CONNS=$(( (hard - 200) / 5 * 5 )) to fit this limit." >&2
        exit 2
    fi
fi
ulimit -Sn "$need"

export TRIPOLL_STRETCH_CONNS="$conns"
start=$(date +%s)
cargo test --release --test scale -- --ignored --exact stretch_50k_epoll --nocapture
echo "stretch: $conns connections passed in $(( $(date +%s) - start )) s (build included)"
