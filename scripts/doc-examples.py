#!/usr/bin/env python3
"""Counts the public functions and methods of the tripoll library whose
rustdoc has an example (a code block), from rustdoc's JSON output.

    cargo +nightly rustdoc -p tripoll --lib --all-features -- \
        -Z unstable-options --output-format json
    python3 scripts/doc-examples.py [--min 90] [--list]

Counted: free functions, inherent methods of public types, and the methods
declared by the crate's own traits (`Poller`), reachable from the crate's
public paths. Left out: methods of trait implementations (documented on the
trait), and what bitflags generates (methods whose source is not in
`src/`, or the `impl` of a bitflags type's `Flags` machinery). An item
"has an example" when its docs hold a fenced code block. `--min P` exits 1
below P per cent (functions and methods, or types and modules); `--list`
prints the items without one.
"""

import argparse
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "doc", "tripoll.json"))
    ap.add_argument("--min", type=float, default=None)
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    d = json.load(open(args.json))
    index = d["index"]
    paths = d["paths"]

    def is_public(item):
        return item.get("visibility") == "public"

    def from_src(item):
        span = item.get("span")
        return span is not None and span["filename"].startswith("src/")

    def has_example(item):
        return "```" in (item.get("docs") or "")

    # What bitflags generates on a flags type: its methods are the same on
    # every such type, documented by bitflags, not by this crate.
    bitflags_methods = {
        "empty", "all", "bits", "from_bits", "from_bits_truncate", "from_bits_retain",
        "from_name", "is_empty", "is_all", "intersects", "contains", "insert", "remove",
        "toggle", "set", "intersection", "union", "difference", "symmetric_difference",
        "complement", "iter", "iter_names",
    }
    flags_types = set()
    for item in index.values():
        imp = item["inner"].get("impl") if item.get("crate_id") == 0 else None
        if imp and imp.get("trait") and imp["trait"].get("path", "").endswith("Flags"):
            flags_types.add(imp.get("for", {}).get("resolved_path", {}).get("id"))

    # Public types and traits of this crate, by id (their paths are public).
    public_types = {i for i, p in paths.items()
                    if p.get("crate_id") == 0 and p["kind"] in ("struct", "enum", "trait")}

    counted = {}
    for iid, item in index.items():
        if item.get("crate_id") != 0:
            continue
        inner = item["inner"]
        if "impl" in inner:
            imp = inner["impl"]
            if imp.get("trait") is not None or imp.get("synthetic") or imp.get("blanket_impl"):
                continue
            for_ = imp.get("for", {})
            target = for_.get("resolved_path", {}).get("id")
            if str(target) not in public_types and target not in public_types:
                continue
            tname = paths.get(str(target), paths.get(target, {})).get("path", ["?"])[-1]
            flags = target in flags_types
            for mid in imp["items"]:
                m = index.get(str(mid))
                if flags and m and m["name"] in bitflags_methods:
                    continue
                if m and "function" in m["inner"] and is_public(m) and from_src(m):
                    counted[f"{tname}::{m['name']}"] = has_example(m)
        elif "trait" in inner:
            if str(iid) not in public_types and iid not in public_types:
                continue
            for mid in inner["trait"]["items"]:
                m = index.get(str(mid))
                if m and "function" in m["inner"] and from_src(m):
                    counted[f"{item['name']}::{m['name']}"] = has_example(m)
        elif "function" in inner and is_public(item) and from_src(item):
            p = paths.get(str(iid), paths.get(iid))
            if p is not None:
                counted["::".join(p["path"][1:])] = has_example(item)

    # Public types, traits, aliases and modules, as their own count.
    types = {}
    for tid, p in paths.items():
        if p.get("crate_id") != 0 or p["kind"] not in ("struct", "enum", "trait", "type_alias", "module"):
            continue
        item = index.get(tid)
        if item is not None and is_public(item):
            types["::".join(p["path"])] = has_example(item)

    total = len(counted)
    with_ex = sum(counted.values())
    pct = 100.0 * with_ex / total if total else 100.0
    print(f"{with_ex} of {total} public functions and methods have an example ({pct:.0f} %)")
    t_with = sum(types.values())
    t_pct = 100.0 * t_with / len(types) if types else 100.0
    print(f"{t_with} of {len(types)} public types, traits, aliases and modules have an example ({t_pct:.0f} %)")
    if args.list:
        for name in sorted(n for n, ok in list(counted.items()) + list(types.items()) if not ok):
            print(f"  no example: {name}")
    if args.min is not None and min(pct, t_pct) < args.min:
        sys.exit(1)


if __name__ == "__main__":
    main()
