#!/usr/bin/env python3
"""Prints the markdown tables of BENCHMARKS.md from criterion's results.

Reads <criterion>/<group>/<row>/<N>/new/estimates.json (and
<criterion>/pingpong/<row>/new/estimates.json), where <criterion> is
$CARGO_TARGET_DIR/criterion (default target/criterion) or --dir. Every
number it prints is criterion's median of the last run, or a ratio of two
such medians, so run all benches in one `cargo bench` first.

  python3 scripts/bench-table.py              # tables on stdout
  python3 scripts/bench-table.py --svg docs/scaling.svg
                                              # also copy the 1-active
                                              # wait_scaling lines.svg

Python 3 standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import sys

WAIT_GROUPS = [
    ("wait_scaling_1_active", "1 active descriptor"),
    ("wait_scaling_10_active", "10 active descriptors"),
    ("wait_scaling_100_active", "100 active descriptors"),
]
CHAIN_GROUPS = [
    ("chain_1_active_100_writes", "1 active, 100 writes"),
    ("chain_100_active_1000_writes", "100 active, 1000 writes"),
]
ROWS = ["epoll", "raw-epoll", "uring", "raw-uring", "poll", "raw-poll", "select",
        "raw-select", "mio", "polling-oneshot", "polling-level", "polling-edge"]

# (numerator, denominator, target, direction): the ratio must be <= target.
# "polling ≥ 2× slower than epoll" is written as epoll/polling <= 0.5.
WAIT_RATIOS = [
    ("epoll", "raw-epoll", 1.03),
    ("epoll", "mio", 1.00),
    ("epoll", "polling-oneshot", 0.50),
    ("epoll", "polling-level", 0.50),
    ("epoll", "polling-edge", 0.50),
    ("raw-epoll", "polling-level", None),
    ("poll", "raw-poll", 1.10),
    ("select", "raw-select", 1.10),
    # io_uring (issue 11); the rows exist with `--features io-uring`.
    ("uring", "epoll", 1.05),
    ("uring", "raw-uring", 1.05),
]
CHAIN_RATIOS = [
    ("epoll", "raw-epoll", 1.03),
    ("poll", "epoll", None),
    ("select", "epoll", None),
]
CHURN_RATIOS = [("epoll", "raw-epoll", 1.05), ("uring", "epoll", None)]
# The same, except that io_uring's ping-pong target is "no slower than epoll".
PINGPONG_RATIOS = [r for r in WAIT_RATIOS if r[:2] != ("uring", "epoll")]
PINGPONG_RATIOS.append(("uring", "epoll", 1.00))


def load(path):
    """(median, lower, upper) in ns, or None if the file is missing."""
    try:
        with open(path) as f:
            est = json.load(f)
    except FileNotFoundError:
        return None
    med = est["median"]
    ci = med["confidence_interval"]
    return med["point_estimate"], ci["lower_bound"], ci["upper_bound"], os.path.getmtime(path)


def load_group(root, group):
    """{row: {n: estimate}} for a parameterised group."""
    out = {}
    gdir = os.path.join(root, group)
    if not os.path.isdir(gdir):
        return out
    for row in sorted(os.listdir(gdir)):
        rdir = os.path.join(gdir, row)
        if row == "report" or not os.path.isdir(rdir):
            continue
        for param in os.listdir(rdir):
            if not param.isdigit():
                continue
            est = load(os.path.join(rdir, param, "new", "estimates.json"))
            if est:
                out.setdefault(row, {})[int(param)] = est
    return out


def fmt_time(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.0f} ns"


def ordered_rows(data):
    return [r for r in ROWS if r in data] + sorted(r for r in data if r not in ROWS)


def time_table(data, unit="N"):
    sizes = sorted({n for row in data.values() for n in row})
    lines = ["| row | " + " | ".join(f"{unit} = {n:,}".replace(",", " ") for n in sizes) + " |"]
    lines.append("|---" * (len(sizes) + 1) + "|")
    for row in ordered_rows(data):
        cells = [fmt_time(data[row][n][0]) if n in data[row] else "not run" for n in sizes]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return lines


def ratio(a, b):
    """Ratio of medians, and the range the confidence intervals allow."""
    return a[0] / b[0], a[1] / b[2], a[2] / b[1]


def verdict(r, target):
    if target is None:
        return ""
    value, lo, hi = r
    word = "meets" if value <= target else "misses"
    if lo <= target <= hi:
        word += " (within noise)"
    return word


def ratio_table(group, data, ratios, verdicts):
    sizes = sorted({n for row in data.values() for n in row})
    head = "| ratio of medians | target | " + " | ".join(
        f"N = {n:,}".replace(",", " ") for n in sizes) + " |"
    lines = [head, "|---" * (len(sizes) + 2) + "|"]
    for num, den, target in ratios:
        if num not in data or den not in data:
            continue
        cells = []
        for n in sizes:
            if n in data[num] and n in data[den]:
                r = ratio(data[num][n], data[den][n])
                cells.append(f"{r[0]:.3f}")
                if target is not None:
                    verdicts.append((f"{group}: {num} / {den}, N = {n}", r, target))
            else:
                cells.append("—")
        tgt = "—" if target is None else f"≤ {target:.2f}"
        lines.append(f"| {num} / {den} | {tgt} | " + " | ".join(cells) + " |")
    return lines


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs, model name `{model}`, kernel `{platform.release()}`"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    ap.add_argument("--dir", default=os.path.join(target, "criterion"),
                    help="criterion's output directory")
    ap.add_argument("--svg", help="copy wait_scaling_1_active's lines.svg here")
    args = ap.parse_args()
    root = args.dir
    if not os.path.isdir(root):
        sys.exit(f"{root}: no criterion results; run `cargo bench` first")

    out = []
    verdicts = []
    mtimes = []

    def note(data):
        for row in data.values():
            for est in row.values():
                mtimes.append(est[3])

    out.append(f"Machine: {machine()}.")
    out.append("")
    scaling = [(g, t, WAIT_RATIOS) for g, t in WAIT_GROUPS]
    scaling += [(g, t, CHAIN_RATIOS) for g, t in CHAIN_GROUPS]
    for group, title, ratios in scaling:
        data = load_group(root, group)
        if not data:
            continue
        note(data)
        out += [f"### `{group}`: {title}, median time per iteration", ""]
        out += time_table(data) + [""]
        out += ratio_table(group, data, ratios, verdicts) + [""]
    data = load_group(root, "churn")
    if data:
        note(data)
        out += ["### `churn`: register + modify + unregister, median time per iteration", ""]
        out += time_table(data) + [""]
        out += ratio_table("churn", data, CHURN_RATIOS, verdicts) + [""]
    pp = {}
    pdir = os.path.join(root, "pingpong")
    if os.path.isdir(pdir):
        for row in os.listdir(pdir):
            est = load(os.path.join(pdir, row, "new", "estimates.json"))
            if est:
                pp[row] = {2: est}
    if pp:
        note(pp)
        out += ["### `pingpong`: one round trip (two waits), median time per iteration", ""]
        lines = ["| row | median | 95 % CI of the median |", "|---|---|---|"]
        for row in ordered_rows(pp):
            m, lo, hi, _ = pp[row][2]
            lines.append(f"| {row} | {fmt_time(m)} | {fmt_time(lo)} – {fmt_time(hi)} |")
        out += lines + [""]
        lines = ["| ratio of medians | target | value |", "|---|---|---|"]
        for num, den, tgt in PINGPONG_RATIOS:
            if num in pp and den in pp:
                r = ratio(pp[num][2], pp[den][2])
                if tgt is not None:
                    verdicts.append((f"pingpong: {num} / {den}", r, tgt))
                shown = "—" if tgt is None else f"≤ {tgt:.2f}"
                lines.append(f"| {num} / {den} | {shown} | {r[0]:.3f} |")
        out += lines + [""]

    if verdicts:
        out += ["### Targets", "",
                "Ratio of medians; the range is what the 95 % confidence intervals of the",
                "two medians allow (lowest numerator / highest denominator to the reverse).",
                "`epoll / polling ≤ 0.50` is the target \"epoll at least twice as fast as",
                "polling\".", "",
                "| comparison | target | ratio | range | verdict |", "|---|---|---|---|---|"]
        for name, r, tgt in verdicts:
            out.append(f"| {name} | ≤ {tgt:.2f} | {r[0]:.3f} | {r[1]:.3f} – {r[2]:.3f} | "
                       f"{verdict(r, tgt)} |")
        out.append("")
    if mtimes:
        first = datetime.datetime.fromtimestamp(min(mtimes), datetime.timezone.utc)
        last = datetime.datetime.fromtimestamp(max(mtimes), datetime.timezone.utc)
        out.append(f"Results written between {first:%Y-%m-%d %H:%M} and {last:%H:%M} UTC.")
    print("\n".join(out))

    if args.svg:
        src = os.path.join(root, "wait_scaling_1_active", "report", "lines.svg")
        shutil.copyfile(src, args.svg)
        print(f"copied {src} to {args.svg}", file=sys.stderr)


if __name__ == "__main__":
    main()
