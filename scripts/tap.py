#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the test VM's serial console into TAP and a JSON summary.

usage: tap.py RESULT_DIR BRANCH FLAVOR SPLAT_REGEX

Reads RESULT_DIR/console.log and RESULT_DIR/tests.list (what the guest was
asked to run), writes results.tap, summary.json and tests/<name>.log, prints
the TAP, and exits 1 if any test failed, the kernel log has a splat, or the
VM hung.
"""
import json
import os
import re
import sys

rd, branch, flavor, splat_re = sys.argv[1:5]
splat = re.compile(splat_re)
stamp = re.compile(r"^\[\s*\d+\.\d+\]")

with open(os.path.join(rd, "console.log"), errors="replace") as f:
    lines = [l.rstrip("\r\n") for l in f]
planned = []
with open(os.path.join(rd, "tests.list")) as f:
    for l in f:
        if l.strip():
            planned.append(l.split()[0])
skipped = []
skip_file = os.path.join(rd, "skipped.list")
if os.path.exists(skip_file):
    with open(skip_file) as f:
        for l in f:
            if l.strip() and not l.startswith("#"):
                name, _, why = l.strip().partition(" ")
                skipped.append((name, why.strip()))

results = {}
logs = {}
splats = []
current = None
fatal = None
done = False
boot = None
in_kmemleak = False
for l in lines:
    if l.startswith("KB-BOOT"):
        boot = l[len("KB-BOOT "):]
    elif l.startswith("KB-FATAL"):
        fatal = l[len("KB-FATAL "):]
    elif l.startswith("KB-TEST-START "):
        current = l.split()[1]
        logs[current] = []
        continue
    elif l.startswith("KB-RESULT "):
        f = l.split() + ["", "", "", "", "0"]
        _, name, rc, when, cs = f[:5]
        results[name] = (rc, when, int(cs) / 100.0 if cs.isdigit() else 0.0)
        current = None
        continue
    elif l.startswith("KB-KMEMLEAK-SCAN"):
        in_kmemleak = True
        current = None
    elif l.startswith("KB-DONE"):
        done = True
        in_kmemleak = False
    if current is not None:
        logs[current].append(l)
    if (stamp.match(l) or in_kmemleak) and splat.search(l):
        splats.append((current or ("kmemleak" if in_kmemleak else "(outside tests)"), l))

os.makedirs(os.path.join(rd, "tests"), exist_ok=True)
for name, out in logs.items():
    with open(os.path.join(rd, "tests", name.replace("/", "_") + ".log"), "w") as f:
        f.write("\n".join(out) + "\n")

tap = ["TAP version 13"]
entries = []
splat_tests = {t for t, _ in splats}
hung = not done and fatal is None
n = 0
for name in planned:
    status, reason, secs = "fail", "", 0.0
    if name in results:
        rc, when, secs = results[name]
        if rc == "0":
            status = "pass"
        elif rc == "4":
            status, reason = "skip", "the test skipped itself (see its log)"
        elif rc == "nobinary":
            if when == "if-built":
                status, reason = "skip", "not built on this tree"
            else:
                reason = "binary not built on this tree"
        elif rc == "timeout":
            reason = "timed out"
        else:
            reason = "exit status %s" % rc
    elif fatal:
        reason = "not run: " + fatal
    elif name in logs:
        reason = "VM hung or crashed during this test"
    else:
        reason = "not run (VM stopped early)"
    if name in splat_tests and status != "fail":
        status, reason = "fail", "kernel splat during the test"
    entries.append({"name": name, "status": status, "seconds": secs, "reason": reason})
for name, why in skipped:
    entries.append({"name": name, "status": "skip", "seconds": 0.0,
                    "reason": why})
fail_file = os.path.join(rd, "failures.list")
if os.path.exists(fail_file):
    with open(fail_file) as f:
        for l in f:
            if l.strip():
                name, _, why = l.strip().partition(" ")
                entries.append({"name": name, "status": "fail", "seconds": 0.0, "reason": why})
for e in entries:
    n += 1
    ok = "not ok" if e["status"] == "fail" else "ok"
    directive = ""
    if e["status"] == "skip":
        directive = " # SKIP " + e["reason"]
    elif e["status"] == "fail":
        directive = " # " + e["reason"]
    tap.append("%s %d %s%s" % (ok, n, e["name"], directive))
    tap.append("  # time=%.1fs" % e["seconds"])
n += 1
log_ok = not splats and not hung and fatal is None
tap.append("%s %d kernel-log-clean%s" % ("ok" if log_ok else "not ok", n,
           "" if log_ok else " # %d splat line(s)%s" % (len(splats), ", VM hung" if hung else "")))
tap.insert(1, "1..%d" % n)

passed = sum(e["status"] == "pass" for e in entries) + (1 if log_ok else 0)
failed = sum(e["status"] == "fail" for e in entries) + (0 if log_ok else 1)
skips = sum(e["status"] == "skip" for e in entries)
summary = {
    "branch": branch, "flavor": flavor, "kernel": boot, "fatal": fatal,
    "hung": hung, "passed": passed, "failed": failed, "skipped": skips,
    "tests": entries, "splats": [{"test": t, "line": l} for t, l in splats],
}
with open(os.path.join(rd, "results.tap"), "w") as f:
    f.write("\n".join(tap) + "\n")
with open(os.path.join(rd, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
print("\n".join(tap))

if fatal:
    print("error: %s/%s: %s" % (branch, flavor, fatal), file=sys.stderr)
if hung:
    print("error: %s/%s: the test VM hung or died (no KB-DONE); console tail:" % (branch, flavor),
          file=sys.stderr)
    print("\n".join(lines[-40:]), file=sys.stderr)
for t, l in splats[:20]:
    print("splat (%s): %s" % (t, l), file=sys.stderr)
for e in entries:
    if e["status"] == "fail" and e["name"] in logs:
        print("--- tail of %s (%s) ---" % (e["name"], e["reason"]), file=sys.stderr)
        print("\n".join(logs[e["name"]][-25:]), file=sys.stderr)
print("%s/%s: %d passed, %d failed, %d skipped" % (branch, flavor, passed, failed, skips),
      file=sys.stderr)
sys.exit(0 if failed == 0 else 1)
