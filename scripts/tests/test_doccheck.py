#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Unit tests of scripts/doccheck.py on tiny fixture documents: each case
is a way a shell block could escape the check.  Run by 'pipeline check'."""
import contextlib
import io
import os
import shutil
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import doccheck  # noqa: E402

CONF = 'project = "fixture"\nroot_doc = "index"\nhtml_theme = "alabaster"\n'


class Fixture(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="test_doccheck.")
        self.docs = os.path.join(self.dir, "Documentation")
        os.mkdir(self.docs)
        with open(os.path.join(self.docs, "conf.py"), "w") as f:
            f.write(CONF)

    def tearDown(self):
        shutil.rmtree(self.dir)

    def write(self, text, name="index.rst"):
        path = os.path.join(self.docs, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text).lstrip("\n"))
        return path

    def parse(self, text):
        return doccheck.parse(self.write(text), "index.rst")

    def main(self, *args):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = doccheck.main(["doccheck.py", "--docs", self.docs, "--root", self.dir] + list(args))
        return rc, out.getvalue()


class Markers(Fixture):
    def test_unmarked_code_block_fails(self):
        blocks, errors = self.parse("""
            Title
            =====

            .. code-block:: sh

               rm -rf /nothing/here
            """)
        self.assertEqual(len(blocks), 1)
        self.assertEqual(len(errors), 1)
        self.assertIn("index.rst:4: shell block without a marker", errors[0])

    def test_unmarked_literal_block_fails(self):
        for text in ("Run this::\n\n   make\n", "Run this:\n\n::\n\n   make\n"):
            blocks, errors = self.parse(text)
            self.assertEqual(len(blocks), 1, text)
            self.assertEqual(blocks[0].text, "make")
            self.assertEqual(len(errors), 1, text)
            self.assertIn("without a marker", errors[0])

    def test_code_block_without_language_is_shell(self):
        _, errors = self.parse(".. code-block::\n\n   make\n")
        self.assertEqual(len(errors), 1)

    def test_other_languages_are_not_checked(self):
        blocks, errors = self.parse("""
            .. code-block:: c

               int main(void) { return 0; } /* a line ending in :: */

            .. code-block:: text

               plain::
            """)
        self.assertEqual((blocks, errors), ([], []))

    def test_marked_blocks(self):
        blocks, errors = self.parse("""
            .. doccheck: run

            .. code-block:: sh
               :caption: a caption

               ./scripts/pipeline help

            .. doccheck: example boots a kernel
               under QEMU

            The main job::

               ./scripts/pipeline run \\
                   mainline
            """)
        self.assertEqual(errors, [])
        self.assertEqual([b.kind for b in blocks], ["run", "example"])
        self.assertEqual(blocks[0].text, "./scripts/pipeline help")
        self.assertEqual(blocks[1].reason, "boots a kernel under QEMU")
        self.assertEqual(blocks[1].commands(), ["./scripts/pipeline run mainline"])

    def test_marker_applies_only_to_the_next_block(self):
        _, errors = self.parse("""
            .. doccheck: run

            .. code-block:: sh

               true

            .. code-block:: sh

               false
            """)
        self.assertEqual(len(errors), 1)
        self.assertIn("index.rst:7: shell block without a marker", errors[0])

    def test_example_needs_a_reason(self):
        _, errors = self.parse(".. doccheck: example\n\n.. code-block:: sh\n\n   make\n")
        self.assertEqual(len(errors), 1)
        self.assertIn("needs a reason", errors[0])

    def test_unknown_marker_and_stray_marker(self):
        _, errors = self.parse("""
            .. doccheck: skip

            .. code-block:: sh

               make

            .. doccheck: run

            Some text.
            """)
        self.assertEqual(len(errors), 2)
        self.assertIn("unknown doccheck marker 'skip'", errors[0])
        self.assertIn("index.rst:7: doccheck marker not followed by a shell block", errors[1])

    def test_marker_before_a_c_block_is_stray(self):
        _, errors = self.parse(".. doccheck: run\n\n.. code-block:: c\n\n   x;\n")
        self.assertEqual(len(errors), 1)
        self.assertIn("not followed by a shell block", errors[0])

    def test_blocks_inside_a_list_item(self):
        blocks, errors = self.parse("""
            - Step one:

              .. doccheck: run

              .. code-block:: sh

                 true
            """)
        self.assertEqual(errors, [])
        self.assertEqual(blocks[0].kind, "run")


class Main(Fixture):
    """doccheck.main() without sphinx: the exit status and what it says."""

    def test_unmarked_block_fails_the_check(self):
        self.write(".. code-block:: sh\n\n   true\n")
        rc, out = self.main("--no-sphinx")
        self.assertEqual(rc, 1)
        self.assertIn("not ok - Documentation/index.rst:1: shell block without a marker", out)

    def test_run_blocks_run_from_the_root_and_must_exit_0(self):
        self.write("""
            .. doccheck: run

            .. code-block:: sh

               touch ran-here

            .. doccheck: run

            .. code-block:: sh

               false
               touch not-reached
            """)
        rc, out = self.main("--no-sphinx")
        self.assertEqual(rc, 1)
        self.assertTrue(os.path.exists(os.path.join(self.dir, "ran-here")))
        self.assertFalse(os.path.exists(os.path.join(self.dir, "not-reached")))
        self.assertRegex(out, r"(?m)^ok - run Documentation/index.rst:3: touch ran-here$")
        self.assertRegex(out, r"(?m)^not ok - run Documentation/index.rst:9: false; touch not-reached$")

    def test_pipefail(self):
        self.write(".. doccheck: run\n\n.. code-block:: sh\n\n   false | cat\n")
        rc, _ = self.main("--no-sphinx")
        self.assertEqual(rc, 1)

    def test_examples_are_listed_not_run(self):
        self.write(".. doccheck: example would write a file\n\n.. code-block:: sh\n\n   touch example-ran\n")
        rc, out = self.main("--no-sphinx")
        self.assertEqual(rc, 0)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "example-ran")))
        self.assertIn("# example Documentation/index.rst:3 (would write a file):", out)
        self.assertIn("#     touch example-ran", out)

    def test_list_runs_nothing(self):
        self.write(".. doccheck: run\n\n.. code-block:: sh\n\n   touch listed\n")
        rc, out = self.main("--list")
        self.assertEqual(rc, 0)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "listed")))
        self.assertIn("# run Documentation/index.rst:3:", out)


@unittest.skipUnless(shutil.which("sphinx-build"), "sphinx-build not installed (python3-sphinx)")
class Sphinx(Fixture):
    def test_clean_document_passes(self):
        self.write("Title\n=====\n\nText.\n")
        rc, out = self.main()
        self.assertEqual(rc, 0, out)
        self.assertIn("ok - sphinx-build -W -b html: 0 warnings", out)

    def test_warning_fails(self):
        # A page in no toctree and an unknown reference: two warnings.
        self.write("Title\n=====\n\nSee :doc:`nowhere`.\n")
        self.write("Other\n=====\n", name="other.rst")
        rc, out = self.main()
        self.assertEqual(rc, 1)
        self.assertIn("not ok - sphinx-build -W -b html: 2 warning(s)", out)


if __name__ == "__main__":
    unittest.main()
