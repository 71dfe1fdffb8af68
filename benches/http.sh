#!/usr/bin/env bash
# HTTP "Hello, world!" throughput: the http example on each backend, and
# nginx with one worker when it is installed, measured with wrk over
# loopback, plain (one request per write) and pipelined (16 requests per
# write, as TechEmpower's plaintext test does). Prints one table.
#
#   bash benches/http.sh                 # 5 s per run
#   DURATION=10 CONNECTIONS=100 bash benches/http.sh
#
# Environment:
#   DURATION     seconds per wrk run (default 5)
#   CONNECTIONS  wrk connections (default 50)
#   WRK_THREADS  wrk threads (default 1)
#   DEPTH        requests per write in the pipelined runs (default 16)
#   BACKENDS     backends of the example to measure (default "epoll poll select uring")
#   THREADS      reactor threads of the example (default 1, as nginx's one worker)
#   NGINX        path of nginx (default: found on PATH or /usr/sbin/nginx)
#
# It installs nothing. wrk is required and nginx optional:
#   apt-get install wrk nginx-light
# With two or more CPUs the servers run on CPU 0 and wrk on CPU 1 (taskset),
# so they do not share a core. Everything runs on 127.0.0.1 and stops by
# itself. Exit status 1 if any run saw socket errors or non-2xx responses.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
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
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a positive number"
[[ $DEPTH =~ ^[1-9][0-9]*$ ]] || die "DEPTH must be a positive number"

NGINX=${NGINX:-$(command -v nginx 2>/dev/null || true)}
if [[ -z $NGINX && -x /usr/sbin/nginx ]]; then
    NGINX=/usr/sbin/nginx
fi

if [[ $(nproc) -ge 2 ]]; then
    SERVER_CPU=(taskset -c 0)
    CLIENT_CPU=(taskset -c 1)
    PINNING="server on CPU 0, wrk on CPU 1"
else
    SERVER_CPU=()
    CLIENT_CPU=()
    PINNING="one CPU: no pinning"
fi

echo "==> building the http example (release)"
cargo build --quiet --release --features io-uring --example http
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$TARGET_DIR/release/examples/http
[[ -x $BIN ]] || die "$BIN is missing after the build"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/tripoll-http-bench.XXXXXX")
SERVER_PID=""
stop_server() {
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
    die "$url never answered \"Hello, world!\""
}

# A free TCP port on 127.0.0.1 (for nginx, which cannot take port 0).
free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 40000))
        if [[ -z $(ss -Htln "sport = :$p" 2>/dev/null) ]]; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

ROWS=()

# Runs wrk against $2 (label $1), plain then pipelined, and adds a row.
measure() {
    local label=$1 url=$2
    local plain piped
    plain=$(run_wrk "$label plain" "$url")
    piped=$(run_wrk "$label pipelined x$DEPTH" "$url" -s "$TMP/pipeline.lua" -- "$DEPTH")
    ROWS+=("$(printf '%-16s %16s %18s' "$label" "$plain" "$piped")")
}

# One wrk run; prints requests/s on stdout, reports errors on stderr.
run_wrk() {
    local what=$1 url=$2
    shift 2
    local out
    out=$("${CLIENT_CPU[@]}" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "$url" "$@" 2>&1) ||
        {
            echo "$out" >&2
            die "wrk failed for $what"
        }
    echo "$out" >"$TMP/wrk-${what//[^A-Za-z0-9]/_}.txt"
    local rps errors non2xx
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    errors=$(grep -E '^ *Socket errors:' <<<"$out" || true)
    non2xx=$(grep -E '^ *Non-2xx or 3xx responses:' <<<"$out" || true)
    if [[ -n $errors || -n $non2xx ]]; then
        echo "!! $what: ${errors:+$errors }${non2xx}" >&2
        touch "$TMP/failed"
        echo "${rps:-?}!"
    else
        echo "   $what: $rps requests/s, no socket errors, all 2xx" >&2
        echo "${rps:-?}"
    fi
}

echo "==> wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s, pipelined depth $DEPTH; $PINNING"

for backend in $BACKENDS; do
    "${SERVER_CPU[@]}" "$BIN" --backend "$backend" --port 0 --threads "$THREADS" \
        >"$TMP/http-$backend.out" 2>"$TMP/http-$backend.err" &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        [[ -s $TMP/http-$backend.out ]] && break
        sleep 0.05
    done
    banner=$(head -n1 "$TMP/http-$backend.out")
    [[ $banner == "http: listening on "* ]] || {
        cat "$TMP/http-$backend.err" >&2
        die "the example did not start on $backend"
    }
    addr=${banner#http: listening on }
    addr=${addr%% (*}
    url="http://$addr/"
    await_greeting "$url"
    echo "$banner" >&2
    measure "http/$backend" "$url"
    stop_server
    tail -n1 "$TMP/http-$backend.err" >&2
done

if [[ -n $NGINX ]]; then
    port=$(free_port)
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
    await_greeting "http://127.0.0.1:$port/"
    echo "nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //') on 127.0.0.1:$port, one worker" >&2
    measure "nginx (1 worker)" "http://127.0.0.1:$port/"
    stop_server
else
    echo "   nginx is not installed (apt-get install nginx-light): no nginx row" >&2
fi

echo
echo "requests/s, wrk -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s ($PINNING; ! = errors, see above)"
printf '%-16s %16s %18s\n' "server" "plain" "pipelined x$DEPTH"
printf '%-16s %16s %18s\n' "------" "-----" "------------"
for row in "${ROWS[@]}"; do
    echo "$row"
done
if [[ -e $TMP/failed ]]; then
    echo "http.sh: some runs saw socket errors or non-2xx responses" >&2
    exit 1
fi
