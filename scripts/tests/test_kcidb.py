#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Unit tests of scripts/kcidb.py (a run as a KCIDB I/O document) and of the
CI workflow .github/workflows/pipeline.yml.  Run by 'pipeline check'.

Each test makes a run directory the way scripts/run.sh does (matrix.tsv,
step logs, summary.json per boot, metadata.json written by metadata.py
itself) in a temporary directory, writes kcidb.json from it and validates
it against scripts/kcidb-schema.json."""
import contextlib
import copy
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

try:
    import jsonschema  # noqa: F401
    import yaml
except ImportError:
    # A python3 without them (pyenv): Debian's has python3-jsonschema and
    # python3-yaml, which 'pipeline check' installs.
    if os.path.exists("/usr/bin/python3") and not os.environ.get("KB_KCIDB_TEST_REEXEC"):
        os.environ["KB_KCIDB_TEST_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3", os.path.abspath(__file__)] + sys.argv[1:])
    raise

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.dirname(HERE)
TOP = os.path.dirname(SCRIPTS)
sys.path.insert(0, SCRIPTS)
import kcidb  # noqa: E402
import metadata  # noqa: E402

KCIDB_PATH = re.compile(r"^([a-zA-Z0-9_-]+(\.[a-zA-Z0-9_-]+)*)?$")

MAINLINE_TESTS = [
    {"name": "set_memory_region_test", "status": "pass", "seconds": 22.3, "reason": ""},
    {"name": "x86/memslot_batch_race_test", "status": "pass", "seconds": 9.3, "reason": "",
     "totals": {"pass": 1, "fail": 0, "xfail": 0, "xpass": 0, "skip": 0, "error": 0}},
    {"name": "x86/memslot_batch_race_test-legacy", "status": "xfail", "seconds": 0.1,
     "reason": "failed as it must (exit status 1)"},
    {"name": "kb/hole", "status": "fail", "seconds": 34.5, "reason": "exit status 1"},
    {"name": "dirty_log_test", "status": "skip", "seconds": 0.0, "reason": "flaky on this base"},
    {"name": "kb/fuzz", "status": "fail", "seconds": 0.0, "reason": "not run (VM stopped early)"},
    {"name": "mmu_stress_test", "status": "fail", "seconds": 0.0, "reason": "binary not built on this tree"},
]


def summary(branch, flavor, tests, splats=(), has_stack=True):
    return {"branch": branch, "flavor": flavor, "kernel": "7.3.0-rc7+ 2 cpus", "fatal": None,
            "hung": False, "qemu_rc": "0", "has_stack": has_stack, "tier": "quick",
            "passed": sum(t["status"] in ("pass", "xfail") for t in tests),
            "failed": sum(t["status"] == "fail" for t in tests),
            "skipped": sum(t["status"] == "skip" for t in tests),
            "tests": tests, "splats": [{"test": t, "line": l} for t, l in splats]}


def make_run(parent, name="20261201T101010Z-4242"):
    """A run of mainline (minimal: built and booted; debug: the build failed),
    6.1.y (the test step died before any result) and 7.2.y (apply
    failed), as scripts/run.sh leaves it."""
    rd = os.path.join(parent, name)
    os.makedirs(rd)
    rows = [
        ("mainline", "-", "fetch", "ok", 1, 0), ("mainline", "-", "apply", "ok", 18, 0),
        ("mainline", "minimal", "build", "ok", 16, 0), ("mainline", "minimal", "test", "3P/3F/1S", 167, 1),
        ("mainline", "debug", "build", "FAILED", 40, 2),
        ("6.1.y", "-", "fetch", "ok", 2, 0), ("6.1.y", "-", "apply", "ok", 3, 0),
        ("6.1.y", "minimal", "build", "ok", 30, 0), ("6.1.y", "minimal", "test", "FAILED", 12, 1),
        ("7.2.y", "-", "fetch", "ok", 1, 0), ("7.2.y", "-", "apply", "FAILED", 5, 1),
    ]
    with open(os.path.join(rd, "matrix.tsv"), "w") as f:
        for r in rows:
            f.write("\t".join(map(str, r)) + "\n")
    for b, fl, step, _, _, rc in rows:
        log = "%s-%s.log" % (b, step) if fl == "-" else "%s-%s-%s.log" % (b, fl, step)
        with open(os.path.join(rd, log), "w") as f:
            f.write("".join("%s %s line %d\n" % (b, step, i) for i in range(100)))
            if rc:
                f.write("error: %s %s failed here\n" % (b, step))
    with open(os.path.join(rd, "mainline-minimal-summary.json"), "w") as f:
        json.dump(summary("mainline", "minimal", MAINLINE_TESTS,
                          splats=[("kb/hole", "[   12.3] WARNING: CPU: 0 PID: 1 at virt/kvm/kvm_main.c")]), f)
    with open(os.path.join(rd, "mainline-minimal-results.tap"), "w") as f:
        f.write("TAP version 13\n")
    with contextlib.redirect_stderr(io.StringIO()):
        metadata.write(rd, TOP, os.path.join(parent, "no-cache"), "quick", 300)
    return rd


def write_quiet(rd, **kw):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = kcidb.write(rd, TOP, **kw)
    with open(os.path.join(rd, "kcidb.json")) as f:
        return rc, json.load(f), err.getvalue()


class Write(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp)
        self.rd = make_run(self.tmp)
        self.rc, self.doc, self.err = write_quiet(self.rd)

    def by_path(self, branch="mainline", flavor="minimal"):
        return {t["path"]: t for t in self.doc["tests"]
                if t["misc"]["branch"] == branch and t["misc"]["flavor"] == flavor}

    def test_document_is_valid(self):
        self.assertEqual(self.rc, 0, self.err)
        self.assertEqual(kcidb.check(self.doc), [])
        self.assertEqual(self.doc["version"], {"major": 5, "minor": 3})

    def test_objects(self):
        self.assertEqual([c["tree_name"] for c in self.doc["checkouts"]], ["mainline", "6.1.y", "7.2.y"])
        self.assertEqual([(b["misc"]["branch"], b["config_name"], b["status"]) for b in self.doc["builds"]],
                         [("mainline", "minimal", "PASS"), ("mainline", "debug", "FAIL"), ("6.1.y", "minimal", "PASS")])
        for b in self.doc["builds"]:
            self.assertEqual(b["architecture"], "x86_64")
            self.assertTrue(os.path.exists(os.path.join(self.rd, b["log_url"])))
        # 7 results and the kernel log of mainline's boot, one test for 6.1.y's dead test step
        self.assertEqual(len(self.doc["tests"]), 9)

    def test_checkout_valid_only_when_fetch_and_apply_passed(self):
        c = {c["tree_name"]: c for c in self.doc["checkouts"]}
        self.assertTrue(c["mainline"]["valid"])
        self.assertTrue(c["6.1.y"]["valid"])
        self.assertFalse(c["7.2.y"]["valid"])
        self.assertIn("error: 7.2.y apply failed here", c["7.2.y"]["log_excerpt"])
        self.assertEqual(c["mainline"]["misc"]["package"], "linux-source-7.3")

    def test_failed_build_has_its_log_tail(self):
        b = self.doc["builds"][1]
        self.assertIn("error: mainline build failed here", b["log_excerpt"])
        self.assertEqual(b["duration"], 40)
        self.assertNotIn("log_excerpt", self.doc["builds"][0])

    def test_status_mapping(self):
        t = self.by_path()
        want = {
            "kvm.set_memory_region_test": ("PASS", "pass"),
            "kvm.x86.memslot_batch_race_test": ("PASS", "pass"),
            "kvm.x86.memslot_batch_race_test-legacy": ("PASS", "xfail"),
            "kvm.kb.hole": ("FAIL", "fail"),
            "kvm.dirty_log_test": ("SKIP", "skip"),
            "kvm.kb.fuzz": ("MISS", "fail"),
            "kvm.mmu_stress_test": ("ERROR", "fail"),
            "kvm.kernel-log-clean": ("FAIL", "fail"),
        }
        self.assertEqual({p: (x["status"], x["misc"]["result"]) for p, x in t.items()}, want)
        self.assertEqual(t["kvm.dirty_log_test"]["misc"]["reason"], "flaky on this base")
        self.assertIn("WARNING", t["kvm.kernel-log-clean"]["log_excerpt"])
        self.assertEqual(t["kvm.set_memory_region_test"]["misc"]["tier"], "quick")

    def test_test_step_without_results_is_an_error(self):
        t = self.by_path("6.1.y")
        self.assertEqual(list(t), ["kvm"])
        self.assertEqual(t["kvm"]["status"], "ERROR")

    def test_paths_and_ids(self):
        ids = [o["id"] for k in ("checkouts", "builds", "tests") for o in self.doc[k]]
        self.assertEqual(len(ids), len(set(ids)))
        for i in ids:
            self.assertTrue(i.startswith("kvm_atomic_memslots:20261201T101010Z-4242:"), i)
        for t in self.doc["tests"]:
            self.assertRegex(t["path"], KCIDB_PATH)

    def test_ids_are_stable_for_a_run(self):
        _, again, _ = write_quiet(self.rd)
        self.assertEqual(again, self.doc)

    def test_patchset(self):
        c = {c["tree_name"]: c for c in self.doc["checkouts"]}
        names = kcidb.series_patches(TOP, "mainline", "patches")
        self.assertTrue(names)
        self.assertEqual([p["name"] for p in c["mainline"]["patchset_files"]], names)
        # KCIDB: sha256 of the newline-terminated sha256 of each patch, in order
        digests = [kcidb.sha256_file(os.path.join(TOP, "patches", n)) for n in names]
        with open(os.path.join(TOP, "patches", names[0]), "rb") as f:
            self.assertEqual(digests[0], hashlib.sha256(f.read()).hexdigest())
        self.assertEqual(c["mainline"]["patchset_hash"],
                         hashlib.sha256("".join(d + "\n" for d in digests).encode()).hexdigest())
        for p in c["mainline"]["patchset_files"]:
            self.assertTrue(os.path.exists(os.path.join(self.rd, p["url"])))
        self.assertEqual([p["name"] for p in c["6.1.y"]["patchset_files"]],
                         kcidb.series_patches(TOP, "6.1.y", "backports/6.1.y"))
        # a stack without patches: an empty series, or no stack at all
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "backports", "x"))
            open(os.path.join(d, "backports", "x", "series"), "w").close()
            self.assertEqual(kcidb.series_patches(d, "x", "backports/x"), [])
            self.assertEqual(kcidb.series_patches(d, "x", ""), [])

    def test_stack_changed_since_the_run_leaves_the_patchset_out(self):
        mp = os.path.join(self.rd, "metadata.json")
        with open(mp) as f:
            meta = json.load(f)
        for r in meta["runs"]:
            if r["branch"] == "mainline":
                r["stack"]["sha256"] = "0" * 64
        with open(mp, "w") as f:
            json.dump(meta, f)
        rc, doc, err = write_quiet(self.rd)
        self.assertEqual(rc, 0)
        self.assertNotIn("patchset_files", doc["checkouts"][0])
        self.assertIn("not the one this run used", err)

    def test_base_url(self):
        _, doc, _ = write_quiet(self.rd, base_url="https://example.org/runs/1/")
        self.assertEqual(doc["builds"][0]["log_url"], "https://example.org/runs/1/mainline-minimal-build.log")
        self.assertEqual(kcidb.check(doc), [])

    def test_command_line(self):
        p = subprocess.run([sys.executable, os.path.join(SCRIPTS, "kcidb.py"), "write", self.rd],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("valid KCIDB I/O 5.3 document: 3 checkout(s), 3 build(s), 9 test(s)", p.stdout)


class Invalid(unittest.TestCase):
    """Documents the schema and the id checks must refuse."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp()
        cls.rd = make_run(cls.tmp)
        _, cls.doc, _ = write_quiet(cls.rd)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def bad(self, change, want):
        d = copy.deepcopy(self.doc)
        change(d)
        errs = kcidb.check(d)
        self.assertTrue(errs, "accepted")
        self.assertTrue(any(re.search(want, e) for e in errs), errs)

    def test_missing_required_field(self):
        self.bad(lambda d: d["builds"][0].pop("checkout_id"), "'checkout_id' is a required property")
        self.bad(lambda d: d["tests"][0].pop("status"), "'status' is a required property")
        self.bad(lambda d: d.pop("version"), "'version' is a required property")

    def test_bad_status(self):
        self.bad(lambda d: d["tests"][0].update(status="PASSED"), "is not one of")
        self.bad(lambda d: d["builds"][0].update(status="ok"), "is not one of")

    def test_bad_version(self):
        self.bad(lambda d: d["version"].update(major=4), "5 was expected")

    def test_bad_ids_and_paths(self):
        self.bad(lambda d: d["tests"][0].update(id="no origin here"), "does not match")
        self.bad(lambda d: d["tests"][0].update(path="kvm.x86/memslot_batch_test"), "does not match")
        self.bad(lambda d: d["tests"][1].update(id=d["tests"][0]["id"]), "is not unique")
        self.bad(lambda d: d["tests"][0].update(build_id="kvm_atomic_memslots:nowhere"), "not in the document's builds")
        self.bad(lambda d: d["builds"][0].update(valid=True), "Additional properties")

    def test_command_line_fails(self):
        d = copy.deepcopy(self.doc)
        d["tests"][0]["status"] = "BROKEN"
        p = os.path.join(self.tmp, "bad.json")
        with open(p, "w") as f:
            json.dump(d, f)
        r = subprocess.run([sys.executable, os.path.join(SCRIPTS, "kcidb.py"), "validate", p],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT a valid KCIDB I/O 5.3 document", r.stderr)


class Fixture(unittest.TestCase):
    """A real run directory (scripts/tests/fixtures/kcidb-run/: 7.2.y and
    6.12.y with their stacks, minimal config)."""

    def test_real_run(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        src = os.path.join(HERE, "fixtures", "kcidb-run")
        run = os.listdir(src)[0]
        shutil.copytree(os.path.join(src, run), os.path.join(tmp, run))
        rc, doc, err = write_quiet(os.path.join(tmp, run))
        self.assertEqual(rc, 0, err)
        self.assertEqual(kcidb.check(doc), [])
        self.assertEqual([c["tree_name"] for c in doc["checkouts"]], ["7.2.y", "6.12.y"])
        self.assertTrue(all(b["status"] == "PASS" for b in doc["builds"]))
        negative = [t for t in doc["tests"] if t["misc"]["result"] == "xfail"]
        self.assertEqual(len(negative), 4)  # two negative controls per boot
        self.assertTrue(all(t["status"] == "PASS" for t in negative))


class Workflow(unittest.TestCase):
    """.github/workflows/pipeline.yml: valid YAML, one 'run' job per branch
    of the trees file, and a 'check' job."""

    def setUp(self):
        with open(os.path.join(TOP, ".github", "workflows", "pipeline.yml")) as f:
            self.wf = yaml.safe_load(f)

    def steps(self, job):
        return " ".join(str(s.get("run", "")) + " " + str(s.get("uses", "")) for s in self.wf["jobs"][job]["steps"])

    def test_triggers(self):
        on = self.wf.get("on", self.wf.get(True))  # YAML 1.1 reads a bare 'on' as true
        self.assertIn("push", on)

    def test_run_matrix_is_the_trees_file(self):
        job = self.wf["jobs"]["run"]
        self.assertEqual(job["strategy"]["matrix"]["branch"], list(metadata.trees(TOP)))
        self.assertFalse(job["strategy"]["fail-fast"])
        s = self.steps("run")
        self.assertIn("./scripts/pipeline run ${{ matrix.branch }}", s)
        self.assertIn("scripts/kcidb.py validate", s)
        self.assertIn("actions/upload-artifact", s)

    def test_check_job(self):
        self.assertIn("./scripts/pipeline check", self.steps("check"))


if __name__ == "__main__":
    unittest.main(verbosity=1)
