#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Print the results of the last test runs as a Markdown table: one row per
test, one column per branch/config, cells "pass 26.4s", "FAIL", "skip".

usage: report.py RESULTS_DIR
"""
import json
import os
import sys

root = sys.argv[1]
runs = []
for d in sorted(os.listdir(root)):
    p = os.path.join(root, d, "summary.json")
    if os.path.exists(p):
        with open(p) as f:
            runs.append((d, json.load(f)))
if not runs:
    sys.exit("no results under %s" % root)
names = []
for _, s in runs:
    for t in s["tests"]:
        if t["name"] not in names:
            names.append(t["name"])
cell = {"pass": "pass %.0fs", "fail": "FAIL %.0fs", "skip": "skip"}
print("| test | " + " | ".join(d for d, _ in runs) + " |")
print("|---|" + "---|" * len(runs))
for n in names:
    row = []
    for _, s in runs:
        t = next((t for t in s["tests"] if t["name"] == n), None)
        if t is None:
            row.append("-")
        else:
            c = cell[t["status"]]
            row.append(c % t["seconds"] if "%" in c else c)
    print("| %s | %s |" % (n, " | ".join(row)))
print("| kernel log clean | %s |" % " | ".join(
    "yes" if not s["splats"] and not s["hung"] else "NO" for _, s in runs))
print("| kernel | %s |" % " | ".join(str(s.get("kernel") or "-") for _, s in runs))
