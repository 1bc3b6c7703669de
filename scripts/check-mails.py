#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check every stack's mails: the patch files of each stack in the
repository and, for the branches given with --mbox, the thread that
'./scripts/pipeline mbox BRANCH' wrote.

  check-mails.py [--top DIR] [--mbox BRANCH=FILE]... [--fix-mail BRANCH=FILE]...
                 [--thread-only] [BRANCH...]

With no BRANCH, every branch of the trees table whose stack is not empty.

The thread (--mbox):
  - one thread: the cover letter [PATCH ... 0/M] first, then patches 1..M,
    each with In-Reply-To and References naming the cover letter's
    Message-Id; every Message-Id unique;
  - every header on one line (Debian's b4 0.12 crashes on folded From:
    and Subject: lines), From/To/Subject/Date/Message-Id present;
  - subjects: [PATCH n/M] for mainline, [PATCH <branch> n/M] for a
    stack, with "vN" after them from v2 on (b4's form), n zero-padded as
    b4 and git format-patch do, M the number of patches of the series
    file, the version the newest of the stack's changelog file;
  - the cover letter has base-commit:, the change-id of the changelog
    file, the "Base:" line naming the base tag and the Debian package
    version, and the changelog below its '---';
  - every patch ends its trailers with the sender's Signed-off-by.
A stable fix as a mail of its own (--fix-mail, what 'mbox' writes for
every patch of a stack that has a Fixes: tag):
  - one message, headers on one line, From/To/Subject/Date/Message-Id;
  - subject "[PATCH <branch>] ..." (no counter: it is not part of a
    series), To: stable@vger.kernel.org, a Fixes: tag, the stable format
    below, and the sender's Signed-off-by last in its trailers.
The stable format (patch files and mails; --thread-only leaves it out):
  - Cc: stable@vger.kernel.org (as a trailer, or in To:/Cc:) only on a
    genuine fix, that is a patch with a Fixes: tag, never on a feature
    patch; the cover letter only when the thread carries such a fix;
  - each patch of a backport stack (every branch but mainline) names its
    mainline counterpart in its first body line ("commit <sha> upstream."
    for an upstream commit, or the subject of the mainline series' patch
    in double quotes) and has a bracketed note ("[ ... ]") that says what
    differs from it.  A stable-only fix (one that has no upstream commit,
    because upstream does not have the bug) names none: it has a Fixes:
    tag and its bracketed note says "stable-only" and why.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mail  # noqa: E402  (scripts/mail.py)

STABLE_RE = re.compile(r'stable@(vger\.)?kernel\.org', re.I)
UPSTREAM_RE = re.compile(r'\bcommit [0-9a-f]{12,40} upstream\b|\bupstream commit [0-9a-f]{12,40}\b', re.I)
FIXES_RE = re.compile(r'^Fixes: [0-9a-f]{12,40} \(".+"\)$', re.M)


class Report:
    def __init__(self):
        self.problems = []

    def fail(self, where, what):
        self.problems.append('%s: %s' % (where, what))


def read_trees(top):
    """The trees table: KB_TREES if set (as scripts/lib.sh reads it), else TOP/trees."""
    rows = {}
    for line in open(os.environ.get('KB_TREES') or os.path.join(top, 'trees'), encoding='utf-8'):
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        f = line.split()
        rows[f[0]] = dict(zip(['branch', 'package', 'version', 'suite', 'stack', 'cmdline'], f))
    return rows


def base_tag(branch, version):
    return 'base/%s/%s' % (branch, version.replace('~', '_').replace(':', '.'))


def series(top, row):
    path = os.path.join(top, 'series' if row['branch'] == 'mainline' else os.path.join(row['stack'], 'series'))
    if not os.path.isfile(path):
        return []
    out = []
    for line in open(path, encoding='utf-8'):
        line = re.sub(r'#.*', '', line).split()
        if line:
            out.append(line[0])
    return out


def patch_file(path):
    """A git format-patch file: (header lines, body)."""
    text = open(path, encoding='utf-8').read()
    if text.startswith('From '):
        text = text.split('\n', 1)[1]
    head, _, body = text.partition('\n\n')
    return head.split('\n'), body


def strip_prefix(subject):
    return re.sub(r'^\[[^\]]*\]\s*', '', subject or '').strip()


def message_part(body):
    """The commit message of a patch mail: the body up to its '---', with
    in-body From:/Date:/Subject: headers (and the blank line after them)
    left out."""
    lines = body.split('\n')
    if lines and re.match(r'^(From|Date|Subject): ', lines[0]):
        while lines and lines[0].strip():
            lines.pop(0)
    msg = []
    for line in lines:
        if line.rstrip() == '---':
            break
        msg.append(line)
    return '\n'.join(msg).strip('\n')


def trailers(msg):
    """The trailer block: the last paragraph of the commit message."""
    paras = re.split(r'\n\s*\n', msg.strip())
    return [ln for ln in paras[-1].split('\n') if re.match(r'^[A-Za-z-]+: ', ln)] if paras else []


def is_fix(msg):
    return bool(FIXES_RE.search(msg))


def check_stable_rules(rep, where, branch, msg, hdr_dests, mainline_subjects, thread_has_fix=False,
                       is_cover=False):
    fix = is_fix(msg)
    if not is_cover:
        for t in trailers(msg):
            if t.lower().startswith('cc:') and STABLE_RE.search(t) and not fix:
                rep.fail(where, '"%s" on a patch without a Fixes: tag (stable takes fixes, not features)' % t)
    if hdr_dests and STABLE_RE.search(hdr_dests) and not (fix or (is_cover and thread_has_fix)):
        rep.fail(where, 'stable@ in To:/Cc: of a %s without a fix' % ('cover letter of a thread' if is_cover else 'patch'))
    if branch == 'mainline' or is_cover:
        return
    paras = re.split(r'\n\s*\n', msg.strip())
    first = ' '.join(paras[0].split()) if paras and paras[0].strip() else ''
    named = UPSTREAM_RE.search(first) or any('"%s"' % s in first for s in mainline_subjects)
    stable_only = fix and re.search(r'^\[ [^\]]*\bstable-only\b', msg, flags=re.M)
    if not named and not stable_only:
        rep.fail(where, 'the first body line names no mainline counterpart (want "commit <sha> upstream." '
                        'or the mainline patch\'s subject in double quotes); it is: %r' % first[:90])
    # The note is a block of its own, not the paragraph naming the counterpart.
    rest = '\n\n'.join(paras[1:])
    if not re.search(r'^\[.*?\]$', rest, flags=re.M | re.S):
        rep.fail(where, 'no bracketed note ("[ ... ]" on lines of its own) saying what differs from mainline')


def check_fix_mail(rep, branch, path, mainline_subjects):
    where = '%s: %s' % (branch, path)
    text = open(path, encoding='utf-8').read()
    if not text.startswith('From '):
        rep.fail(where, 'not an mbox (no "From " line first)')
        return
    msgs = mail.split_mbox(path)
    if len(msgs) != 1:
        rep.fail(where, '%d messages, want one' % len(msgs))
        return
    hdrs, body = msgs[0]
    for h in hdrs:
        if h[:1] in (' ', '\t'):
            rep.fail(where, 'folded header line %r' % h[:60])
    for name in ('From', 'To', 'Subject', 'Date', 'Message-Id'):
        if not mail.header(hdrs, name):
            rep.fail(where, 'no %s: header' % name)
    subject = mail.header(hdrs, 'Subject') or ''
    if not subject.startswith('[PATCH %s] ' % branch):
        rep.fail(where, 'subject %r, want "[PATCH %s] ..."' % (subject[:60], branch))
    if not STABLE_RE.search(mail.header(hdrs, 'To') or ''):
        rep.fail(where, 'To: is not stable@vger.kernel.org')
    msg = message_part(body)
    if not is_fix(msg):
        rep.fail(where, 'no Fixes: tag: only fixes go to stable on their own')
    check_stable_rules(rep, where, branch, msg,
                       ' '.join(filter(None, [mail.header(hdrs, 'To'), mail.header(hdrs, 'Cc')])),
                       mainline_subjects)
    sender = re.sub(r'.*<([^>]+)>.*', r'\1', mail.header(hdrs, 'From') or '')
    sobs = [t for t in trailers(msg) if t.lower().startswith('signed-off-by:')]
    if not sobs or sender.lower() not in sobs[-1].lower():
        rep.fail(where, "the sender's Signed-off-by is not the last one")


def check_thread(rep, top, row, path, mainline_subjects, stable):
    branch = row['branch']
    stack = os.path.join(top, row['stack'])
    where = '%s: %s' % (branch, path)
    try:
        revision, change_id, log = mail.parse_changelog(os.path.join(stack, 'changelog'))
    except mail.MailError as e:
        rep.fail(where, str(e))
        return
    text = open(path, encoding='utf-8').read()
    if not text.startswith('From '):
        rep.fail(where, 'not an mbox (no "From " line first)')
        return
    msgs = mail.split_mbox(path)
    npatch = len(series(top, row))
    if len(msgs) != npatch + 1:
        rep.fail(where, '%d messages, want the cover letter and %d patches' % (len(msgs), npatch))
    width = len(str(npatch))
    ids = {}
    cover_id = None
    fixes = [is_fix(message_part(b)) for h, b in msgs[1:]]
    for i, (hdrs, body) in enumerate(msgs):
        w = '%s: message %d' % (where, i)
        for h in hdrs:
            if h[:1] in (' ', '\t'):
                rep.fail(w, 'folded header line %r (b4 0.12 cannot read folded headers back)' % h[:60])
            if len(h) > 998:
                rep.fail(w, 'header line longer than 998 characters')
        for name in ('From', 'To', 'Subject', 'Date', 'Message-Id'):
            if not mail.header(hdrs, name):
                rep.fail(w, 'no %s: header' % name)
        subject = mail.header(hdrs, 'Subject') or ''
        want = '[PATCH%s%s %0*d/%d] ' % ('' if branch == 'mainline' else ' ' + branch,
                                        ' v%d' % revision if revision > 1 else '', width, i, npatch)
        if not subject.startswith(want):
            rep.fail(w, 'subject %r, want it to start with %r' % (subject[:70], want))
        mid = mail.header(hdrs, 'Message-Id') or ''
        if not re.match(r'^<[^<>@\s]+@[^<>@\s]+>$', mid):
            rep.fail(w, 'Message-Id %r is not <id@domain>' % mid)
        if mid in ids:
            rep.fail(w, 'Message-Id %s also on message %d' % (mid, ids[mid]))
        ids[mid] = i
        irt = mail.header(hdrs, 'In-Reply-To')
        refs = mail.header(hdrs, 'References') or ''
        dests = ' '.join(filter(None, [mail.header(hdrs, 'To'), mail.header(hdrs, 'Cc')]))
        if i == 0:
            cover_id = mid
            if irt:
                rep.fail(w, 'the cover letter replies to %s; it must start the thread' % irt)
            for line, label in ((r'^base-commit: [0-9a-f]{40}$', 'base-commit: <sha>'),
                                (r'^change-id: %s$' % re.escape(change_id), 'change-id: %s' % change_id)):
                if not re.search(line, body, flags=re.M):
                    rep.fail(w, 'no "%s" line' % label)
            tag = base_tag(branch, row['version'])
            para = re.search(r'^Base: base-commit .*?(?=\n\n|\Z)', body, flags=re.M | re.S)
            m = re.match(r'^Base: base-commit [0-9a-f]{40} not known upstream: it is (\S+), Debian\'s (\S+) (\S+) ',
                         ' '.join(para.group(0).split()) if para else '')
            if not m or m.groups() != (tag, row['package'], row['version']):
                rep.fail(w, 'no "Base:" paragraph naming %s and %s %s' % (tag, row['package'], row['version']))
            parts = re.split(r'^---$', body, flags=re.M)
            if len(parts) < 2 or log.strip() not in parts[1]:
                rep.fail(w, 'the changelog of %s/changelog is not below the cover letter\'s "---"' % row['stack'])
            if stable:
                check_stable_rules(rep, w, branch, body, dests, mainline_subjects,
                                   thread_has_fix=any(fixes), is_cover=True)
            continue
        if irt != cover_id:
            rep.fail(w, 'In-Reply-To %r, want the cover letter\'s %r' % (irt, cover_id))
        if cover_id not in refs.split():
            rep.fail(w, 'References does not name the cover letter %r' % cover_id)
        msg = message_part(body)
        sender = mail.addresses([mail.header(hdrs, 'From') or ''])
        sobs = [t for t in trailers(msg) if t.lower().startswith('signed-off-by:')]
        if not sobs or not sender or sender[0].lower() not in sobs[-1].lower():
            rep.fail(w, 'the last Signed-off-by is not the sender\'s (%s)' % (sender[0] if sender else '?'))
        if stable:
            check_stable_rules(rep, w, branch, msg, dests, mainline_subjects)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--top', default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument('--mbox', action='append', default=[], metavar='BRANCH=FILE')
    ap.add_argument('--fix-mail', action='append', default=[], metavar='BRANCH=FILE')
    ap.add_argument('--thread-only', action='store_true',
                    help='only the thread rules of the --mbox files (what the mbox step checks itself)')
    ap.add_argument('branches', nargs='*')
    args = ap.parse_args()
    rows = read_trees(args.top)
    mboxes = {}
    for m in args.mbox:
        b, sep, p = m.partition('=')
        if not sep or b not in rows:
            ap.error('--mbox %s: want BRANCH=FILE with a branch of the trees table' % m)
        mboxes[b] = p
    fixmails = []
    for m in args.fix_mail:
        b, sep, p = m.partition('=')
        if not sep or b not in rows:
            ap.error('--fix-mail %s: want BRANCH=FILE with a branch of the trees table' % m)
        fixmails.append((b, p))
    branches = args.branches or ([b for b in mboxes] + [b for b, _ in fixmails] if args.thread_only else
                                 [b for b in rows if series(args.top, rows[b])])
    for b in branches:
        if b not in rows:
            ap.error('unknown branch %s' % b)
    rep = Report()
    mainline = rows['mainline']
    mainline_subjects = []
    for p in series(args.top, mainline):
        hdrs, _ = patch_file(os.path.join(args.top, mainline['stack'], p))
        mainline_subjects.append(strip_prefix(mail.header(hdrs, 'Subject')))
    nmails = 0
    for b in branches:
        row = rows[b]
        stack = os.path.join(args.top, row['stack'])
        names = series(args.top, row)
        if not names:
            continue
        if not args.thread_only:
            for f in ('changelog', 'cover-letter.txt'):
                try:
                    (mail.parse_changelog if f == 'changelog' else mail.read_cover)(os.path.join(stack, f))
                except mail.MailError as e:
                    rep.fail(b, str(e))
            snippet = os.path.join(stack, 'MAINTAINERS-snippet')
            if not os.path.isfile(snippet):
                snippet = os.path.join(args.top, 'MAINTAINERS-snippet')
            try:
                mail.parse_snippet(snippet)
            except mail.MailError as e:
                rep.fail(b, str(e))
            # The stable rules on the patch files; on the mails instead
            # when this branch's thread is given.
            for p in names if b not in mboxes else []:
                hdrs, body = patch_file(os.path.join(stack, p))
                nmails += 1
                check_stable_rules(rep, '%s: %s/%s' % (b, row['stack'], p), b, message_part(body),
                                   ' '.join(filter(None, [mail.header(hdrs, 'To'), mail.header(hdrs, 'Cc')])),
                                   mainline_subjects)
        if b in mboxes:
            nmails += len(names) + 1
            check_thread(rep, args.top, row, mboxes[b], mainline_subjects, stable=not args.thread_only)
    for b, p in fixmails:
        nmails += 1
        check_fix_mail(rep, b, p, mainline_subjects)
    for p in rep.problems:
        print('FAIL %s' % p)
    print('check-mails: %d branch(es) (%s), %d mail(s), threads: %s; %d problem(s)'
          % (len(branches), ' '.join(branches), nmails, ' '.join(sorted(mboxes)) or 'none', len(rep.problems)))
    sys.exit(1 if rep.problems else 0)


if __name__ == '__main__':
    main()
