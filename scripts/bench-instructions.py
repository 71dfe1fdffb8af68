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
    if group == "pingpong":
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


def count(exe, bench_id):
    func, per_iter = calls_per_iteration(bench_id)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--collect-atstart=no",
             "--toggle-collect=criterion::bencher::Bencher*::iter*",
             f"--callgrind-out-file={out}",
             exe, "--bench", "--profile-time", "1", f"^{re.escape(bench_id)}$"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        total, calls = parse(out, func)
    if not total or not calls:
        return None, 0
    iterations = calls / per_iter
    return total / iterations, int(iterations)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pattern", help="benchmark id with {} for the row, e.g. pingpong/{}")
    ap.add_argument("rows", nargs="+")
    args = ap.parse_args()
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    bench = args.pattern.split("/")[0]
    bench = re.sub(r"_\d+_active$", "", bench)
    bench = "chain" if bench.startswith("chain_") else bench
    bench = "reactor" if bench.startswith("reactor_") else bench
    exe = binary(target, bench)
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
