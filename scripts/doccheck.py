#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check the project's documentation (Documentation/*.rst).

usage: doccheck.py [--docs DIR] [--root DIR] [--no-sphinx] [--list]

1. 'sphinx-build -W --keep-going -b html DOCS TMPDIR': any warning fails.
2. Every shell block of every .rst file under DOCS must carry a marker, a
   reST comment on the last non-blank line before the block:

     .. doccheck: run
         the block is run from ROOT with 'bash -e -o pipefail'; it must
         exit 0 within BLOCK_TIMEOUT seconds.
     .. doccheck: example REASON
         the block is only listed; REASON says why it cannot run in the
         check (it builds a kernel, boots QEMU, needs a finished run, ...).

   A shell block is the content of '.. code-block::' (also 'code',
   'sourcecode') with no language or one of SHELL_LANGS, of
   '.. parsed-literal::', and of every '::' literal block.  For a '::'
   block introduced at the end of a paragraph, the marker goes before the
   paragraph.  A block without a marker, a marker without a block, and an
   example without a reason fail the check.  Blocks in another language
   (c, text, ...) are not shell and are not checked.

--no-sphinx skips step 1; --list only lists the blocks (no sphinx, nothing
is run).  Exits 0 when everything passed, 1 otherwise.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

SHELL_LANGS = {"", "sh", "bash", "shell", "console", "shell-session"}
BLOCK_TIMEOUT = 120

CODE_RE = re.compile(r"^(\s*)\.\.\s+(code-block|code|sourcecode|parsed-literal)::\s*(\S*)\s*$")
MARKER_RE = re.compile(r"^(\s*)\.\.\s+doccheck:\s*(.*)$")
EXPLICIT_RE = re.compile(r"^(\s*)\.\.(\s|$)")
OPTION_RE = re.compile(r"^\s*:[^:\s][^:]*:")


class Block:
    def __init__(self, path, line, text):
        self.path = path
        self.line = line        # 1-based line of the directive or '::'
        self.text = text        # the block's content, dedented
        self.kind = None        # "run" or "example"
        self.reason = ""

    def where(self):
        return "%s:%d" % (self.path, self.line)

    def commands(self):
        """The block's commands: lines joined at a trailing backslash,
        blank lines and comment lines left out."""
        out, cur = [], ""
        for line in self.text.splitlines():
            s = line.strip()
            if not cur and (not s or s.startswith("#")):
                continue
            if s.endswith("\\"):
                cur += s[:-1].rstrip() + " "
                continue
            out.append(cur + s)
            cur = ""
        if cur:
            out.append(cur.rstrip())
        return out


def indent_of(line):
    return len(line) - len(line.lstrip())


def body(lines, start, min_indent):
    """The lines from START on that belong to an indented body: lines
    indented more than MIN_INDENT, and blank lines between them.  Returns
    (end, text) with END the index of the first line after the body."""
    end = start
    last = start
    while end < len(lines):
        if lines[end].strip():
            if indent_of(lines[end]) <= min_indent:
                break
            last = end + 1
        end += 1
    chunk = lines[start:last]
    while chunk and not chunk[0].strip():
        chunk = chunk[1:]
    nonblank = [indent_of(l) for l in chunk if l.strip()]
    cut = min(nonblank) if nonblank else 0
    return last, "\n".join(l[cut:] if l.strip() else "" for l in chunk)


def prev_nonblank(lines, i):
    """Index of the last non-blank line before I, or -1."""
    i -= 1
    while i >= 0 and not lines[i].strip():
        i -= 1
    return i


def parse(path, display=None):
    """Return (blocks, errors) for one .rst file."""
    display = display or path
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    blocks, errors = [], []
    markers = {}    # line index of a marker -> (kind, reason)
    marker_lines = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        m = MARKER_RE.match(line)
        if m:
            # A comment; its reason may go on in indented lines.
            end, more = body(lines, i + 1, indent_of(line))
            words = (m.group(2) + " " + " ".join(more.split())).split()
            kind = words[0] if words else ""
            reason = " ".join(words[1:])
            last = prev_nonblank(lines, end)
            if kind == "run" and reason:
                errors.append("%s:%d: 'run' takes no argument: %s" % (display, i + 1, reason))
            elif kind == "example" and not reason:
                errors.append("%s:%d: 'example' needs a reason (why the block cannot run in the check)" % (display, i + 1))
            elif kind not in ("run", "example"):
                errors.append("%s:%d: unknown doccheck marker '%s' (run or example)" % (display, i + 1, kind))
            markers[last] = (kind, reason)
            marker_lines[last] = i + 1
            i = end
            continue
        m = CODE_RE.match(line)
        if m:
            ind = len(m.group(1))
            j = i + 1
            while j < len(lines) and lines[j].strip() and OPTION_RE.match(lines[j]) and indent_of(lines[j]) > ind:
                j += 1
            end, text = body(lines, j, ind)
            lang = "" if m.group(2) == "parsed-literal" else m.group(3).lower()
            if lang in SHELL_LANGS:
                blocks.append((i, Block(display, i + 1, text)))
            i = max(end, i + 1)
            continue
        if EXPLICIT_RE.match(line):
            # Another directive: its body is reST and is parsed as such.
            # A comment (no '::' after a name) or a target: skip its body.
            if not re.match(r"^\s*\.\.\s+[\w:.+-]+::", line):
                end, _ = body(lines, i + 1, indent_of(line))
                i = max(end, i + 1)
                continue
            i += 1
            continue
        s = line.rstrip()
        if s.endswith("::") and s.strip():
            # A literal block follows if the next non-blank line is
            # indented more than this paragraph.
            ind = indent_of(line)
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j < len(lines) and indent_of(lines[j]) > ind:
                end, text = body(lines, j, ind)
                # The marker goes before the paragraph that ends in '::'.
                start = i
                while start > 0 and lines[start - 1].strip() and indent_of(lines[start - 1]) == ind \
                        and not EXPLICIT_RE.match(lines[start - 1]):
                    start -= 1
                blocks.append((start, Block(display, i + 1, text)))
                i = end
                continue
        i += 1

    used = set()
    for start, b in blocks:
        p = prev_nonblank(lines, start)
        if p in markers:
            b.kind, b.reason = markers[p]
            used.add(p)
        else:
            errors.append("%s: shell block without a marker: put '.. doccheck: run' or "
                          "'.. doccheck: example REASON' before it" % b.where())
    for p, n in sorted(marker_lines.items()):
        if p not in used:
            errors.append("%s:%d: doccheck marker not followed by a shell block" % (display, n))
    return [b for _, b in blocks], errors


def rst_files(docs):
    out = []
    for d, dirs, files in os.walk(docs):
        dirs[:] = sorted(x for x in dirs if not x.startswith((".", "_")))
        out += [os.path.join(d, f) for f in sorted(files) if f.endswith(".rst")]
    return out


def sphinx(docs):
    """Build the HTML; return the number of warnings (None: no sphinx)."""
    exe = shutil.which("sphinx-build")
    if not exe:
        return None, "sphinx-build not found: install python3-sphinx ('./scripts/pipeline deps' does)"
    with tempfile.TemporaryDirectory(prefix="doccheck.") as out:
        warnfile = os.path.join(out, "warnings.txt")
        r = subprocess.run([exe, "-W", "--keep-going", "-q", "-b", "html", "-w", warnfile,
                            docs, os.path.join(out, "html")],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        warnings = []
        if os.path.exists(warnfile):
            with open(warnfile, encoding="utf-8") as f:
                warnings = [l for l in f.read().splitlines() if l.strip()]
        text = "\n".join(warnings) or (r.stdout + r.stderr).strip()
        if r.returncode != 0 and not warnings:
            warnings = [text or "sphinx-build exited with status %d" % r.returncode]
        return len(warnings), text


def run_block(b, root):
    try:
        r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", b.text], cwd=root,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        return False, "timed out after %d s" % BLOCK_TIMEOUT
    return r.returncode == 0, "exit %d\n%s" % (r.returncode, (r.stdout + r.stderr)[-3000:])


def main(argv):
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", default=os.path.join(top, "Documentation"))
    ap.add_argument("--root", default=top, help="where the 'run' blocks run (default: the repository)")
    ap.add_argument("--no-sphinx", action="store_true", help="skip the sphinx-build step")
    ap.add_argument("--list", action="store_true", help="only list the shell blocks")
    a = ap.parse_args(argv[1:])

    failed = 0
    if not (a.no_sphinx or a.list):
        n, text = sphinx(a.docs)
        if n is None:
            print("not ok - sphinx-build: %s" % text)
            failed += 1
        elif n:
            print("not ok - sphinx-build -W -b html: %d warning(s)" % n)
            print("\n".join("    " + l for l in text.splitlines()[-40:]))
            failed += 1
        else:
            print("ok - sphinx-build -W -b html: 0 warnings")

    blocks, errors = [], []
    for path in rst_files(a.docs):
        bl, er = parse(path, os.path.relpath(path, a.root))
        blocks += bl
        errors += er
    for e in errors:
        print("not ok - %s" % e)
    failed += len(errors)

    ran = listed = 0
    for b in blocks:
        if b.kind == "example":
            listed += 1
            print("# example %s (%s):" % (b.where(), b.reason))
            for c in b.commands():
                print("#     %s" % c)
        elif b.kind == "run":
            if a.list:
                print("# run %s:" % b.where())
                for c in b.commands():
                    print("#     %s" % c)
                continue
            ran += 1
            ok, out = run_block(b, a.root)
            print("%s - run %s: %s" % ("ok" if ok else "not ok", b.where(), "; ".join(b.commands())))
            if not ok:
                failed += 1
                print("\n".join("    " + l for l in out.splitlines()))
    print("doccheck: %d shell block(s): %d run, %d example(s) listed, %d unmarked; %d problem(s)"
          % (len(blocks), ran if not a.list else sum(b.kind == "run" for b in blocks), listed,
             sum(b.kind is None for b in blocks), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
