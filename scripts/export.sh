# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# export: regenerate a branch's patch stack from a git work tree, so that the
# files in patches/ (or backports/<branch>/) are exactly what
# 'git format-patch' produces.  Sourced by scripts/pipeline.

work_dir() { echo "$CACHE/work/$1"; }

# worktree BRANCH: a development tree (git worktree of the base tree) with
# the current stack applied as commits, for kernel work.
cmd_worktree() {
	local branch=$1 src wt stack
	check_branch "$branch"
	tree_ok "$branch" || die "$branch: no base tree; run '$TOP/scripts/pipeline fetch $branch' first"
	src=$(src_dir "$branch")
	wt=$(work_dir "$branch")
	if [ -d "$wt/.git" ] || [ -f "$wt/.git" ]; then
		log "$branch: work tree already exists: $wt"
		return 0
	fi
	stack=$(stack_dir "$branch")
	git -C "$src" worktree prune
	git -C "$src" worktree add -q -B "dev/$branch" "$wt" "$(base_tag "$branch")"
	mapfile -t patches < <(series_patches "$branch")
	if [ ${#patches[@]} -gt 0 ]; then
		kb_git -C "$wt" am -q "${patches[@]/#/$stack/}"
	fi
	log "$branch: work tree ready: $wt (branch dev/$branch, ${#patches[@]} patch(es))"
}

# export BRANCH [TREE]: format-patch base..HEAD of TREE into the stack
# directory and rewrite the series file.  The cover letter's subject and
# text come from <stack>/cover-letter.txt (first line: subject).
cmd_export() {
	local branch=$1 wt=${2:-} stack series tag n cl subj p
	check_branch "$branch"
	[ -n "$wt" ] || wt=$(work_dir "$branch")
	git -C "$wt" rev-parse --git-dir >/dev/null 2>&1 || die "$branch: $wt is not a git tree"
	stack=$(stack_dir "$branch")
	series=$(series_file "$branch")
	tag=$(base_tag "$branch")
	git -C "$wt" rev-parse -q --verify "refs/tags/$tag" >/dev/null ||
		die "$branch: $wt has no tag $tag (is it a tree of this branch?)"
	n=$(git -C "$wt" rev-list --count "$tag..HEAD")
	[ "$n" -gt 0 ] || die "$branch: no commits on top of $tag in $wt"
	mkdir -p "$stack"
	find "$stack" -maxdepth 1 -name '[0-9][0-9][0-9][0-9]-*.patch' -delete
	cl=()
	[ -f "$stack/cover-letter.txt" ] && cl=(--cover-letter)
	kb_git -C "$wt" format-patch -q --no-signature --zero-commit --no-numbered-files \
		"${cl[@]}" -o "$stack" "$tag..HEAD" >/dev/null
	if [ ${#cl[@]} -gt 0 ]; then
		subj=$(head -n 1 "$stack/cover-letter.txt")
		python3 - "$stack/0000-cover-letter.patch" "$stack/cover-letter.txt" "$subj" "$stack/changelog" <<'PY'
import os, re, sys
path, src, subj, changelog = sys.argv[1:5]
text = open(path).read()
body = open(src).read().split("\n", 1)[1].strip("\n")
# The version history goes below the blurb, as in the mailed cover letter
# (where b4 puts it below the "---").
if os.path.exists(changelog):
    log = "\n".join(l for l in open(changelog).read().split("\n") if not l.startswith("#"))
    log = re.sub(r"^\s*change-id: \S+\s*", "", log).strip("\n")
    body += "\n\n" + log
text = text.replace("*** SUBJECT HERE ***", subj, 1)
text = text.replace("*** BLURB HERE ***", body, 1)
open(path, "w").write(text)
PY
	fi
	for p in "$stack"/[0-9][0-9][0-9][0-9]-*.patch; do
		[ "${p##*/}" = 0000-cover-letter.patch ] || echo "${p##*/}"
	done >"$series"
	log "$branch: exported $n patch(es) to $stack, series in $series"
}
