#!/usr/bin/env python3
"""Counts the user-space instructions one bench iteration executes, per row.

Wall and CPU time on a shared machine move by a few percent from run to
run; instruction counts do not. This runs one criterion benchmark at a time
under `valgrind --tool=callgrind`, collecting only inside criterion's timed
loop (`Bencher::iter`), and divides the instructions by the iterations,
which it counts from the libc calls every iteration makes a known number
of times (`write` for the wait benches, `epoll_ctl` for churn). Kernel work
is not counted: this measures what the library adds around its system
calls, not the system calls.

  python3 scripts/bench-instructions.py 'wait_scaling_1_active/{}/1000' \\
      epoll raw-epoll mio
  python3 scripts/bench-instructions.py 'pingpong/{}' epoll raw-epoll poll raw-poll

Needs valgrind, and the bench binaries built by `cargo bench --no-run`
(with the same CARGO_TARGET_DIR). Python 3 standard library only.

`roundtrip/{}` counts the ping-pong program in tests/uring.rs instead
(`round_trips_for_counting`, the bench's loop with a choice of trigger
mode), one row per `<backend>-<mode>`, collecting inside its loop:

  cargo test --profile bench --features io-uring --test uring --no-run
  python3 scripts/bench-instructions.py 'roundtrip/{}' \
      uring-level uring-edge epoll-level epoll-edge

`--binary PATH` names the executable to run (e.g. one built from another
commit) instead of the newest one under the target directory.
"""

import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile


def calls_per_iteration(bench_id):
    """(libc function, calls per iteration) for a benchmark id."""
    group = bench_id.split("/")[0]
    if group in ("pingpong", "roundtrip"):
        return "write", 2
    m = re.fullmatch(r"wait_scaling_(\d+)_active", group)
    if m:
        return "write", int(m.group(1))
    m = re.fullmatch(r"chain_(\d+)_active_(\d+)_writes", group)
    if m:
        return "write", int(m.group(1)) + int(m.group(2))
    if group == "reactor_dispatch":
        return "write", 1
    if group == "churn":
        row = bench_id.split("/")[1]
        if row in ("epoll", "raw-epoll"):
            return "epoll_ctl", 3
        sys.exit(f"{bench_id}: poll and select churn make no system call to count by")
    sys.exit(f"{bench_id}: unknown group")


def binary(target, bench):
    paths = [p for p in glob.glob(os.path.join(target, "release", "deps", bench + "-*"))
             if os.access(p, os.X_OK) and not p.endswith(".d")]
    if not paths:
        sys.exit(f"no {bench} binary under {target}: run `cargo bench --no-run`")
    return max(paths, key=os.path.getmtime)


def parse(path, func):
    """(instructions collected, calls made to `func`) from a callgrind file."""
    names = {}
    total = None
    calls = 0
    callee = None
    with open(path) as f:
        for line in f:
            m = re.match(r"(?:summary|totals): (\d+)", line)
            if m:
                total = int(m.group(1))
                continue
            m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line)
            if m:
                ident, name = m.group(1), m.group(2)
                if name:
                    names[ident] = name.strip()
                callee = names.get(ident) if line.startswith("cfn=") else None
                continue
            m = re.match(r"calls=(\d+) ", line)
            if m and callee == func:
                calls += int(m.group(1))
    return total, calls


ROUNDTRIP_TEST = "with_uring::round_trips_for_counting"


def command(exe, bench_id):
    """(collect toggle, argv, extra environment) for one row."""
    group, row = bench_id.split("/", 1)
    if group == "roundtrip":
        backend, mode = row.split("-")
        env = {"TRIPOLL_BACKEND": backend, "TRIPOLL_MODE": mode,
               "TRIPOLL_ROUNDS": "20000"}
        argv = [exe, ROUNDTRIP_TEST, "--exact", "--ignored", "--test-threads=1"]
        return "uring::with_uring::round_trips", argv, env
    argv = [exe, "--bench", "--profile-time", "1", f"^{re.escape(bench_id)}$"]
    return "criterion::bencher::Bencher*::iter*", argv, {}


def count(exe, bench_id):
    func, per_iter = calls_per_iteration(bench_id)
    toggle, argv, env = command(exe, bench_id)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--collect-atstart=no",
             f"--toggle-collect={toggle}",
             f"--callgrind-out-file={out}"] + argv,
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, **env})
        total, calls = parse(out, func)
    if not total or not calls:
        return None, 0
    iterations = calls / per_iter
    return total / iterations, int(iterations)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pattern", help="benchmark id with {} for the row, e.g. pingpong/{}")
    ap.add_argument("rows", nargs="+")
    ap.add_argument("--binary", help="the executable to run (default: the newest built)")
    args = ap.parse_args()
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    bench = args.pattern.split("/")[0]
    bench = re.sub(r"_\d+_active$", "", bench)
    bench = "chain" if bench.startswith("chain_") else bench
    bench = "reactor" if bench.startswith("reactor_") else bench
    bench = "uring" if bench == "roundtrip" else bench
    exe = args.binary or binary(target, bench)
    print("| benchmark | user-space instructions per iteration | iterations counted |")
    print("|---|---|---|")
    for row in args.rows:
        bench_id = args.pattern.format(row)
        per_iter, iters = count(exe, bench_id)
        if per_iter is None:
            print(f"| {bench_id} | no samples (is the id right?) | 0 |")
        else:
            print(f"| {bench_id} | {per_iter:,.0f} | {iters:,} |")


if __name__ == "__main__":
    main()
