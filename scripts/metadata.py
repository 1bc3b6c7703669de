#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Run metadata, in the spirit of tuxmake's metadata.json, and the report.

usage: metadata.py write RUN_DIR REPO CACHE TIER SECONDS
       metadata.py report RESULTS_DIR [RUN]

'write' reads RUN_DIR/matrix.tsv (branch, config, step, cell, seconds, rc
per step, written by scripts/run.sh) and writes RUN_DIR/metadata.json: the
repository commit, and per branch and config the base version, the stack's
hash, the toolchain, the QEMU version, the kernel config's hash, the time
and result of every step and the test counts.

'report' prints the matrix of a run (default: the latest) and a table of its
tests, one row per test and one column per branch/config.
"""
import datetime
import hashlib
import json
import os
import subprocess
import sys


def sh(*cmd, cwd=None):
    try:
        return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def trees(repo):
    out = {}
    for l in open(os.path.join(repo, "trees")):
        f = l.split()
        if f and not f[0].startswith("#") and len(f) >= 6:
            out[f[0]] = dict(zip(("branch", "package", "version", "suite", "stack", "cmdline"), f))
    return out


def stack_hash(repo, branch, stack):
    if not stack:
        return {"patches": 0, "sha256": None}
    series = os.path.join(repo, "series" if branch == "mainline" else os.path.join(stack, "series"))
    h = hashlib.sha256()
    names = []
    if os.path.exists(series):
        names = [l.split("#")[0].strip() for l in open(series)]
        names = [n.split()[0] for n in names if n]
    for n in names:
        h.update(n.encode() + b"\0")
        h.update(open(os.path.join(repo, stack, n), "rb").read())
    return {"patches": len(names), "sha256": h.hexdigest() if names else None}


def file_hash(path):
    if not os.path.exists(path):
        return None
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def write(run_dir, repo, cache, tier, seconds):
    t = trees(repo)
    rows, common = {}, {}
    for l in open(os.path.join(run_dir, "matrix.tsv")):
        b, fl, step, cell, secs, rc = l.rstrip("\n").split("\t")
        log = "%s-%s.log" % (b, step) if fl == "-" else "%s-%s-%s.log" % (b, fl, step)
        st = {"result": "pass" if rc == "0" else "fail", "cell": cell, "seconds": int(secs), "log": log}
        if fl == "-":
            # fetch and apply are per branch: on each of its config rows
            common.setdefault(b, {})[step] = st
            fl = None
        else:
            rows.setdefault((b, fl), {"branch": b, "config": fl, "steps": {}})["steps"][step] = st
    for b, steps in common.items():
        mine = [r for (rb, _), r in rows.items() if rb == b] or \
            [rows.setdefault((b, "minimal"), {"branch": b, "config": "minimal", "steps": {}})]
        for r in mine:
            r["steps"] = dict(steps, **r["steps"])
    gcc = sh("gcc", "--version")
    qemu = sh("qemu-system-x86_64", "--version")
    out_rows = []
    for (b, fl), r in rows.items():
        tr = t.get(b, {})
        bd = os.path.join(cache, "build", "%s-%s" % (b, fl))
        r.update({
            "package": tr.get("package"), "base_version": tr.get("version"),
            "stack": dict(stack_hash(repo, b, tr.get("stack", "")), path=tr.get("stack")),
            "kernel_config_sha256": file_hash(os.path.join(bd, ".config")),
            "kernel_image_sha256": file_hash(os.path.join(bd, "arch/x86/boot/bzImage")),
        })
        sj = os.path.join(run_dir, "%s-%s-summary.json" % (b, fl))
        if os.path.exists(sj):
            s = json.load(open(sj))
            r["tests"] = {"passed": s["passed"], "failed": s["failed"], "skipped": s["skipped"],
                          "hung": s["hung"], "tier": s.get("tier"), "kernel": s.get("kernel"),
                          "tap": os.path.basename(sj).replace("summary.json", "results.tap"),
                          "summary": os.path.basename(sj)}
        r["result"] = "pass" if all(x["result"] == "pass" for x in r["steps"].values()) else "fail"
        out_rows.append(r)
    meta = {
        "format": "kvm-atomic-memslots run metadata 1",
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "seconds": int(seconds),
        "tier": tier,
        "repo": {"commit": sh("git", "rev-parse", "HEAD", cwd=repo),
                 "dirty": bool(sh("git", "status", "--porcelain", cwd=repo))},
        "toolchain": {"gcc": gcc.splitlines()[0] if gcc else None,
                      "qemu": qemu.splitlines()[0] if qemu else None},
        "runs": out_rows,
        "result": "pass" if all(r["result"] == "pass" for r in out_rows) else "fail",
    }
    with open(os.path.join(run_dir, "metadata.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("==> run metadata: %s" % os.path.join(run_dir, "metadata.json"), file=sys.stderr)


def report(results, run=None):
    runs_dir = os.path.join(results, "runs")
    if not os.path.isdir(runs_dir):
        sys.exit("no runs under %s (run './scripts/pipeline run' first)" % runs_dir)
    if run is None:
        run = "latest" if os.path.exists(os.path.join(runs_dir, "latest")) else sorted(os.listdir(runs_dir))[-1]
    rd = os.path.join(runs_dir, run)
    meta = json.load(open(os.path.join(rd, "metadata.json")))
    print("run %s: %s, tier %s, %d s, repo %s%s" % (
        os.path.basename(os.path.realpath(rd)), meta["result"].upper(), meta["tier"], meta["seconds"],
        (meta["repo"]["commit"] or "?")[:12], " (dirty)" if meta["repo"]["dirty"] else ""))
    print("| branch | config | base | stack | %s | tests |" % " | ".join(("fetch", "apply", "build", "test")))
    print("|---|---|---|---|---|---|---|---|---|")
    for r in meta["runs"]:
        st = r["steps"]
        tests = r.get("tests")
        print("| %s | %s | %s | %s | %s | %s |" % (
            r["branch"], r["config"], r["base_version"],
            "%d patches" % r["stack"]["patches"] if r["stack"]["patches"] else "no stack",
            " | ".join(st[s]["cell"] if s in st else "-" for s in ("fetch", "apply", "build", "test")),
            "%d/%d/%d" % (tests["passed"], tests["failed"], tests["skipped"]) if tests else "-"))
    cols = [r for r in meta["runs"] if r.get("tests")]
    if not cols:
        return
    sums = [json.load(open(os.path.join(rd, r["tests"]["summary"]))) for r in cols]
    names = []
    for s in sums:
        for t in s["tests"]:
            if t["name"] not in names:
                names.append(t["name"])
    print()
    print("| test | " + " | ".join("%s %s" % (r["branch"], r["config"]) for r in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for n in names:
        row = []
        for s in sums:
            t = next((t for t in s["tests"] if t["name"] == n), None)
            if t is None:
                row.append("-")
            elif t["status"] == "skip":
                row.append("skip")
            else:
                row.append("%s %.0fs" % ({"pass": "pass", "xfail": "xfail", "fail": "FAIL"}[t["status"]],
                                         t["seconds"]))
        print("| %s | %s |" % (n, " | ".join(row)))
    print("| kernel log clean | %s |" % " | ".join(
        "yes" if not s["splats"] and not s["hung"] else "NO" for s in sums))


if __name__ == "__main__":
    if len(sys.argv) >= 7 and sys.argv[1] == "write":
        write(*sys.argv[2:7])
    elif len(sys.argv) in (3, 4) and sys.argv[1] == "report":
        report(*sys.argv[2:])
    else:
        sys.exit(__doc__)
