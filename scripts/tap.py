#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the test VM's serial console into TAP and a JSON summary.

usage: tap.py RESULT_DIR BRANCH FLAVOR SPLAT_REGEX [HAS_STACK]

Reads RESULT_DIR/console.log and RESULT_DIR/tests.list (what the guest was
asked to run), writes results.tap, summary.json and tests/<name>.log, prints
the TAP, and exits 1 if any test failed, the kernel log has a splat, or the
VM hung.  HAS_STACK is 1 when the branch's patch stack is not empty: the
series' tests must then build and run every case, and the negative controls
must fail.

A test's verdict comes from its exit status and, where the binary prints
them (the kselftest harness, ksft_finished()), from its "# Totals:" line and
its per-case TAP: a binary that exits 0 with every case skipped is a SKIP,
never a pass, and one that exits 0 with failed cases is a failure.

The "when" column of the test list:
  always   a missing binary is a failure
  series   a test the series adds: on a branch with a stack it must build
           and skip no case; without a stack it is not run at all
  xfail=RE a negative control, run only where the series is present: it must
           fail, with a log line matching RE (spaces written as '.'); a pass,
           a skip, a timeout or another failure fails the run
"""
import json
import os
import re
import sys

STAMP_ANY = re.compile(r"\[\s*\d+\.\d+\]")
MARKER = re.compile(r"KB-(BOOT|FATAL|TEST-START|RESULT|KMEMLEAK-SCAN|DONE)\b ?(.*)$")
TOTALS = re.compile(r"# Totals: pass:(\d+) fail:(\d+) xfail:(\d+) xpass:(\d+) skip:(\d+) error:(\d+)")
CASE = re.compile(r"^(ok|not ok) \d+ (.*?)(?:\s+#\s*(SKIP|XFAIL|TODO)\b\s*(.*))?$", re.I)
PLAN_SKIP = re.compile(r"^1\.\.0\s*#\s*SKIP\s*(.*)$", re.I)
# The reason the conformance suite gives when the kernel lacks the series.
NO_SERIES = "KVM_CAP_USER_MEMORY_REGION_BATCH is 0"


def parse_cases(log):
    """Per-case TAP and summed harness totals of one test's log."""
    cases, totals, plan_skip = [], None, None
    for l in log:
        m = TOTALS.search(l)
        if m:
            v = [int(x) for x in m.groups()]
            totals = v if totals is None else [a + b for a, b in zip(totals, v)]
            continue
        m = PLAN_SKIP.match(l)
        if m:
            plan_skip = m.group(1).strip() or "skipped"
            continue
        m = CASE.match(l)
        if m:
            ok, name, directive, why = m.groups()
            if directive and directive.upper() == "SKIP":
                st = "skip"
            elif ok == "ok":
                st = "pass"
            elif directive and directive.upper() in ("XFAIL", "TODO"):
                st = "xfail"
            else:
                st = "fail"
            cases.append({"name": name.strip(), "status": st, "reason": (why or "").strip()})
    if totals is not None:
        totals = dict(zip(("pass", "fail", "xfail", "xpass", "skip", "error"), totals))
    return cases, totals, plan_skip


def skip_reasons(cases, plan_skip):
    r = [c["name"] + ": " + (c["reason"] or "no reason given") for c in cases if c["status"] == "skip"]
    if plan_skip:
        r.insert(0, plan_skip)
    return r


def classify(rc, when, log, has_stack):
    """Verdict of one test: (status, reason, cases, totals)."""
    cases, totals, plan_skip = parse_cases(log)
    skips = skip_reasons(cases, plan_skip)
    nskip = totals["skip"] if totals else len(skips)
    if when.startswith("xfail"):
        pattern = when.partition("=")[2].replace(".", "[ .]") if "=" in when else ""
        if rc == "0":
            return "fail", "negative control passed: it must fail", cases, totals
        if rc in ("4", "nobinary", "timeout"):
            what = {"4": "skipped", "nobinary": "was not built", "timeout": "timed out"}[rc]
            return "fail", "negative control %s: no verdict" % what, cases, totals
        if pattern and not any(re.search(pattern, l) for l in log):
            return "fail", "negative control failed (exit status %s) without the expected '%s'" % (
                rc, when.partition("=")[2]), cases, totals
        return "xfail", "failed as it must (exit status %s)" % rc, cases, totals
    if rc == "0":
        status, reason = "pass", ""
        if totals and (totals["fail"] or totals["error"] or totals["xpass"]):
            status = "fail"
            reason = "exit status 0, but the harness counted %d failed, %d error, %d xpass" % (
                totals["fail"], totals["error"], totals["xpass"])
        elif totals and totals["pass"] + totals["xfail"] == 0:
            if nskip:
                status, reason = "skip", "every case skipped: " + ("; ".join(skips[:3]) or "see its log")
            else:
                status, reason = "fail", "the harness ran no case"
        elif not totals and cases and all(c["status"] == "skip" for c in cases):
            status, reason = "skip", "every case skipped: " + "; ".join(skips[:3])
        elif any(c["status"] == "fail" for c in cases) and not totals:
            status, reason = "fail", "exit status 0, but a case reported 'not ok'"
    elif rc == "4":
        status, reason = "skip", "the test skipped itself: " + ("; ".join(skips[:3]) or "see its log")
    elif rc == "nobinary":
        if when == "series":
            status, reason = "fail", "a test of the series, not built on this tree"
        else:
            status, reason = "fail", "binary not built on this tree"
    elif rc == "timeout":
        status, reason = "fail", "timed out"
    else:
        status, reason = "fail", "exit status %s" % rc
    if has_stack and status != "fail":
        if when == "series" and (status == "skip" or nskip):
            reason = "a test of the series skipped %s on a branch with the stack: %s" % (
                "itself" if status == "skip" else "%d case(s)" % nskip, "; ".join(skips[:3]) or reason)
            status = "fail"
        else:
            lost = [s for s in skips if NO_SERIES in s]
            if lost:
                status = "fail"
                reason = "%d case(s) found no batch ioctl on a branch with the stack: %s" % (
                    len(lost), lost[0])
    return status, reason, cases, totals


def parse_console(lines, splat):
    """Split the console into per-test logs, results and kernel splats."""
    st = {"results": {}, "logs": {}, "splats": [], "fatal": None, "done": False, "boot": None}
    current = None
    in_kmemleak = False
    for l in lines:
        m = MARKER.search(l)
        if m and m.start() > 0 and current is not None:
            # Test output without a final newline, glued to the marker.
            st["logs"][current].append(l[:m.start()])
        if m:
            kind, rest = m.group(1), m.group(2)
            if kind == "BOOT":
                st["boot"] = rest
            elif kind == "FATAL":
                st["fatal"] = rest
            elif kind == "TEST-START":
                current = rest.split()[0] if rest.split() else "?"
                st["logs"][current] = []
                continue
            elif kind == "RESULT":
                f = rest.split() + ["", "", "", "0"]
                name, rc, when, cs = f[:4]
                st["results"][name] = (rc, when, int(cs) / 100.0 if cs.isdigit() else 0.0)
                current = None
                continue
            elif kind == "KMEMLEAK-SCAN":
                in_kmemleak = True
                current = None
            elif kind == "DONE":
                st["done"] = True
                in_kmemleak = False
        if current is not None:
            st["logs"][current].append(l)
        # A kernel line may be glued to test output: look from its stamp on.
        k = STAMP_ANY.search(l)
        text = l[k.start():] if k else (l if in_kmemleak else None)
        if text is not None and splat.search(text):
            st["splats"].append((current or ("kmemleak" if in_kmemleak else "(outside tests)"), l))
    return st


def read_list(path):
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for l in f:
                if l.strip() and not l.startswith("#"):
                    name, _, why = l.strip().partition(" ")
                    out.append((name, why.strip()))
    return out


def main(argv):
    rd, branch, flavor, splat_re = argv[1:5]
    has_stack = len(argv) > 5 and argv[5] == "1"
    splat = re.compile(splat_re)
    with open(os.path.join(rd, "console.log"), errors="replace") as f:
        lines = [l.rstrip("\r\n") for l in f]
    planned = []
    with open(os.path.join(rd, "tests.list")) as f:
        for l in f:
            if l.strip():
                planned.append((l.split()[0], l.split()[2] if len(l.split()) > 2 else "always"))
    skipped = read_list(os.path.join(rd, "skipped.list"))
    tier = None
    if os.path.exists(os.path.join(rd, "tier")):
        with open(os.path.join(rd, "tier")) as f:
            tier = f.read().strip()
    qemu_rc = None
    if os.path.exists(os.path.join(rd, "qemu-rc")):
        with open(os.path.join(rd, "qemu-rc")) as f:
            qemu_rc = f.read().strip()

    st = parse_console(lines, splat)
    results, logs, splats, fatal = st["results"], st["logs"], st["splats"], st["fatal"]
    os.makedirs(os.path.join(rd, "tests"), exist_ok=True)
    for name, out in logs.items():
        with open(os.path.join(rd, "tests", name.replace("/", "_") + ".log"), "w") as f:
            f.write("\n".join(out) + "\n")

    hung = not st["done"] and fatal is None
    vm_end = ""
    if qemu_rc in ("124", "137"):
        vm_end = "the VM was killed at its hard timeout"
    elif qemu_rc not in (None, "0"):
        vm_end = "QEMU exited with status %s (see qemu.stderr)" % qemu_rc
    entries = []
    for name, when in planned:
        status, reason, secs, cases, totals = "fail", "", 0.0, [], None
        if name in results:
            rc, when_run, secs = results[name]
            status, reason, cases, totals = classify(rc, when_run or when, logs.get(name, []), has_stack)
        elif fatal:
            reason = "not run: " + fatal
        elif name in logs:
            reason = "VM hung or crashed during this test" + (": " + vm_end if vm_end else "")
        else:
            reason = "not run (VM stopped early%s)" % (": " + vm_end if vm_end else "")
        if name in {t for t, _ in splats} and status != "fail":
            status, reason = "fail", "kernel splat during the test"
        e = {"name": name, "status": status, "seconds": secs, "reason": reason}
        if totals is not None:
            e["totals"] = totals
        if cases:
            e["cases"] = cases
        entries.append(e)
    for name, why in skipped:
        entries.append({"name": name, "status": "skip", "seconds": 0.0, "reason": why})
    for name, why in read_list(os.path.join(rd, "failures.list")):
        entries.append({"name": name, "status": "fail", "seconds": 0.0, "reason": why})

    tap = ["TAP version 13"]
    n = 0
    for e in entries:
        n += 1
        ok = "not ok" if e["status"] == "fail" else "ok"
        directive = ""
        if e["status"] == "skip":
            directive = " # SKIP " + e["reason"]
        elif e["status"] in ("fail", "xfail"):
            directive = " # " + e["reason"]
        tap.append("%s %d %s%s" % (ok, n, e["name"], directive))
        t = e.get("totals")
        tap.append("  # time=%.1fs%s" % (e["seconds"], "" if not t else
                   " cases: pass %d, fail %d, skip %d" % (t["pass"], t["fail"], t["skip"])))
    n += 1
    log_ok = not splats and not hung and fatal is None
    tap.append("%s %d kernel-log-clean%s" % ("ok" if log_ok else "not ok", n,
               "" if log_ok else " # %d splat line(s)%s" % (len(splats), ", VM hung" if hung else "")))
    tap.insert(1, "1..%d" % n)

    passed = sum(e["status"] in ("pass", "xfail") for e in entries) + (1 if log_ok else 0)
    failed = sum(e["status"] == "fail" for e in entries) + (0 if log_ok else 1)
    skips = sum(e["status"] == "skip" for e in entries)
    summary = {
        "branch": branch, "flavor": flavor, "kernel": st["boot"], "fatal": fatal,
        "hung": hung, "qemu_rc": qemu_rc, "has_stack": has_stack, "tier": tier,
        "passed": passed, "failed": failed, "skipped": skips,
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
        print("error: %s/%s: the test VM hung or died (no KB-DONE)%s; console tail:" % (
            branch, flavor, ": " + vm_end if vm_end else ""), file=sys.stderr)
        print("\n".join(lines[-40:]), file=sys.stderr)
    for t, l in splats[:20]:
        print("splat (%s): %s" % (t, l), file=sys.stderr)
    for e in entries:
        if e["status"] == "fail" and e["name"] in logs:
            print("--- tail of %s (%s) ---" % (e["name"], e["reason"]), file=sys.stderr)
            print("\n".join(logs[e["name"]][-25:]), file=sys.stderr)
    print("%s/%s: %d passed, %d failed, %d skipped" % (branch, flavor, passed, failed, skips),
          file=sys.stderr)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
