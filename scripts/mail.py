#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Helpers of the mbox step (scripts/mail.sh); scripts/check-mails.py
imports the parsers.  Standard library only.

  mail.py changelog FILE             print "REVISION CHANGE-ID" of a stack
  mail.py cover-commit ...           the message of b4's cover letter commit
  mail.py template ...               the cover letter template given to b4
  mail.py snippet-check FILE         MAINTAINERS format of a snippet
  mail.py snippet-insert MAINT FILE  insert the snippet in alphabetical order
  mail.py snippet-addrs FILE         the snippet's M:/R:/L: addresses
  mail.py join EMLDIR MBOX           b4's messages -> one thread mbox
  mail.py drop-cover IN OUT          the thread without its 0/M message
"""

import argparse
import email.utils
import glob
import json
import os
import re
import sys
import textwrap

B4_MAGIC = '--- b4-submit-tracking ---'
MBOX_FROM = 'From mboxrd@z Thu Jan  1 00:00:00 1970'
CHANGE_ID_RE = re.compile(r'^\d{8}-[a-z0-9][a-z0-9-]*-[0-9a-f]{12}$')


class MailError(Exception):
    pass


# -- the per-stack changelog file ---------------------------------------------

def parse_changelog(path):
    """Return (revision, change_id, text) of a stack's changelog file.

    Lines starting with '#' are comments.  The first other line is
    'change-id: ID'; the rest is the version history, newest first, one
    'Changes in vN:' block per version from the current one down to v1.
    """
    if not os.path.isfile(path):
        raise MailError('%s: no such file' % path)
    lines = [ln.rstrip() for ln in open(path, encoding='utf-8').read().split('\n')
             if not ln.startswith('#')]
    text = '\n'.join(lines).strip('\n')
    m = re.match(r'change-id: (\S+)\n', text)
    if not m:
        raise MailError('%s: the first line (after comments) must be "change-id: ID"' % path)
    change_id = m.group(1)
    if not CHANGE_ID_RE.match(change_id):
        raise MailError('%s: change-id %s is not of b4\'s form YYYYMMDD-slug-<12 hex digits>'
                        % (path, change_id))
    log = text[m.end():].strip('\n')
    revs = [int(x) for x in re.findall(r'^Changes in v(\d+):$', log, flags=re.M)]
    if not log.startswith('Changes in v') or not revs:
        raise MailError('%s: after the change-id, the history must start with "Changes in vN:"' % path)
    if revs != list(range(revs[0], 0, -1)):
        raise MailError('%s: versions %s: want every version from the newest down to v1, newest first'
                        % (path, ', '.join('v%d' % r for r in revs)))
    return revs[0], change_id, log


# -- the cover letter -----------------------------------------------------------

def read_cover(path):
    """cover-letter.txt: first line the subject, then the text."""
    if not os.path.isfile(path):
        raise MailError('%s: no such file' % path)
    text = open(path, encoding='utf-8').read().strip('\n')
    subject, _, body = text.partition('\n')
    body = body.strip('\n')
    if not subject.strip() or not body:
        raise MailError('%s: want a subject line and a text' % path)
    for n, line in enumerate(text.split('\n'), 1):
        # b4 drops comment lines and splits the cover letter at '---'.
        if line.startswith('#'):
            raise MailError('%s:%d: a line starting with "#" (b4 would drop it)' % (path, n))
        if line.rstrip() == '---':
            raise MailError('%s:%d: a "---" line (b4 splits the cover letter there)' % (path, n))
        if 'EDITME' in line:
            raise MailError('%s:%d: EDITME (b4 refuses to send it)' % (path, n))
    return subject, body


def cover_commit(args):
    """The message of b4 prep's cover letter commit ('commit' strategy):
    the cover letter, '---', the changelog, then b4's tracking data with
    this stack's change-id, revision and prefixes."""
    subject, body = read_cover(args.cover)
    revision, change_id, log = parse_changelog(args.changelog)
    orig = open(args.orig, encoding='utf-8').read()
    if B4_MAGIC not in orig:
        raise MailError('%s: not a b4 prep cover letter commit' % args.orig)
    junk, tracking = orig.split(B4_MAGIC, 1)
    tracking = json.loads('{' + tracking.split('{', 1)[1])
    series = tracking['series']
    series['revision'] = revision
    series['change-id'] = change_id
    series['prefixes'] = [args.prefix] if args.prefix else []
    sys.stdout.write('%s\n\n%s\n\n---\n%s\n\n%s\n'
                     '# This section is used internally by b4 prep for tracking purposes.\n%s\n'
                     % (subject, body, log, B4_MAGIC, json.dumps(tracking, indent=2)))


def template(args):
    """b4's prep-cover-template: b4's default, plus a line that says what
    the base is, since a Debian tree has no upstream commit id."""
    text = ('Base: base-commit %s not known upstream: it is %s, Debian\'s %s %s as imported by '
            '"./scripts/pipeline fetch %s".' % ('X' * 40, args.tag, args.package, args.version, args.branch))
    base = '\n'.join(textwrap.wrap(text, width=72, break_long_words=False, break_on_hyphens=False))
    base = base.replace('X' * 40, '${base_commit}')
    sys.stdout.write('${cover}\n\n---\n${shortlog}\n\n${diffstat}\n---\n'
                     'base-commit: ${base_commit}\nchange-id: ${change_id}\n\n%s\n\n'
                     'Best regards,\n-- \n${signature}\n' % base)


# -- MAINTAINERS-snippet ----------------------------------------------------------

SNIPPET_TYPES = 'MRLSWQBCPTFXNK'


def parse_snippet(path):
    """Check that a file is one MAINTAINERS entry in the exact format and
    return (title, [(type, value), ...])."""
    if not os.path.isfile(path):
        raise MailError('%s: no such file' % path)
    text = open(path, encoding='utf-8').read()
    if not text.endswith('\n') or text.endswith('\n\n'):
        raise MailError('%s: want exactly one newline at the end' % path)
    lines = text[:-1].split('\n')
    title, entries, errs = lines[0], [], []
    if not title or title[0].isspace() or re.match(r'^[A-Z]:', title):
        errs.append('line 1: want the section title')
    for n, line in enumerate(lines[1:], 2):
        m = re.match(r'^([A-Z]):\t(\S.*)$', line)
        if not m or m.group(1) not in SNIPPET_TYPES:
            errs.append('line %d: want "X:<tab>value" (X one of %s): %r' % (n, SNIPPET_TYPES, line))
            continue
        if line != line.rstrip():
            errs.append('line %d: trailing whitespace' % n)
        entries.append((m.group(1), m.group(2)))
    types = [t for t, v in entries]
    if 'S' not in types:
        errs.append('no S: (status) line')
    if 'F' not in types:
        errs.append('no F: (file) line')
    if not set(types) & set('MRL'):
        errs.append('no M:, R: or L: address')
    files = [v for t, v in entries if t == 'F']
    if files != sorted(files):
        errs.append('F: patterns not in alphabetical order')
    if errs:
        raise MailError('%s: not a MAINTAINERS entry: %s' % (path, '; '.join(errs)))
    return title, entries


def snippet_insert(maint, snippet):
    """Insert the snippet's entry into a copy of MAINTAINERS, where the
    alphabetical order of section titles puts it.  Returns the 1-based
    numbers of the first and last inserted lines."""
    title, entries = parse_snippet(snippet)
    lines = open(maint, encoding='utf-8').read().split('\n')
    try:
        start = lines.index('Maintainers List')
    except ValueError:
        start = 0
    pos = None
    for n in range(start + 1, len(lines) - 1):
        is_title = (lines[n] and not lines[n][0].isspace() and not lines[n - 1].strip()
                    and re.match(r'^[A-Z]:\s', lines[n + 1]))
        if not is_title:
            continue
        if lines[n] == title:
            raise MailError('%s: the tree already has a section "%s"' % (maint, title))
        # THE REST stays last.
        if lines[n] == 'THE REST' or lines[n].upper() > title.upper():
            pos = n
            break
    if pos is None:
        raise MailError('%s: found no place for the section "%s"' % (maint, title))
    block = [title] + ['%s:\t%s' % e for e in entries] + ['']
    lines[pos:pos] = block
    with open(maint, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines))
    return pos + 1, pos + len(block) - 1


# -- the thread ---------------------------------------------------------------------

def unfold_headers(head):
    """One line per header: continuation lines joined with one space."""
    out = []
    for line in head.split('\n'):
        if line[:1] in (' ', '\t') and out:
            out[-1] = out[-1].rstrip() + ' ' + line.strip()
        else:
            out.append(line)
    return out


def join(args):
    """b4 send -o writes one file per message, with headers folded at 75
    columns; Debian's b4 0.12 cannot read folded From:/Subject: back
    ('Header values may not contain linefeed').  Write one mbox, cover
    letter first, every header on one line."""
    files = sorted(glob.glob(os.path.join(args.emldir, '*.eml')))
    if not files:
        raise MailError('%s: b4 wrote no messages' % args.emldir)
    out = []
    for f in files:
        text = open(f, encoding='utf-8').read().replace('\r\n', '\n')
        head, sep, body = text.partition('\n\n')
        if not sep:
            raise MailError('%s: no header/body separator' % f)
        for n, line in enumerate(body.split('\n')):
            if line.startswith('From '):
                raise MailError('%s: body line %d starts with "From " (would split the mbox)' % (f, n + 1))
        hdrs = unfold_headers(head)
        for h in hdrs:
            if len(h) > 998:
                raise MailError('%s: header longer than 998 characters: %s...' % (f, h[:60]))
        out.append('%s\n%s\n\n%s%s\n' % (MBOX_FROM, '\n'.join(hdrs), body,
                                         '' if body.endswith('\n') else '\n'))
    with open(args.mbox, 'w', encoding='utf-8') as fh:
        fh.write(''.join(out))


def join_one(args):
    """One message of git format-patch --stdout, headers on one line
    (as join() writes them)."""
    text = open(args.src, encoding='utf-8').read()
    first, _, rest = text.partition('\n')
    if not first.startswith('From '):
        raise MailError('%s: not a git format-patch message' % args.src)
    head, sep, body = rest.partition('\n\n')
    if not sep:
        raise MailError('%s: no header/body separator' % args.src)
    with open(args.mbox, 'w', encoding='utf-8') as fh:
        fh.write('%s\n%s\n\n%s' % (MBOX_FROM, '\n'.join(unfold_headers(head)), body))


def split_mbox(path):
    """[(header lines, body), ...] of an mbox written by join() or by
    git format-patch; every 'From ' line starts a message."""
    msgs, cur = [], None
    for line in open(path, encoding='utf-8').read().split('\n'):
        if line.startswith('From ') and (cur is None or cur[-1] == ''):
            cur = []
            msgs.append(cur)
            continue
        if cur is not None:
            cur.append(line)
    out = []
    for m in msgs:
        text = '\n'.join(m)
        head, _, body = text.partition('\n\n')
        out.append((head.split('\n'), body))
    return out


def header(hdrs, name):
    """First value of a header (its lines unfolded), or None."""
    for h in unfold_headers('\n'.join(hdrs)):
        k, sep, v = h.partition(':')
        if sep and k.lower() == name.lower():
            return v.strip()
    return None


def subject_counter(subject):
    m = re.match(r'^\[PATCH[^\]]*?\b(\d+)/(\d+)\]', subject or '')
    return (int(m.group(1)), int(m.group(2))) if m else (None, None)


def drop_cover(args):
    """What b4 am does with the cover letter: keep it out of the patches."""
    msgs = split_mbox(args.inp)
    keep = [m for m in msgs if subject_counter(header(m[0], 'Subject'))[0] != 0]
    if len(keep) != len(msgs) - 1:
        raise MailError('%s: want exactly one 0/M message' % args.inp)
    with open(args.out, 'w', encoding='utf-8') as fh:
        for hdrs, body in keep:
            fh.write('%s\n%s\n\n%s\n' % (MBOX_FROM, '\n'.join(hdrs), body.rstrip('\n') + '\n'))


def addresses(values):
    return [a for n, a in email.utils.getaddresses(values) if a]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('changelog')
    p.add_argument('file')
    p = sub.add_parser('cover-commit')
    p.add_argument('--cover', required=True)
    p.add_argument('--changelog', required=True)
    p.add_argument('--orig', required=True)
    p.add_argument('--prefix', default='')
    p = sub.add_parser('template')
    for a in ('--branch', '--tag', '--package', '--version'):
        p.add_argument(a, required=True)
    p = sub.add_parser('snippet-check')
    p.add_argument('file')
    p = sub.add_parser('snippet-insert')
    p.add_argument('maintainers')
    p.add_argument('file')
    p = sub.add_parser('snippet-addrs')
    p.add_argument('file')
    p = sub.add_parser('join')
    p.add_argument('emldir')
    p.add_argument('mbox')
    p = sub.add_parser('join-one')
    p.add_argument('src')
    p.add_argument('mbox')
    p = sub.add_parser('drop-cover')
    p.add_argument('inp')
    p.add_argument('out')
    args = ap.parse_args()
    try:
        if args.cmd == 'changelog':
            rev, cid, _ = parse_changelog(args.file)
            print(rev, cid)
        elif args.cmd == 'cover-commit':
            cover_commit(args)
        elif args.cmd == 'template':
            template(args)
        elif args.cmd == 'snippet-check':
            parse_snippet(args.file)
        elif args.cmd == 'snippet-insert':
            print(*snippet_insert(args.maintainers, args.file))
        elif args.cmd == 'snippet-addrs':
            _, entries = parse_snippet(args.file)
            print('\n'.join(addresses([v for t, v in entries if t in 'MRL'])))
        elif args.cmd == 'join':
            join(args)
        elif args.cmd == 'join-one':
            join_one(args)
        elif args.cmd == 'drop-cover':
            drop_cover(args)
    except MailError as e:
        print('error: %s' % e, file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
