#!/usr/bin/env python3
"""User-space instructions per HTTP request, per server, under callgrind.

Requests per second on a shared two-core machine move with the client and
the neighbours; the instructions a server executes per request do not. This
starts each server under `valgrind --tool=callgrind`, sends it a warm-up
from a deterministic client in this script (one connection, batches of
DEPTH pipelined requests, each batch sent with one write and answered in
full before the next), zeroes callgrind's counters (`callgrind_control
-z`), sends a fixed number of requests the same way, dumps the counters
(`callgrind_control -d`) and divides the instructions by the requests.
Start-up and shutdown are not counted; the server's waits, reads, parsing
and writes are. Kernel work is not counted (callgrind sees user space
only): `lab/scripts/http-bench.sh` reports system calls and CPU time per request.

The requests are wrk's (`GET / HTTP/1.1` and a `Host` field); every
response is checked: status 200, the `Content-Length` body "Hello, world!".

  python3 lab/scripts/bench-http-instructions.py                 # every server, depth 1 and 16
  python3 lab/scripts/bench-http-instructions.py --requests 4000 --depth 16 http/epoll ref-mio
  python3 lab/scripts/bench-http-instructions.py --annotate 15 http/epoll   # plus the top functions

Servers: http/epoll, http/poll, http/select (the example), ref-mio
(lab/src/bin/ref_http_mio.rs), ref-epoll (lab/src/bin/ref_http_epoll.rs). Needs
valgrind and the lab's release binaries (`cargo build --release -p tripoll-lab --bin http
--bin ref_http_mio --bin ref_http_epoll`; this script runs that
build). Python 3 standard library only.
"""

import argparse
import glob
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

SERVERS = {
    "http/epoll": ("http", ["--backend", "epoll", "--port", "0"]),
    "http/poll": ("http", ["--backend", "poll", "--port", "0"]),
    "http/select": ("http", ["--backend", "select", "--port", "0"]),
    "ref-mio": ("ref_http_mio", ["--port", "0"]),
    "ref-epoll": ("ref_http_epoll", ["--port", "0"]),
}
GREETING = b"Hello, world!"
PATIENCE = 120.0


def start(exe, args, outdir):
    """The server under callgrind, and its address from its first line."""
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--vgdb=yes",
         f"--callgrind-out-file={outdir}/callgrind.out.%p", exe] + args,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    m = re.search(r"listening on (\S+):(\d+)", line)
    if not m:
        proc.kill()
        proc.wait()
        sys.exit(f"{exe}: no address in its first line {line!r}")
    return proc, (m.group(1), int(m.group(2)))


class Client:
    """One connection sending batches of pipelined requests."""

    def __init__(self, addr):
        self.sock = socket.create_connection(addr, timeout=PATIENCE)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = f"GET / HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\n\r\n".encode()
        self.buf = b""

    def run(self, requests, depth):
        left = requests
        while left > 0:
            n = min(depth, left)
            self.sock.sendall(self.request * n)
            for _ in range(n):
                self.response()
            left -= n

    def response(self):
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = self.buf[:end].decode("latin-1")
                m = re.search(r"\r\ncontent-length: *(\d+)", head, re.I)
                if not head.startswith("HTTP/1.1 200 ") or not m:
                    sys.exit(f"unexpected response head {head!r}")
                total = end + 4 + int(m.group(1))
                if len(self.buf) >= total:
                    body = self.buf[end + 4:total]
                    if body != GREETING:
                        sys.exit(f"unexpected body {body!r}")
                    self.buf = self.buf[total:]
                    return
            chunk = self.sock.recv(65536)
            if not chunk:
                sys.exit("the server closed the connection")
            self.buf += chunk

    def close(self):
        self.sock.close()


def callgrind_control(flag, pid):
    subprocess.run(["callgrind_control", flag, str(pid)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=PATIENCE)


def totals(path):
    with open(path) as f:
        for line in f:
            m = re.match(r"(?:summary|totals): (\d+)", line)
            if m:
                return int(m.group(1))
    sys.exit(f"{path}: no totals line")


def measure(exe, args, requests, depth, warmup, annotate):
    """Instructions per request, and the top functions if asked."""
    with tempfile.TemporaryDirectory() as tmp:
        proc, addr = start(exe, args, tmp)
        try:
            client = Client(addr)
            client.run(warmup, depth)
            callgrind_control("-z", proc.pid)
            client.run(requests, depth)
            before = set(glob.glob(f"{tmp}/callgrind.out.{proc.pid}.*"))
            callgrind_control("-d", proc.pid)
            deadline = time.monotonic() + PATIENCE
            while True:
                dumps = set(glob.glob(f"{tmp}/callgrind.out.{proc.pid}.*")) - before
                if dumps:
                    break
                if time.monotonic() > deadline:
                    sys.exit("callgrind wrote no dump")
                time.sleep(0.05)
            dump = dumps.pop()
            time.sleep(0.2)  # let callgrind finish writing the file
            client.close()
            total = totals(dump)
            top = ""
            if annotate:
                out = subprocess.run(
                    ["callgrind_annotate", "--inclusive=no", "--threshold=100", dump],
                    capture_output=True, text=True, check=True).stdout
                # Zeroing mid-call leaves the frames that were live charged
                # with everything (100 %): not a function's own cost.
                lines = [l for l in out.splitlines()
                         if re.match(r"\s*[\d,]+ \(", l) and "(100.0%)" not in l]
                top = "\n".join(lines[:annotate])
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=PATIENCE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return total / requests, top


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("servers", nargs="*", default=list(SERVERS),
                    help="servers to measure (default: all): " + ", ".join(SERVERS))
    ap.add_argument("--requests", type=int, default=8000, help="requests counted (default 8000)")
    ap.add_argument("--warmup", type=int, default=512, help="requests before counting (default 512)")
    ap.add_argument("--depth", type=int, action="append",
                    help="requests per write; repeatable (default: 1 and 16)")
    ap.add_argument("--annotate", type=int, default=0, metavar="N",
                    help="also print the N functions with the most instructions (self)")
    args = ap.parse_args()
    depths = args.depth or [1, 16]
    for s in args.servers:
        if s not in SERVERS:
            sys.exit(f"unknown server {s!r}: expected one of {', '.join(SERVERS)}")
    if args.requests < 1 or any(d < 1 for d in depths):
        sys.exit("--requests and --depth must be positive")

    names = sorted({SERVERS[s][0] for s in args.servers})
    build = ["cargo", "build", "--quiet", "--release", "-p", "tripoll-lab"]
    for n in names:
        build += ["--bin", n]
    subprocess.run(build, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", "target")

    print(f"user-space instructions per request, callgrind, {args.requests} requests "
          f"after {args.warmup} of warm-up, one connection")
    print()
    print("| server | " + " | ".join(f"depth {d}" for d in depths) + " |")
    print("|---|" + "---|" * len(depths))
    tops = []
    for s in args.servers:
        exe_name, exe_args = SERVERS[s]
        exe = os.path.join(target, "release", exe_name)
        cells = []
        for d in depths:
            per_req, top = measure(exe, exe_args, args.requests, d, args.warmup, args.annotate)
            cells.append(f"{per_req:,.0f}")
            if top:
                tops.append((s, d, top))
        print(f"| {s} | " + " | ".join(cells) + " |", flush=True)
    for s, d, top in tops:
        print(f"\n{s}, depth {d}: instructions (self), top functions, all {args.requests} requests")
        print(top)


if __name__ == "__main__":
    main()
