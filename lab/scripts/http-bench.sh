#!/usr/bin/env bash
# HTTP "Hello, world!" served by the lab's http server on each backend, by the
# two reference servers (lab/src/bin/ref_http_mio.rs: bare mio + httparse;
# lab/src/bin/ref_http_epoll.rs: a raw libc epoll loop + httparse; both send the
# example's exact response bytes) and by nginx with one worker when it is
# installed, loaded with wrk over loopback, plain (one request per write) and
# pipelined (DEPTH requests per write, as TechEmpower's plaintext test does).
#
# For every server and mode it prints
#   - requests/s (wrk), the median of ROUNDS rounds; each round runs every
#     server once, in turn, so slow drifts of the machine hit all alike;
#   - the server's CPU time per request: user + system time of the server
#     process (all its threads; nginx: its worker) from /proc/PID/stat,
#     read just before and just after the wrk run, divided by the requests
#     wrk completed; the median over the rounds; and that CPU time over the
#     run's length (busy %): far below 100 %, the server waited for the
#     client, and requests/s is the client's rate, not the server's;
#   - system calls per request: `perf stat -e raw_syscalls:sys_enter -p PID`
#     over a separate SYSCALL_DURATION wrk run (first round only), or, where
#     perf cannot count that event, `strace -c -f -p PID` over that run.
#
#   bash lab/scripts/http-bench.sh                        # 3 rounds of 5 s runs
#   ROUNDS=5 DURATION=10 bash lab/scripts/http-bench.sh
#   SERVERS="http/epoll ref-mio" bash lab/scripts/http-bench.sh
#
# Environment:
#   DURATION          seconds per wrk run (default 5)
#   SYSCALL_DURATION  seconds of the system-call run (default 2; 0: none)
#   ROUNDS            rounds (default 3)
#   CONNECTIONS       wrk connections (default 50)
#   WRK_THREADS       wrk threads (default 1)
#   DEPTH             requests per write in the pipelined runs (default 16)
#   BACKENDS          backends of the example (default "epoll poll select uring")
#   SERVERS           servers to run (default: http/<each backend>, ref-mio,
#                     ref-epoll, nginx)
#   THREADS           reactor threads of the example (default 1, as nginx's
#                     one worker)
#   NGINX             path of nginx (default: found on PATH or /usr/sbin/nginx)
#
# It installs nothing. wrk is required, nginx and perf (or strace) optional:
#   apt-get install wrk nginx-light linux-perf strace
# With two or more CPUs the servers run on CPU 0 and wrk on CPU 1 (taskset),
# so they do not share a core. Everything runs on 127.0.0.1 and stops by
# itself. Exit status 1 if any run saw socket errors or non-2xx responses.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-5}
SYSCALL_DURATION=${SYSCALL_DURATION:-2}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-50}
WRK_THREADS=${WRK_THREADS:-1}
DEPTH=${DEPTH:-16}
BACKENDS=${BACKENDS:-epoll poll select uring}
THREADS=${THREADS:-1}

die() {
    echo "http.sh: $*" >&2
    exit 2
}

command -v wrk >/dev/null 2>&1 ||
    die "wrk is not installed (apt-get install wrk); nginx is optional (apt-get install nginx-light)"
command -v curl >/dev/null 2>&1 || die "curl is not installed (apt-get install curl)"
[[ $DURATION =~ ^[1-9][0-9]*$ && $DURATION -le 600 ]] || die "DURATION must be 1..600 seconds"
[[ $SYSCALL_DURATION =~ ^[0-9]+$ && $SYSCALL_DURATION -le 600 ]] ||
    die "SYSCALL_DURATION must be 0..600 seconds"
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $ROUNDS -le 100 ]] || die "ROUNDS must be 1..100"
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a positive number"
[[ $DEPTH =~ ^[1-9][0-9]*$ ]] || die "DEPTH must be a positive number"

NGINX=${NGINX:-$(command -v nginx 2>/dev/null || true)}
if [[ -z $NGINX && -x /usr/sbin/nginx ]]; then
    NGINX=/usr/sbin/nginx
fi
if [[ -n $NGINX && ! -x $NGINX ]]; then
    die "NGINX=$NGINX is not an executable (leave it unset, or choose servers with SERVERS=...)"
fi

if [[ -z ${SERVERS:-} ]]; then
    SERVERS=""
    for b in $BACKENDS; do
        SERVERS+="http/$b "
    done
    SERVERS+="ref-mio ref-epoll"
    if [[ -n $NGINX ]]; then
        SERVERS+=" nginx"
    else
        echo "   nginx is not installed (apt-get install nginx-light): no nginx row" >&2
    fi
fi
for s in $SERVERS; do
    case $s in
    http/epoll | http/poll | http/select | http/uring | ref-mio | ref-epoll) ;;
    nginx) [[ -n $NGINX ]] || die "SERVERS has nginx, which is not installed" ;;
    *) die "unknown server $s (http/epoll, http/poll, http/select, http/uring, ref-mio, ref-epoll, nginx)" ;;
    esac
done

if [[ $(nproc) -ge 2 ]]; then
    SERVER_CPU=(taskset -c 0)
    CLIENT_CPU=(taskset -c 1)
    PINNING="server on CPU 0, wrk on CPU 1"
else
    SERVER_CPU=()
    CLIENT_CPU=()
    PINNING="one CPU: no pinning"
fi
TICKS=$(getconf CLK_TCK)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tripoll-http-bench.XXXXXX")
# nginx started as root runs its worker as another user, which must reach
# its configuration's directories.
chmod 755 "$TMP"
SERVER_PID=""
COUNTER_PID=""
stop_counter() {
    if [[ -n $COUNTER_PID ]]; then
        kill -INT "$COUNTER_PID" 2>/dev/null || true
        wait "$COUNTER_PID" 2>/dev/null || true
        COUNTER_PID=""
    fi
}
stop_server() {
    stop_counter
    if [[ -n $SERVER_PID ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
cleanup() {
    stop_server
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# How system calls are counted: perf if it can count the tracepoint here.
SYSCALLS=none
if [[ $SYSCALL_DURATION -gt 0 ]]; then
    if command -v perf >/dev/null 2>&1 &&
        perf stat -e raw_syscalls:sys_enter -x, -o "$TMP/perf-probe" -- true >/dev/null 2>&1; then
        SYSCALLS=perf
    elif command -v strace >/dev/null 2>&1; then
        SYSCALLS=strace
    else
        echo "   neither perf nor strace: no system-call counts" >&2
    fi
fi

echo "==> building the http server and the reference servers (release)"
cargo build --quiet --release -p tripoll-lab --features io-uring --bin http --bin ref_http_mio --bin ref_http_epoll
BIN_DIR=${CARGO_TARGET_DIR:-target}/release
for b in http ref_http_mio ref_http_epoll; do
    [[ -x $BIN_DIR/$b ]] || die "$BIN_DIR/$b is missing after the build"
done

# TechEmpower's pipelining script: DEPTH requests in one write.
cat >"$TMP/pipeline.lua" <<'LUA'
init = function(args)
  local depth = tonumber(args[1]) or 1
  local r = {}
  for i = 1, depth do
    r[i] = wrk.format()
  end
  req = table.concat(r)
end

request = function()
  return req
end
LUA

# Waits until the server at $1 answers with the greeting.
await_greeting() {
    local url=$1
    for _ in $(seq 1 100); do
        if [[ $(curl -s --max-time 1 "$url" 2>/dev/null || true) == "Hello, world!" ]]; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# A free TCP port on 127.0.0.1 (for nginx, which cannot take port 0), below
# the ephemeral range, where wrk's own connections cannot hold it.
free_port() {
    local p lo=32768 hi
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    [[ $lo -gt 3000 ]] || lo=32768
    for _ in $(seq 1 100); do
        p=$((2048 + RANDOM % (lo - 2048)))
        if [[ -z $(ss -Htan "( sport = :$p )" 2>/dev/null) ]]; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

# Starts server $1; sets SERVER_PID, URL and MEASURED_PID (the process whose
# CPU time and system calls are counted).
start_server() {
    local name=$1 out=$TMP/server.out err=$TMP/server.err
    : >"$out"
    case $name in
    http/*)
        "${SERVER_CPU[@]}" "$BIN_DIR/http" --backend "${name#http/}" --port 0 --threads "$THREADS" \
            >"$out" 2>"$err" &
        ;;
    ref-mio) "${SERVER_CPU[@]}" "$BIN_DIR/ref_http_mio" --port 0 >"$out" 2>"$err" & ;;
    ref-epoll) "${SERVER_CPU[@]}" "$BIN_DIR/ref_http_epoll" --port 0 >"$out" 2>"$err" & ;;
    nginx)
        start_nginx
        return 0
        ;;
    esac
    SERVER_PID=$!
    MEASURED_PID=$SERVER_PID
    for _ in $(seq 1 100); do
        [[ -s $out ]] && break
        sleep 0.05
    done
    local banner addr
    banner=$(head -n1 "$out")
    [[ $banner == *"listening on "* ]] || {
        cat "$err" >&2
        die "$name did not start"
    }
    addr=${banner#*listening on }
    addr=${addr%% (*}
    URL="http://$addr/"
    await_greeting "$URL" || die "$name never answered \"Hello, world!\" at $URL"
}

# nginx on a free port; another port if the one picked was taken meanwhile.
start_nginx() {
    local try
    for try in 1 2 3 4 5; do
        try_nginx && return 0
        echo "   nginx did not start (try $try): $(tail -n1 "$TMP/nginx.out" 2>/dev/null)" >&2
    done
    die "nginx did not start"
}

try_nginx() {
    local port
    port=$(free_port)
    rm -rf "$TMP/nginx"
    mkdir -p "$TMP/nginx/logs"
    cat >"$TMP/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process on;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    server_tokens off;
    keepalive_requests 100000000;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    server {
        listen 127.0.0.1:$port;
        location / {
            default_type text/plain;
            return 200 "Hello, world!";
        }
    }
}
CONF
    "${SERVER_CPU[@]}" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/logs/error.log" \
        >"$TMP/nginx.out" 2>&1 &
    SERVER_PID=$!
    URL="http://127.0.0.1:$port/"
    if ! await_greeting "$URL"; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
        return 1
    fi
    # The worker serves; the master only waits.
    MEASURED_PID=$(pgrep -P "$SERVER_PID" | head -n1)
    [[ -n $MEASURED_PID ]] || die "no nginx worker under master $SERVER_PID"
}

# User + system clock ticks of process $1 (all its threads).
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# One wrk run against $URL for $1 seconds ("plain" or "piped" in $2);
# prints "requests requests/s" and reports errors on stderr.
run_wrk() {
    local secs=$1 mode=$2 what=$3
    local args=()
    [[ $mode == piped ]] && args=(-s "$TMP/pipeline.lua" -- "$DEPTH")
    local out
    out=$("${CLIENT_CPU[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${secs}s" "$URL" "${args[@]}" 2>&1) ||
        {
            echo "$out" >&2
            die "wrk failed for $what"
        }
    local rps requests errors non2xx
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    requests=$(awk '/ requests in / {print $1}' <<<"$out")
    errors=$(grep -E '^ *Socket errors:' <<<"$out" || true)
    non2xx=$(grep -E '^ *Non-2xx or 3xx responses:' <<<"$out" || true)
    if [[ -n $errors || -n $non2xx ]]; then
        echo "!! $what: ${errors:+$errors }${non2xx}" >&2
        touch "$TMP/failed"
    fi
    echo "${requests:-0} ${rps:-0}"
}

# Requests/s and CPU µs per request of one timed run; appends to the
# server's record.
timed_run() {
    local name=$1 mode=$2 round=$3
    local t0 t1 res requests rps cpu
    t0=$(cpu_ticks "$MEASURED_PID")
    res=$(run_wrk "$DURATION" "$mode" "$name $mode")
    t1=$(cpu_ticks "$MEASURED_PID")
    read -r requests rps <<<"$res"
    cpu=$(awk -v d=$((t1 - t0)) -v t="$TICKS" -v n="$requests" \
        'BEGIN { if (n > 0) printf "%.3f", d / t * 1e6 / n; else print "nan" }')
    # How much of its core the server used: near 100 % it is the
    # bottleneck; far below, requests/s is the client's rate.
    busy=$(awk -v d=$((t1 - t0)) -v t="$TICKS" -v s="$DURATION" 'BEGIN { printf "%.1f", d / t / s * 100 }')
    echo "   round $round: $name $mode: $rps requests/s, $cpu µs CPU per request ($requests requests), server busy $busy %" >&2
    echo "$name $mode $rps $cpu $busy" >>"$TMP/runs"
}

# System calls per request over a separate, shorter run.
syscall_run() {
    local name=$1 mode=$2
    local res requests calls
    case $SYSCALLS in
    perf)
        perf stat -e raw_syscalls:sys_enter -x, -o "$TMP/count" -p "$MEASURED_PID" &
        ;;
    strace)
        strace -c -f -o "$TMP/count" -p "$MEASURED_PID" 2>/dev/null &
        ;;
    *) return 0 ;;
    esac
    COUNTER_PID=$!
    sleep 0.3 # let the counter attach
    res=$(run_wrk "$SYSCALL_DURATION" "$mode" "$name $mode ($SYSCALLS)")
    stop_counter
    read -r requests _ <<<"$res"
    if [[ $SYSCALLS == perf ]]; then
        calls=$(awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$TMP/count")
    else
        calls=$(awk '$NF == "total" {print $(NF-2)}' "$TMP/count")
    fi
    local per
    per=$(awk -v c="${calls:-0}" -v n="$requests" \
        'BEGIN { if (n > 0 && c ~ /^[0-9]+$/) printf "%.3f", c / n; else print "n/a" }')
    echo "   $name $mode: $per system calls per request ($calls over $requests requests, $SYSCALLS)" >&2
    echo "$name $mode $per" >>"$TMP/syscalls"
}

echo "==> load average before: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"
echo "==> $ROUNDS rounds of wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s, plain and pipelined x$DEPTH;" \
    "system calls: $SYSCALLS over ${SYSCALL_DURATION}s; $PINNING"
: >"$TMP/runs"
: >"$TMP/syscalls"
for round in $(seq 1 "$ROUNDS"); do
    for name in $SERVERS; do
        start_server "$name"
        if [[ $round == 1 && $name == nginx ]]; then
            echo "   nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //') on $URL, one worker" >&2
        elif [[ $round == 1 ]]; then
            echo "   $name: $(head -n1 "$TMP/server.out")" >&2
        fi
        for mode in plain piped; do
            timed_run "$name" "$mode" "$round"
            if [[ $round == 1 ]]; then
                syscall_run "$name" "$mode"
            fi
        done
        stop_server
    done
done

# The median of a list of numbers.
median() {
    tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "n/a"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

cell() { # server mode column (3: requests/s, 4: CPU µs per request, 5: busy %)
    awk -v s="$1" -v m="$2" -v c="$3" '$1 == s && $2 == m { printf "%s ", $c }' "$TMP/runs" | median
}
calls() {
    awk -v s="$1" -v m="$2" '$1 == s && $2 == m { print $3 }' "$TMP/syscalls" | head -n1
}

echo "==> load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s, $PINNING; median of $ROUNDS rounds;"
echo "CPU = server user+system µs per request; busy = the server's CPU time / the run's length"
echo "(well below 100 %: the client, not the server, set the rate); syscalls per request"
echo "from a ${SYSCALL_DURATION}s run ($SYSCALLS)"
echo
echo "| server | plain req/s | CPU µs/req | busy % | syscalls/req | pipelined x$DEPTH req/s | CPU µs/req | busy % | syscalls/req |"
echo "|---|---|---|---|---|---|---|---|---|"
for name in $SERVERS; do
    printf '| %s | %.0f | %s | %s | %s | %.0f | %s | %s | %s |\n' "$name" \
        "$(cell "$name" plain 3)" "$(cell "$name" plain 4)" "$(cell "$name" plain 5)" "$(calls "$name" plain || true)" \
        "$(cell "$name" piped 3)" "$(cell "$name" piped 4)" "$(cell "$name" piped 5)" "$(calls "$name" piped || true)"
done
if [[ -e $TMP/failed ]]; then
    echo "http.sh: some runs saw socket errors or non-2xx responses" >&2
    exit 1
fi
