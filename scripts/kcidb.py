#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A run's results as one KCIDB I/O document, KernelCI's common report format.

usage: kcidb.py write RUN_DIR [--repo REPO] [--base-url URL]
       kcidb.py validate FILE...

'write' reads the run directory scripts/run.sh makes (metadata.json from
scripts/metadata.py, matrix.tsv, each boot's <branch>-<config>-summary.json
from scripts/tap.py, the step logs) and writes RUN_DIR/kcidb.json, then
validates it:
  checkouts  one per branch: the pinned Debian linux-source package with the
             branch's stack; valid when fetch and apply passed; the patches
             are copied to RUN_DIR/patches/<branch>/ and listed in order as
             patchset_files, with KCIDB's patchset_hash
  builds     one per branch and kernel config that reached the build step:
             x86_64, gcc, the config name, PASS/FAIL, duration, build log
  tests      one per result in each boot's summary.json, path
             'kvm.<name with / as .>' (kvm.x86.memslot_batch_race_test),
             plus kvm.kernel-log-clean for the boot's kernel log; our own
             verdict, tier and config are in 'misc'
URLs are file names relative to RUN_DIR, or under --base-url URL (where the
directory is published).  Ids are 'kvm_atomic_memslots:<run>:...', with
<run> the run directory's name: the same run always gives the same ids.
The stack is read from REPO (default: this repository) and must still be
the one metadata.json recorded; if it changed, the patchset is left out.

'validate' checks documents against scripts/kcidb-schema.json (our subset
of KCIDB I/O 5.3, JSON Schema 2020-12, with python3-jsonschema) and that ids
are unique and every build and test points to an object of the document.
"""
import datetime
import hashlib
import json
import os
import re
import shutil
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import metadata  # noqa: E402  (trees and stack hash, as metadata.json has them)

ORIGIN = "kvm_atomic_memslots"
VERSION = {"major": 5, "minor": 3}
SCHEMA = os.path.join(HERE, "kcidb-schema.json")
EXCERPT_MAX = 16384
PATH_PART = re.compile(r"[^A-Za-z0-9_-]")


def load_json(path):
    with open(path) as f:
        return json.load(f)


def parse_time(s):
    try:
        return datetime.datetime.fromisoformat(s)
    except (TypeError, ValueError):
        return None


def iso(t):
    return t.isoformat(timespec="seconds") if t else None


def test_path(name):
    """'x86/memslot_batch_race_test-mmu' -> 'kvm.x86.memslot_batch_race_test-mmu'."""
    return ".".join(["kvm"] + [PATH_PART.sub("_", p) or "_" for p in name.split("/")])


def test_status(status, reason):
    """Our verdict (scripts/tap.py) as a KCIDB status."""
    if status in ("pass", "xfail"):
        # xfail: a negative control that failed as it must, a pass.
        return "PASS"
    if status == "skip":
        return "SKIP"
    if status == "fail":
        if reason.startswith("not run"):
            return "MISS"  # the VM stopped, or the boot had no KVM, before it ran
        if reason.startswith("binary not built") or reason.endswith(": no verdict"):
            return "ERROR"  # the test itself could not give a verdict
        return "FAIL"
    return "ERROR"


def excerpt(path, lines=60):
    """The tail of a log, for a failed step."""
    if not path or not os.path.exists(path):
        return None
    with open(path, errors="replace") as f:
        tail = "".join(f.readlines()[-lines:]).replace("\0", "")
    return tail[-EXCERPT_MAX:] or None


def series_patches(repo, branch, stack):
    """Patch file names of a stack in series order (scripts/lib.sh series_patches)."""
    if not stack:
        return []
    series = os.path.join(repo, "series" if branch == "mainline" else os.path.join(stack, "series"))
    if not os.path.exists(series):
        return []
    with open(series) as f:
        names = [l.split("#")[0].strip() for l in f]
    return [n.split()[0] for n in names if n]


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def drop_none(d):
    return {k: v for k, v in d.items() if v is not None}


class Writer:
    def __init__(self, run_dir, repo, base_url=None):
        self.run_dir = run_dir
        self.repo = repo
        self.base_url = base_url.rstrip("/") + "/" if base_url else None
        self.run = os.path.basename(os.path.realpath(run_dir))
        self.meta = load_json(os.path.join(run_dir, "metadata.json"))
        self.trees = metadata.trees(repo)
        self.ids = set()

    def url(self, rel):
        """A file of the run directory (None if it is not there)."""
        if not os.path.exists(os.path.join(self.run_dir, rel)):
            return None
        return self.base_url + urllib.parse.quote(rel) if self.base_url else rel

    def new_id(self, kind, *parts):
        base = "%s:%s" % (ORIGIN, ":".join((self.run,) + parts))
        i, n = base, 1
        while (kind, i) in self.ids:
            n += 1
            i = "%s#%d" % (base, n)
        self.ids.add((kind, i))
        return i

    def step_times(self):
        """Start time of each step: the steps of a run follow each other, from
        the run's start (metadata's finish time less its duration)."""
        end = parse_time(self.meta.get("finished"))
        if end is None:
            return {}, None, None
        start = end - datetime.timedelta(seconds=self.meta.get("seconds", 0))
        t, out = start, {}
        mpath = os.path.join(self.run_dir, "matrix.tsv")
        rows = []
        if os.path.exists(mpath):
            with open(mpath) as f:
                rows = [l.rstrip("\n").split("\t") for l in f]
        for f in rows:
            if len(f) < 6:
                continue
            out[(f[0], f[1], f[2])] = t
            t += datetime.timedelta(seconds=int(f[4]) if f[4].isdigit() else 0)
        return out, start, end

    def patchset(self, branch, stack, recorded):
        """Copy the stack into the run directory; (files, hash, per-patch sha256),
        or None if the repository's stack is not the one the run used."""
        now = metadata.stack_hash(self.repo, branch, stack)
        if now["sha256"] != recorded:
            print("kcidb.py: %s: the stack in %s is not the one this run used (sha256 %s, run %s): "
                  "patchset left out" % (branch, self.repo, now["sha256"], recorded), file=sys.stderr)
            return None
        files, digests = [], []
        dst = os.path.join("patches", branch)
        for name in series_patches(self.repo, branch, stack):
            os.makedirs(os.path.join(self.run_dir, dst), exist_ok=True)
            shutil.copyfile(os.path.join(self.repo, stack, name), os.path.join(self.run_dir, dst, name))
            digests.append((name, sha256_file(os.path.join(self.run_dir, dst, name))))
            files.append({"name": name, "url": self.url(os.path.join(dst, name))})
        h = hashlib.sha256("".join(d + "\n" for _, d in digests).encode()).hexdigest() if digests else ""
        return files, h, dict(digests)

    def document(self):
        meta = self.meta
        times, start, end = self.step_times()
        gcc = (meta.get("toolchain") or {}).get("gcc")
        qemu = (meta.get("toolchain") or {}).get("qemu")
        checkouts, builds, tests, checkout_ids, comments = [], [], [], {}, {}
        for r in meta["runs"]:
            b, fl, steps = r["branch"], r["config"], r["steps"]
            if b not in checkout_ids:
                checkout_ids[b] = self.new_id("checkout", b)
                checkouts.append(self.checkout(r, checkout_ids[b], start, end))
                comments[b] = checkouts[-1]["comment"]
            if "build" in steps:
                build_id = self.new_id("build", b, fl)
                st = steps["build"]
                builds.append(drop_none({
                    "id": build_id, "origin": ORIGIN, "checkout_id": checkout_ids[b],
                    "comment": "%s, %s kernel config" % (comments[b], fl),
                    "start_time": iso(times.get((b, fl, "build"))),
                    "duration": st["seconds"],
                    "architecture": "x86_64",
                    "command": "scripts/pipeline build %s %s" % (b, fl),
                    "compiler": gcc,
                    "config_name": fl,
                    "log_url": self.url(st["log"]),
                    "log_excerpt": excerpt(os.path.join(self.run_dir, st["log"]))
                    if st["result"] != "pass" else None,
                    "status": "PASS" if st["result"] == "pass" else "FAIL",
                    "misc": drop_none({"branch": b, "config": fl, "cell": st.get("cell"),
                                       "kernel_config_sha256": r.get("kernel_config_sha256"),
                                       "kernel_image_sha256": r.get("kernel_image_sha256")}),
                }))
                if "test" in steps:
                    tests += self.tests(r, build_id, qemu)
        return {"version": dict(VERSION), "checkouts": checkouts, "builds": builds, "tests": tests}

    def checkout(self, r, cid, start, end):
        b, steps, stack = r["branch"], r["steps"], r.get("stack") or {}
        tr = self.trees.get(b, {})
        n = stack.get("patches") or 0
        comment = "Debian %s %s" % (r.get("package"), r.get("base_version"))
        comment += " + %d patches (%s)" % (n, stack.get("path")) if n else ", no stack"
        valid = all(steps.get(s, {}).get("result") == "pass" for s in ("fetch", "apply"))
        failed = next((steps[s] for s in ("fetch", "apply") if s in steps and steps[s]["result"] != "pass"), None)
        c = {
            "id": cid, "origin": ORIGIN, "tree_name": b, "comment": comment,
            "start_time": iso(start), "origin_builds_finish_time": iso(end),
            "origin_tests_finish_time": iso(end),
            # The apply step's log; the fetch step's if the run stopped there.
            "log_url": self.url(steps["apply" if "apply" in steps else "fetch"]["log"])
            if "apply" in steps or "fetch" in steps else None,
            "log_excerpt": excerpt(os.path.join(self.run_dir, failed["log"])) if failed else None,
            "valid": valid,
        }
        misc = {"branch": b, "package": r.get("package"), "version": r.get("base_version"),
                "suite": tr.get("suite"), "stack": stack.get("path"), "stack_patches": n,
                "stack_sha256": stack.get("sha256"),
                "fetch": steps.get("fetch", {}).get("result"), "apply": steps.get("apply", {}).get("result"),
                "repo_commit": (self.meta.get("repo") or {}).get("commit"),
                "repo_dirty": (self.meta.get("repo") or {}).get("dirty"),
                "tier": self.meta.get("tier"), "run": self.run}
        ps = self.patchset(b, stack.get("path") or "", stack.get("sha256")) if n else ([], "", {})
        if ps is not None:
            files, h, digests = ps
            c["patchset_files"], c["patchset_hash"] = files, h
            misc["patch_sha256"] = digests
        c["misc"] = drop_none(misc)
        return drop_none(c)

    def tests(self, r, build_id, qemu):
        b, fl, st = r["branch"], r["config"], r["steps"]["test"]
        log_url = self.url(st["log"])
        sj = os.path.join(self.run_dir, "%s-%s-summary.json" % (b, fl))
        if not os.path.exists(sj):
            # The test step died before it wrote results (or left none).
            return [drop_none({
                "id": self.new_id("test", b, fl, "kvm"), "origin": ORIGIN, "build_id": build_id,
                "path": "kvm", "status": "ERROR" if st["result"] != "pass" else "MISS",
                "comment": "the test step left no results (%s)" % st.get("cell", "?"),
                "duration": st["seconds"], "log_url": log_url,
                "log_excerpt": excerpt(os.path.join(self.run_dir, st["log"])),
                "misc": drop_none({"name": "kvm", "branch": b, "flavor": fl, "tier": self.meta.get("tier"),
                                   "result": "error"}),
            })]
        s = load_json(sj)
        tier = s.get("tier") or self.meta.get("tier")
        reused = "(reused)" in st.get("cell", "")
        env = {"comment": "QEMU x86_64, TCG, -cpu max (nested SVM); kernel %s" % s.get("kernel"),
               "misc": drop_none({"qemu": qemu, "kernel": s.get("kernel"), "qemu_rc": s.get("qemu_rc"),
                                  "has_stack": s.get("has_stack")})}
        out = []
        for t in s.get("tests", []):
            reason = t.get("reason") or ""
            path = test_path(t["name"])
            misc = drop_none({"name": t["name"], "branch": b, "flavor": fl, "tier": tier,
                              "result": t.get("status") if t.get("status") in ("pass", "fail", "skip", "xfail")
                              else "error", "reused": reused})
            if reason:
                misc["reason"] = reason
            if t.get("totals"):
                misc["totals"] = t["totals"]
            out.append(drop_none({
                "id": self.new_id("test", b, fl, path), "origin": ORIGIN, "build_id": build_id,
                "path": path, "status": test_status(t.get("status"), reason),
                "comment": ("%s: %s" % (t["name"], reason)).replace("\0", "") if reason else None,
                "duration": float(t.get("seconds") or 0), "log_url": log_url,
                "environment": env, "misc": misc,
            }))
        splats = s.get("splats") or []
        clean = not splats and not s.get("hung") and not s.get("fatal")
        why = []
        if splats:
            why.append("%d splat line(s)" % len(splats))
        if s.get("hung"):
            why.append("the VM hung or died")
        if s.get("fatal"):
            why.append(s["fatal"])
        text = "\n".join("%s: %s" % (x.get("test"), x.get("line")) for x in splats[:100]).replace("\0", "")
        out.append(drop_none({
            "id": self.new_id("test", b, fl, "kvm.kernel-log-clean"), "origin": ORIGIN,
            "build_id": build_id, "path": "kvm.kernel-log-clean",
            "status": "PASS" if clean else "FAIL",
            "comment": "kernel log: " + ("; ".join(why) if why else "clean"),
            "log_url": log_url, "log_excerpt": text[:EXCERPT_MAX] or None, "environment": env,
            "misc": drop_none({"name": "kernel-log-clean", "branch": b, "flavor": fl, "tier": tier,
                               "result": "pass" if clean else "fail", "reused": reused}),
        }))
        return out


def need_jsonschema():
    """jsonschema; run as a command by a python3 without it (a pyenv one), this
    script starts again under Debian's python3, which python3-jsonschema is for."""
    try:
        import jsonschema
        return jsonschema
    except ImportError:
        sysp = "/usr/bin/python3"
        if os.path.exists(sysp) and os.path.realpath(sys.executable) != os.path.realpath(sysp) and \
                os.path.realpath(sys.argv[0]) == os.path.realpath(__file__) and \
                not os.environ.get("KB_KCIDB_REEXEC"):
            os.environ["KB_KCIDB_REEXEC"] = "1"
            os.execv(sysp, [sysp, os.path.abspath(__file__)] + sys.argv[1:])
        sys.exit("kcidb.py: python3-jsonschema is missing (apt-get install python3-jsonschema)")


def check(doc, schema=None):
    """Every problem of a document, as strings; [] if it is valid."""
    js = need_jsonschema()
    schema = schema or load_json(SCHEMA)
    v = js.Draft202012Validator(schema, format_checker=js.FormatChecker())
    errs = ["%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(document)", e.message)
            for e in sorted(v.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))]
    if errs or not isinstance(doc, dict):
        return errs
    seen = {}
    for kind in ("checkouts", "builds", "tests"):
        ids = seen.setdefault(kind, set())
        for i, o in enumerate(doc.get(kind, [])):
            if o["id"] in ids:
                errs.append("%s/%d: id %s is not unique" % (kind, i, o["id"]))
            ids.add(o["id"])
            if not o["id"].startswith(o["origin"] + ":"):
                errs.append("%s/%d: id %s does not start with its origin '%s:'" % (kind, i, o["id"], o["origin"]))
    for kind, key, parent in (("builds", "checkout_id", "checkouts"), ("tests", "build_id", "builds")):
        for i, o in enumerate(doc.get(kind, [])):
            if o[key] not in seen[parent]:
                errs.append("%s/%d: %s %s is not in the document's %s" % (kind, i, key, o[key], parent))
    return errs


def validate(paths):
    bad = 0
    for p in paths:
        try:
            doc = load_json(p)
        except (OSError, ValueError) as e:
            print("%s: cannot read: %s" % (p, e), file=sys.stderr)
            bad = 1
            continue
        errs = check(doc)
        for e in errs:
            print("%s: %s" % (p, e), file=sys.stderr)
        if errs:
            print("%s: NOT a valid KCIDB I/O %d.%d document (%d problem(s))" % (
                p, VERSION["major"], VERSION["minor"], len(errs)), file=sys.stderr)
            bad = 1
        else:
            print("%s: valid KCIDB I/O %d.%d document: %d checkout(s), %d build(s), %d test(s)" % (
                p, VERSION["major"], VERSION["minor"], len(doc["checkouts"]), len(doc["builds"]),
                len(doc["tests"])))
    return bad


def write(run_dir, repo, base_url=None):
    doc = Writer(run_dir, repo, base_url).document()
    out = os.path.join(run_dir, "kcidb.json")
    with open(out + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(out + ".tmp", out)
    print("==> KCIDB report: %s" % out, file=sys.stderr)
    return validate([out])


def main(argv):
    args = argv[1:]
    if len(args) >= 2 and args[0] == "write":
        run_dir, rest = args[1], args[2:]
        opts = {"--repo": os.path.dirname(HERE), "--base-url": None}
        while rest:
            if rest[0] not in opts or len(rest) < 2:
                sys.exit(__doc__)
            opts[rest[0]], rest = rest[1], rest[2:]
        if not os.path.exists(os.path.join(run_dir, "metadata.json")):
            sys.exit("kcidb.py: no metadata.json in %s" % run_dir)
        return write(run_dir, opts["--repo"], opts["--base-url"])
    if len(args) >= 2 and args[0] == "validate":
        return validate(args[1:])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
