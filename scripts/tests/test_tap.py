#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Unit tests of scripts/tap.py: each case is a way a failure or a skip
could be reported as a pass.  Run by 'pipeline check'."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
try:
    import tap  # noqa: E402
except (ValueError, IndexError):
    tap = None  # a tap.py without a main guard (the EndToEnd tests still run)

SPLAT = r"(WARNING:|BUG:|Oops|KASAN:|soft lockup|hung_task)"
ALL_SKIP = [
    "TAP version 13", "1..2",
    "# Starting 2 tests from 1 test cases.",
    "#  RUN           race.run ...",
    "#      SKIP      page_idle not found",
    "ok 1 race.run # SKIP page_idle not found",
    "ok 2 race.other # SKIP page_idle not found",
    "# PASSED: 2 / 2 tests passed.",
    "# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:2 error:0",
]
MIXED = [
    "ok 1 errors.legacy_errnos",
    "ok 2 errors.batch_nent0 # SKIP KVM_CAP_USER_MEMORY_REGION_BATCH is 0: kernel without the batch ioctl",
    "# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:1 error:0",
]


class Classify(unittest.TestCase):
    def test_all_cases_skipped_is_a_skip(self):
        st, why, _, _ = tap.classify("0", "always", ALL_SKIP, False)
        self.assertEqual(st, "skip")
        self.assertIn("page_idle", why)

    def test_series_test_not_built_on_a_stack_fails(self):
        self.assertEqual(tap.classify("nobinary", "series", [], True)[0], "fail")

    def test_series_test_skipping_cases_on_a_stack_fails(self):
        log = ["ok 1 a", "ok 2 b # SKIP no THP", "# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:1 error:0"]
        self.assertEqual(tap.classify("0", "series", log, True)[0], "fail")
        self.assertEqual(tap.classify("0", "series", ALL_SKIP, True)[0], "fail")
        self.assertEqual(tap.classify("4", "series", ["1..0 # SKIP no cap"], True)[0], "fail")

    def test_suite_without_batch_ioctl_on_a_stack_fails(self):
        self.assertEqual(tap.classify("0", "always", MIXED, True)[0], "fail")
        self.assertEqual(tap.classify("0", "always", MIXED, False)[0], "pass")

    def test_exit_0_with_failed_cases_fails(self):
        log = ["not ok 1 a", "# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0"]
        self.assertEqual(tap.classify("0", "always", log, False)[0], "fail")

    def test_totals_of_two_binaries_add_up(self):
        log = ALL_SKIP + ["ok 1 x", "# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0"]
        self.assertEqual(tap.classify("0", "always", log, False)[0], "pass")

    def test_harness_that_ran_nothing_fails(self):
        log = ["# Totals: pass:0 fail:0 xfail:0 xpass:0 skip:0 error:0"]
        self.assertEqual(tap.classify("0", "always", log, False)[0], "fail")

    def test_plain_test_without_totals_keeps_exit_code(self):
        self.assertEqual(tap.classify("0", "always", ["Testing guest mode: PA-bits:ANY"], False)[0], "pass")
        self.assertEqual(tap.classify("1", "always", [], False)[0], "fail")
        self.assertEqual(tap.classify("4", "always", ["1..0 # SKIP nope"], False)[0], "skip")

    def test_negative_control(self):
        log = ["# MMIO exits: 77, fatal exits: 0", "not ok 1 race"]
        self.assertEqual(tap.classify("1", "xfail=MMIO.exits:.[1-9]", log, True)[0], "xfail")
        self.assertEqual(tap.classify("1", "xfail=(MMIO.exits:.[1-9]|fatal.exits:.[1-9])",
                                      ["# MMIO exits: 0, fatal exits: 1"], True)[0], "xfail")
        lost = "(MMIO.exits:.[1-9]|fatal.exits:.[1-9]|MMIO_VAL.\\|\\|.v.==.seq)"
        self.assertEqual(tap.classify("1", "xfail=" + lost,
                                      ["  v == MMIO_VAL || v == seq"], True)[0], "xfail")
        self.assertEqual(tap.classify("1", "xfail=" + lost,
                                      ["  v == MMIO_VAL || (v & ~0xffffffull) == TAG"], True)[0], "fail")
        self.assertEqual(tap.classify("0", "xfail=MMIO.exits:.[1-9]", log, True)[0], "fail")
        # The nested legacy control, as scripts/testlist has it.
        with open(os.path.join(os.path.dirname(__file__), "..", "testlist")) as f:
            row = [l.split() for l in f if l.startswith("x86/memslot_batch_race_test-nested-legacy ")]
        nested = row[0][3]
        for line in ("  L2 exited to L1: exit code 0x400, exit info 0x100000004 0xc0000000",
                     "  Unhandled exception '0x6' at guest RIP '0xc0400800'",
                     "# MMIO exits: 3, fatal exits: 0"):
            self.assertEqual(tap.classify("1", nested, [line], True)[0], "xfail", line)
        self.assertEqual(tap.classify("1", nested, ["  Unhandled exception '0xd' at guest RIP '0x1'"],
                                      True)[0], "fail")
        self.assertEqual(tap.classify("1", "xfail=MMIO.exits:.[1-9]", ["Segmentation fault"], True)[0], "fail")
        for rc in ("4", "timeout", "nobinary"):
            self.assertEqual(tap.classify(rc, "xfail=x", log, True)[0], "fail")


class Console(unittest.TestCase):
    def test_splat_glued_to_test_output_is_found(self):
        import re
        lines = ["KB-TEST-START t", "ok 1 foo[   12.345678] WARNING: CPU: 0 PID: 1 at x", "KB-RESULT t 0 always 100"]
        st = tap.parse_console(lines, re.compile(SPLAT))
        self.assertEqual(len(st["splats"]), 1)
        self.assertEqual(st["splats"][0][0], "t")

    def test_marker_glued_to_test_output(self):
        import re
        lines = ["KB-TEST-START t", "partial lineKB-RESULT t 1 always 100", "KB-DONE"]
        st = tap.parse_console(lines, re.compile(SPLAT))
        self.assertEqual(st["results"]["t"][0], "1")
        self.assertTrue(st["done"])


class EndToEnd(unittest.TestCase):
    def run_tap(self, console, tests, qemu_rc="0", has_stack="1"):
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "console.log"), "w") as f:
            f.write("\n".join(console) + "\n")
        with open(os.path.join(d, "tests.list"), "w") as f:
            f.write("\n".join(tests) + "\n")
        with open(os.path.join(d, "qemu-rc"), "w") as f:
            f.write(qemu_rc + "\n")
        p = subprocess.run([sys.executable, os.path.join(os.path.dirname(HERE), "tap.py"),
                            d, "b", "minimal", SPLAT, has_stack], capture_output=True, text=True)
        return p.returncode, json.load(open(os.path.join(d, "summary.json"))), p.stderr

    def test_all_skip_binary_is_not_counted_as_passed(self):
        console = ["KB-BOOT 7.3", "KB-TEST-START t"] + ALL_SKIP + ["KB-RESULT t 0 always 100", "KB-DONE"]
        rc, s, _ = self.run_tap(console, ["t 300 always ./t"], has_stack="0")
        self.assertEqual(rc, 0)
        self.assertEqual((s["passed"], s["skipped"]), (1, 1))  # the log-clean row and a SKIP

    def test_splat_glued_to_test_output_fails_the_run(self):
        console = ["KB-BOOT 7.3", "KB-TEST-START t", "ok 1 x[   12.3] WARNING: CPU: 0 PID: 1 at y",
                   "KB-RESULT t 0 always 100", "KB-DONE"]
        rc, s, _ = self.run_tap(console, ["t 300 always ./t"], has_stack="0")
        self.assertEqual(rc, 1)
        self.assertEqual(s["failed"], 2)  # the test and the log-clean row

    def test_vm_killed_at_timeout_fails_and_says_so(self):
        console = ["KB-BOOT 7.3", "KB-TEST-START t", "working"]
        rc, s, err = self.run_tap(console, ["t 300 always ./t"], qemu_rc="124")
        self.assertEqual(rc, 1)
        self.assertTrue(s["hung"])
        self.assertIn("hard timeout", s["tests"][0]["reason"])


if __name__ == "__main__":
    unittest.main(verbosity=1)
