# SPDX-License-Identifier: GPL-2.0
# run (the main job: every step for some branches, then a matrix), mbox
# (submission mboxes) and clean.  Sourced by scripts/pipeline.

expand_branches() {
	local b
	if [ $# -eq 0 ]; then
		echo mainline
		return
	fi
	for b in "$@"; do
		if [ "$b" = all ]; then all_branches; else check_branch "$b" && echo "$b"; fi
	done
}

# One cell of the matrix: run a step as its own pipeline process (so that
# 'set -e' holds inside it) and record its result; the next branch still runs.
run_step() {
	local branch=$1 step=$2 flavor=$3 t0 rc=0 cell
	t0=$(date +%s)
	case $step in
	fetch | apply) "$TOP/scripts/pipeline" "$step" "$branch" || rc=$? ;;
	build | test) "$TOP/scripts/pipeline" "$step" "$branch" "$flavor" || rc=$? ;;
	esac
	if [ "$step" = test ] && [ -f "$(result_dir "$branch" "$flavor")/summary.json" ]; then
		cell=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("%dP/%dF/%dS%s" % (s["passed"], s["failed"], s["skipped"], " HANG" if s["hung"] else ""))' \
			"$(result_dir "$branch" "$flavor")/summary.json")
		[ -f "$(result_dir "$branch" "$flavor")/reused" ] && cell="$cell (reused)"
	elif [ $rc -eq 0 ]; then
		cell=ok
	else
		cell=FAILED
	fi
	printf '%s\t%s\t%s\t%s\t%s\n' "$branch" "$flavor" "$step" "$cell $(($(date +%s) - t0))s" "$rc" >>"$MATRIX"
	return $rc
}

print_matrix() {
	python3 - "$MATRIX" <<'PY'
import sys
rows = {}
order = []
common = {}
for line in open(sys.argv[1]):
    b, fl, step, cell, rc = line.rstrip("\n").split("\t")
    if fl == "-":
        # fetch and apply are per branch: shown on each of its config rows.
        common.setdefault(b, {})[step] = cell
        key = (b, "minimal")
    else:
        key = (b, fl)
    if key not in rows:
        rows[key] = {}
        order.append(key)
    rows[key][step] = cell
for (b, fl), r in rows.items():
    for step, cell in common.get(b, {}).items():
        r.setdefault(step, cell)
steps = ["fetch", "apply", "build", "test"]
hdr = ["branch", "config"] + ["fetch", "apply", "build", "tests (passed/failed/skipped)"]
table = [hdr] + [[b, fl] + [rows[(b, fl)].get(s, "-") for s in steps] for b, fl in order]
w = [max(len(r[i]) for r in table) for i in range(len(hdr))]
for i, r in enumerate(table):
    print("  ".join(c.ljust(w[j]) for j, c in enumerate(r)).rstrip())
    if i == 0:
        print("  ".join("-" * x for x in w))
PY
}

# run [--debug] [BRANCH...|all]: fetch, apply, build and test each branch
# (minimal config; with --debug also the debug config), then the matrix.
cmd_run() {
	local flavors=(minimal) branches b fl failed=0 t0
	if [ "${1:-}" = --debug ]; then
		flavors=(minimal debug)
		shift
	fi
	mapfile -t branches < <(expand_branches "$@")
	[ ${#branches[@]} -gt 0 ] || exit 1
	cmd_deps
	mkdir -p "$RESULTS"
	MATRIX=$RESULTS/matrix.tsv
	: >"$MATRIX"
	t0=$(date +%s)
	for b in "${branches[@]}"; do
		run_step "$b" fetch - && run_step "$b" apply - || { failed=1; continue; }
		for fl in "${flavors[@]}"; do
			run_step "$b" build "$fl" && run_step "$b" test "$fl" || failed=1
		done
	done
	echo
	echo "Matrix ($(($(date +%s) - t0)) s; results under $RESULTS):"
	print_matrix
	return $failed
}

# mbox BRANCH [OUT]: one git-am-able mbox (OUT, and the cover letter in
# OUT.cover) for submission, with the sender's
# Signed-off-by added to every patch (KB_SENDER="Name <email>", default the
# git identity of the person running it).  Stable stacks get the branch in
# the subject prefix.  The mbox is checked with git am on a fresh base.
cmd_mbox() {
	local branch=$1 out=${2:-} stack sender tmp p i=0 wt
	check_branch "$branch"
	stack=$(stack_dir "$branch")
	mapfile -t patches < <(series_patches "$branch")
	[ ${#patches[@]} -gt 0 ] || die "$branch: the stack is empty, nothing to send"
	sender=${KB_SENDER:-$(git config user.name) <$(git config user.email)>}
	[ "$sender" != " <>" ] || die "no sender identity: set KB_SENDER=\"Name <email>\" or git config user.name/user.email"
	[ -n "$out" ] || out=$RESULTS/mbox/$branch.mbox
	mkdir -p "$(dirname "$out")"
	tmp=$(mktemp -d)
	# The cover letter goes to a file of its own: an mbox that starts with
	# an empty message would stop 'git am'.
	if [ -f "$stack/0000-cover-letter.patch" ]; then
		cp "$stack/0000-cover-letter.patch" "$out.cover"
		[ "$branch" = mainline ] || sed -i -e "1,/^\$/ s/^Subject: \[PATCH/Subject: [PATCH $branch/" "$out.cover"
	fi
	: >"$out"
	for p in "${patches[@]}"; do
		cp "$stack/$p" "$tmp/p"
		git interpret-trailers --in-place --if-exists addIfDifferent \
			--trailer "Signed-off-by: $sender" "$tmp/p"
		if [ "$branch" != mainline ]; then
			sed -i -e "1,/^\$/ s/^Subject: \[PATCH/Subject: [PATCH $branch/" "$tmp/p"
		fi
		cat "$tmp/p" >>"$out"
		i=$((i + 1))
	done
	rm -rf "$tmp"
	if tree_ok "$branch"; then
		wt=$CACHE/mbox-check/$branch
		rm -rf "$wt"
		git -C "$(src_dir "$branch")" worktree prune
		git -C "$(src_dir "$branch")" worktree add -q --detach "$wt" "$(base_tag "$branch")"
		if ! kb_git -C "$wt" am -q "$out" >/dev/null 2>&1; then
			git -C "$wt" am --abort >/dev/null 2>&1 || true
			git -C "$(src_dir "$branch")" worktree remove --force "$wt"
			die "$branch: $out does not apply with git am to $(base_tag "$branch")"
		fi
		git -C "$(src_dir "$branch")" worktree remove --force "$wt"
		log "$branch: $out applies with git am"
	fi
	log "$branch: wrote $out ($i patches, Signed-off-by: $sender)${out:+; cover letter: $out.cover}"
}

cmd_clean() {
	log "removing build dirs and results under $CACHE (trees, .debs and ccache are kept)"
	rm -rf "$CACHE/build" "$RESULTS" "$CACHE/quilt" "$CACHE/mbox-check"
}
