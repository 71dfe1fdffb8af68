#!/usr/bin/env bash
# Soak test of the lab's echo and http servers (not CI): mixed load on each
# backend, loopback only, bounded in time, stops by itself.
#
#   lab/scripts/soak.sh                 # 800 s in all: 8 runs of 100 s
#   SOAK_SECONDS=80 lab/scripts/soak.sh # a quick pass
#
# Each run starts one server (echo on epoll and on io_uring in edge mode, on poll in oneshot
# mode, on select in level mode; http on each backend with 2 threads),
# drives it with a mix of clients for its share of
# the time, then checks:
#   - good clients: every byte echoed back in order, every HTTP response
#     complete and correct (no lost or corrupted byte);
#   - after the load: the server's descriptor count back to its baseline
#     and its resident memory within 16 MiB of its baseline (freed memory
#     the allocator keeps is allowed for, nothing more);
#   - no log flood: under 64 KiB of stderr;
#   - SIGINT ends it with status 0.
# The load, per run, all at once: 6 good clients, 2 slow readers, resets
# (connections closed with a reset mid-stream), 40 slowloris connections
# (a byte a second), connection churn, and pipelined floods (echo: 1 MiB
# bursts read back concurrently; http: 5 000 pipelined requests a batch).
# Prints one line per run and a verdict; exits 1 if any check failed.
set -euo pipefail
cd "$(dirname "$0")/../.."

TOTAL=${SOAK_SECONDS:-800}
RUNS=8
PER_RUN=$(( TOTAL / RUNS ))
(( PER_RUN >= 10 )) || { echo "SOAK_SECONDS must be at least $(( RUNS * 10 ))" >&2; exit 2; }

cargo build --release --quiet -p tripoll-lab --features io-uring --bin echo --bin http
BIN=${CARGO_TARGET_DIR:-target}/release
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

failed=0
run() { # name, args...
    local name=$1; shift
    local kind=${name%%-*}
    "$BIN/$kind" --port 0 "$@" >"$WORK/out" 2>"$WORK/err" &
    local pid=$!
    local port=""
    for _ in $(seq 100); do
        port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/out")
        [[ -n $port ]] && break
        sleep 0.1
    done
    if [[ -z $port ]]; then
        echo "$name: FAIL: the server did not start: $(cat "$WORK/err")"
        kill "$pid" 2>/dev/null || true
        failed=1
        return
    fi
    local verdict=0
    python3 - "$kind" "$port" "$pid" "$PER_RUN" "$WORK/err" >"$WORK/report" 2>&1 <<'PY' || verdict=1
import os, random, socket, struct, sys, threading, time

kind, port, pid, seconds, errfile = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
ADDR = ("127.0.0.1", port)
stop = threading.Event()
lock = threading.Lock()
stats = {"good_bytes": 0, "good_exchanges": 0, "bad": [], "resets": 0, "churn": 0,
         "slow_bytes": 0, "flood_bytes": 0, "pipelined": 0, "slowloris": 0}

def note(key, n=1):
    with lock:
        stats[key] += n

def bad(msg):
    with lock:
        if len(stats["bad"]) < 20:
            stats["bad"].append(msg)

def fds():
    return len(os.listdir(f"/proc/{pid}/fd"))

def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0

def connect(timeout=30):
    s = socket.create_connection(ADDR, timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def pattern(seed, n):
    r = random.Random(seed)
    return r.randbytes(n)

def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(min(n - len(buf), 1 << 16))
        if not chunk:
            raise EOFError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)

GET = b"GET /soak HTTP/1.1\r\nHost: soak\r\n\r\n"

def read_responses(s, count, buf=b""):
    """Reads `count` complete 'Hello, world!' responses; returns leftover."""
    got = 0
    while got < count:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            chunk = s.recv(1 << 16)
            if not chunk:
                raise EOFError(f"closed after {got} of {count} responses")
            buf += chunk
            continue
        head = buf[:end].decode("latin-1")
        if not head.startswith("HTTP/1.1 200 OK"):
            raise ValueError(f"bad status line: {head[:40]!r}")
        length = None
        for line in head.split("\r\n")[1:]:
            k, _, v = line.partition(":")
            if k.lower() == "content-length":
                length = int(v)
        if length != 13:
            raise ValueError(f"bad Content-Length: {length}")
        while len(buf) < end + 4 + length:
            chunk = s.recv(1 << 16)
            if not chunk:
                raise EOFError("closed in a body")
            buf += chunk
        if buf[end + 4:end + 4 + length] != b"Hello, world!":
            raise ValueError("corrupted body")
        buf = buf[end + 4 + length:]
        got += 1
    return buf

def good(i):
    r = random.Random(i)
    while not stop.is_set():
        try:
            s = connect()
            for k in range(r.randint(1, 50)):
                if stop.is_set():
                    break
                if kind == "echo":
                    msg = pattern((i, k, time.time_ns()).__hash__(), r.choice([1, 17, 1000, 65536, 200000]))
                    s.sendall(msg)
                    back = recv_exact(s, len(msg))
                    if back != msg:
                        bad(f"good {i}: corrupted echo of {len(msg)} bytes")
                    note("good_bytes", len(msg))
                else:
                    n = r.choice([1, 1, 3, 20])
                    s.sendall(GET * n)
                    read_responses(s, n)
                    note("good_bytes", n * len(GET))
                note("good_exchanges")
            s.close()
        except Exception as e:
            bad(f"good {i}: {type(e).__name__}: {e}")
            time.sleep(0.1)

def slow_reader(i):
    while not stop.is_set():
        try:
            s = connect(timeout=60)
            if kind == "echo":
                msg = pattern(i * 7919 + int(time.time()), 2 << 20)
                t = threading.Thread(target=lambda: s.sendall(msg))
                t.start()
                got = bytearray()
                while len(got) < len(msg):
                    time.sleep(0.02)
                    chunk = s.recv(16384)
                    if not chunk:
                        raise EOFError("closed")
                    got += chunk
                t.join()
                if bytes(got) != msg:
                    bad(f"slow reader {i}: corrupted")
                note("slow_bytes", len(got))
            else:
                s.sendall(GET * 2000)
                buf = b""
                got = 0
                while got < 2000:
                    time.sleep(0.02)
                    buf = read_responses(s, 50, buf)
                    got += 50
                note("slow_bytes", 2000 * len(GET))
            s.close()
        except Exception as e:
            bad(f"slow reader {i}: {type(e).__name__}: {e}")
            time.sleep(0.1)

def resets():
    while not stop.is_set():
        try:
            s = connect()
            s.sendall(GET * 100 if kind == "http" else os.urandom(300000))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            note("resets")
        except OSError:
            pass
        time.sleep(0.01)

def slowloris():
    conns = []
    while not stop.is_set():
        try:
            while len(conns) < 40:
                conns.append(connect())
            for c in list(conns):
                try:
                    c.send(b"G" if kind == "http" else b"x")
                except OSError:
                    conns.remove(c)  # the idle timeout cut it: right
            note("slowloris")
        except OSError:
            pass
        stop.wait(1.0)
    for c in conns:
        c.close()

def churn():
    while not stop.is_set():
        try:
            s = connect()
            if kind == "echo":
                s.sendall(b"ping")
                if recv_exact(s, 4) != b"ping":
                    bad("churn: corrupted")
            else:
                s.sendall(GET)
                read_responses(s, 1)
            s.close()
            note("churn")
        except Exception as e:
            bad(f"churn: {type(e).__name__}: {e}")
            time.sleep(0.1)

def flood(i):
    while not stop.is_set():
        try:
            s = connect(timeout=60)
            if kind == "echo":
                msg = pattern(i + int(time.time() * 1000), 1 << 20)
                t = threading.Thread(target=lambda: s.sendall(msg))
                t.start()
                back = recv_exact(s, len(msg))
                t.join()
                if back != msg:
                    bad(f"flood {i}: corrupted")
                note("flood_bytes", len(msg))
            else:
                t = threading.Thread(target=lambda: s.sendall(GET * 5000))
                t.start()
                read_responses(s, 5000)
                t.join()
                note("pipelined", 5000)
            s.close()
        except Exception as e:
            bad(f"flood {i}: {type(e).__name__}: {e}")
            time.sleep(0.1)

time.sleep(0.2)
base_fds, base_rss = fds(), rss()
workers = [threading.Thread(target=good, args=(i,)) for i in range(6)]
workers += [threading.Thread(target=slow_reader, args=(i,)) for i in range(2)]
workers += [threading.Thread(target=resets), threading.Thread(target=slowloris),
            threading.Thread(target=churn)]
workers += [threading.Thread(target=flood, args=(i,)) for i in range(2)]
for w in workers:
    w.daemon = True
    w.start()
peak_rss, peak_fds = base_rss, base_fds
end = time.time() + seconds
while time.time() < end:
    time.sleep(1)
    peak_rss, peak_fds = max(peak_rss, rss()), max(peak_fds, fds())
stop.set()
for w in workers:
    w.join(timeout=90)
hung = [w.name for w in workers if w.is_alive()]
# Back to baseline: the server closes what the clients closed (the http
# idle timeout is 10 s, so allow 30 s).
deadline = time.time() + 30
while time.time() < deadline and fds() > base_fds:
    time.sleep(0.2)
end_fds, end_rss = fds(), rss()
log = os.path.getsize(errfile)
problems = list(stats["bad"])
if hung:
    problems.append(f"clients hung: {hung}")
if stats["good_exchanges"] == 0:
    problems.append("no good exchange at all")
if end_fds > base_fds:
    problems.append(f"descriptors {base_fds} -> {end_fds}")
if end_rss > base_rss + (16 << 20):
    problems.append(f"RSS {base_rss >> 20} -> {end_rss >> 20} MiB")
if log > 64 << 10:
    problems.append(f"log flood: {log} bytes of stderr")
mib = lambda n: f"{n / (1 << 20):.1f}"
print(f"good {mib(stats['good_bytes'])} MiB in {stats['good_exchanges']} exchanges, "
      f"slow readers {mib(stats['slow_bytes'])} MiB, floods {mib(stats['flood_bytes'])} MiB / "
      f"{stats['pipelined']} pipelined, resets {stats['resets']}, churn {stats['churn']}, "
      f"fds {base_fds}->{peak_fds}->{end_fds}, RSS {mib(base_rss)}->{mib(peak_rss)}->{mib(end_rss)} MiB, "
      f"log {log} B")
for p in problems:
    print("  FAIL:", p)
sys.exit(1 if problems else 0)
PY
    sed "s/^/$name: /" "$WORK/report"
    kill -INT "$pid"
    local status=0
    wait "$pid" || status=$?
    if (( status != 0 )); then
        echo "$name: FAIL: exit status $status after SIGINT; stderr: $(tail -c 2000 "$WORK/err")"
        verdict=1
    fi
    if (( verdict != 0 )); then
        failed=1
    fi
}

run echo-epoll-edge --backend epoll --mode edge
run echo-poll-oneshot --backend poll --mode oneshot
run echo-select-level --backend select --mode level
run http-epoll --backend epoll --threads 2
run http-poll --backend poll --threads 2
run http-select --backend select --threads 2
run echo-uring-edge --backend uring --mode edge
run http-uring --backend uring --threads 2

if (( failed != 0 )); then
    echo "soak: FAILED"
    exit 1
fi
echo "soak: passed (${TOTAL} s)"
