#!/usr/bin/env python3
"""Checks the server-models claims against one or more sweeps (the CSVs of
`models --csv`), and says for each claim whether every sweep agrees.

    python3 lab/scripts/models-claims.py models-1.csv models-2.csv models-3.csv

A claim holds only if it holds in every sweep given; each line shows the
ratio in every sweep, so a claim that holds in two sweeps out of three is
seen as such. Cells that were busy (other load, see `models --help`) or not
measured are reported, never used. Python 3 standard library only.
"""

import csv
import sys

ONE_CORE_LOOPS = ("epoll-level", "epoll-edge", "uring-level", "uring-edge", "poll-level")


def load(path):
    meta, rows = {}, []
    with open(path) as f:
        lines = [l for l in f]
    body = []
    for l in lines:
        if l.startswith("# "):
            k, _, v = l[2:].partition(": ")
            meta[k.strip()] = v.strip()
        else:
            body.append(l)
    for r in csv.DictReader(body):
        rows.append(r)
    return meta, rows


def cell(rows, model, n, k=None):
    for r in rows:
        if r["model"] == model and int(r["connections"]) == n and int(r["active"]) == (k if k is not None else n):
            if r["status"] != "ok" or r.get("busy") == "busy":
                return None
            return r
    return None


def val(r, key):
    return float(r[key]) if r and r[key] else None


def ratio(a, b):
    return a / b if a is not None and b else None


def claim(title, sweeps, f):
    """f(rows) -> (ratio or None, text); holds when every ratio satisfies."""
    out, ok = [], True
    for i, (_, rows) in enumerate(sweeps, 1):
        good, text = f(rows)
        out.append(f"sweep {i}: {text}")
        ok = ok and good
    print(("HOLDS   " if ok else "DOES NOT HOLD ") + title)
    for o in out:
        print("    " + o)


def best_loop(rows, n, k=None):
    best = None
    for m in ONE_CORE_LOOPS:
        r = cell(rows, m, n, k)
        if r and (best is None or val(r, "msgs_per_sec") > val(best, "msgs_per_sec")):
            best = r
    return best


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sweeps = [load(p) for p in sys.argv[1:]]
    for i, (meta, _) in enumerate(sweeps, 1):
        print(f"sweep {i}: commit {meta.get('commit')}, load {meta.get('load_start')} -> {meta.get('load_end')}, "
              f"other load max {meta.get('other_load_max')}, busy cells {meta.get('busy_cells')}, "
              f"elapsed {meta.get('elapsed')}")
    print()

    for n in (100, 1000, 10000):
        def loop_vs_threads(rows, n=n):
            e = cell(rows, "epoll-level", n)
            t, p = cell(rows, "thread", n), cell(rows, "fork", n)
            rt, rp = ratio(val(e, "msgs_per_sec"), val(t, "msgs_per_sec")), ratio(val(e, "msgs_per_sec"), val(p, "msgs_per_sec"))
            good = rt is not None and rp is not None and rt > 1 and rp > 1
            return good, f"epoll-level/thread {rt:.2f}x, epoll-level/fork {rp:.2f}x msgs/s" if rt and rp else "not measured"
        claim(f"N={n}: one event loop on one core serves more messages/s than thread and fork", sweeps, loop_vs_threads)

    for n in (1000, 10000):
        def percore_vs_thread(rows, n=n):
            a, t = cell(rows, "epoll-percore", n), cell(rows, "thread", n)
            r = ratio(val(a, "msgs_per_sec"), val(t, "msgs_per_sec"))
            m = ratio(val(a, "peak_kib"), val(t, "peak_kib"))
            return (r is not None and r >= 1), (f"msgs/s {r:.2f}x, memory {m:.3f}x" if r and m else "not measured")
        claim(f"N={n}: epoll-percore >= thread in messages/s, at a fraction of the memory", sweeps, percore_vs_thread)

    for n in (100, 1000, 10000):
        def completion(rows, n=n):
            c, b = cell(rows, "uring-completion", n), best_loop(rows, n)
            r = ratio(val(c, "msgs_per_sec"), val(b, "msgs_per_sec"))
            cpu = ratio(val(c, "cpu_ns_per_msg"), val(b, "cpu_ns_per_msg"))
            if r is None or cpu is None:
                return False, "not measured"
            return (r >= 1 and cpu <= 1), f"against {b['model']}: msgs/s {r:.2f}x, CPU/msg {cpu:.2f}x"
        claim(f"N={n}: uring-completion >= the best one-core readiness loop in msgs/s, <= in CPU/msg", sweeps, completion)

    for k in (10, 100):
        def idle(rows, k=k):
            p, e = cell(rows, "poll-level", 10000, k), cell(rows, "epoll-level", 10000, k)
            r = ratio(val(p, "cpu_ns_per_msg"), val(e, "cpu_ns_per_msg"))
            return (r is not None and r > 2), (f"poll/epoll CPU per message {r:.1f}x" if r else "not measured")
        claim(f"N=10000, {k} active: poll pays per idle descriptor (CPU/msg > 2x epoll's)", sweeps, idle)

    def poll_busy(rows):
        rs = [ratio(val(cell(rows, "poll-level", n), "cpu_ns_per_msg"), val(cell(rows, "epoll-level", n), "cpu_ns_per_msg")) for n in (1000, 10000)]
        if None in rs:
            return False, "not measured"
        return all(r < 1.5 for r in rs), "poll/epoll CPU per message at 1000, 10000 all active: " + ", ".join(f"{r:.2f}x" for r in rs)
    claim("all connections busy: poll costs about what epoll does (no idle descriptor to pay for)", sweeps, poll_busy)

    for n in (1000, 10000):
        def tail(rows, n=n):
            e, t, p = (cell(rows, m, n) for m in ("epoll-level", "thread", "fork"))
            if not (e and t and p):
                return False, "not measured"
            rt, rp = val(t, "p99_ns") / val(e, "p99_ns"), val(p, "p99_ns") / val(e, "p99_ns")
            return (rt > 1 and rp > 1), (f"p99 thread {val(t, 'p99_ns') / 1e6:.1f} ms, fork {val(p, 'p99_ns') / 1e6:.1f} ms, "
                                         f"epoll-level {val(e, 'p99_ns') / 1e6:.1f} ms")
        claim(f"N={n}: thread and fork have a longer p99 latency than one event loop", sweeps, tail)

    def memory(rows):
        t, p, e = (cell(rows, m, 10000) for m in ("thread", "fork", "epoll-level"))
        if not (t and p and e):
            return False, "not measured"
        return True, f"peak at 10000: thread {val(t, 'peak_kib') / 1024:.0f} MiB, fork {val(p, 'peak_kib') / 1024:.0f} MiB, epoll-level {val(e, 'peak_kib') / 1024:.0f} MiB"
    claim("memory at 10000 connections (reported, not a ratio)", sweeps, memory)


if __name__ == "__main__":
    main()
