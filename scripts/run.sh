# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# run (the main job: every step for some branches, then a matrix), mbox
# (submission mboxes) and clean.  Sourced by scripts/pipeline.

# The branches of a 'run' command line, checked before anything runs: an
# unknown name stops the whole run.
expand_branches() {
	local b
	for b in "$@"; do
		[ "$b" = all ] || check_branch "$b"
	done
	[ $# -gt 0 ] || set -- mainline
	for b in "$@"; do
		if [ "$b" = all ]; then all_branches; else echo "$b"; fi
	done | awk '!seen[$0]++'
}

# One cell of the matrix: run a step as its own pipeline process (so that
# 'set -e' holds inside it), log it to the run directory and record its
# result; the next branch still runs.  A step that failed is FAILED in the
# matrix whatever results an earlier run left behind, and test counts are
# shown only from results this step wrote.
run_step() {
	local branch=$1 step=$2 flavor=$3 t0 rc cell rd steplog
	t0=$(date +%s)
	steplog=$RUN_DIR/$branch${flavor:+-$flavor}-$step.log
	[ "$flavor" = - ] && steplog=$RUN_DIR/$branch-$step.log
	case $step in
	fetch | apply) set -- "$step" "$branch" ;;
	build | test) set -- "$step" "$branch" "$flavor" ;;
	esac
	{
		if "${KB_PIPELINE:-$TOP/scripts/pipeline}" "$@"; then echo 0 >"$steplog.rc"; else echo $? >"$steplog.rc"; fi
	} 2>&1 | tee "$steplog" >&2
	rc=$(cat "$steplog.rc")
	rm -f "$steplog.rc"
	rd=$(result_dir "$branch" "$flavor")
	cell=ok
	[ "$rc" -eq 0 ] || cell=FAILED
	if [ "$step" = apply ] && [ "$rc" -eq 0 ] && ! has_stack "$branch"; then
		cell="no stack"
	fi
	if [ "$step" = test ] && [ -f "$rd/summary.json" ] &&
		{ [ "$(stat -c %Y "$rd/summary.json")" -ge "$t0" ] || [ "$(stat -c %Y "$rd/reused" 2>/dev/null || echo 0)" -ge "$t0" ]; }; then
		cell=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print("%dP/%dF/%dS%s" % (s["passed"], s["failed"], s["skipped"], " HANG" if s["hung"] else ""))' \
			"$rd/summary.json")
		[ "$(stat -c %Y "$rd/reused" 2>/dev/null || echo 0)" -ge "$t0" ] && cell="$cell (reused)"
		[ "$rc" -eq 0 ] || cell="FAILED $cell"
		cp "$rd/summary.json" "$RUN_DIR/$branch-$flavor-summary.json"
		cp "$rd/results.tap" "$RUN_DIR/$branch-$flavor-results.tap" 2>/dev/null || true
	fi
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$branch" "$flavor" "$step" "$cell" "$(($(date +%s) - t0))" "$rc" >>"$MATRIX"
	return "$rc"
}

print_matrix() {
	python3 - "$1" <<'PY'
import sys
rows = {}
order = []
common = {}
for line in open(sys.argv[1]):
    b, fl, step, cell, secs, rc = line.rstrip("\n").split("\t")
    cell = "%s %ss" % (cell, secs)
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

# run [--debug] [--shadow] [--full] [BRANCH...|all]: fetch, apply, build and
# test each branch (minimal config; with --debug also the debug config, with
# --shadow also the minimal kernel booted with shadow paging; the quick
# test tier, or with --full the full one), then the matrix.  Each run gets a
# directory $RESULTS/runs/<time>/ with a log per step, the TAP and summary
# of each boot, a metadata.json (scripts/metadata.py) and the same results
# as a KCIDB report, kcidb.json (scripts/kcidb.py).
cmd_run() {
	local flavors=(minimal) branches=() b fl failed=0 t0
	KB_TIER=quick
	while [ $# -gt 0 ]; do
		case $1 in
		--debug) flavors+=(debug) ;;
		--shadow) flavors+=(shadow) ;;
		--full) KB_TIER=full ;;
		--long) KB_TIER=long ;;
		-*) die "unknown option '$1' for run (--debug, --shadow, --full, --long)" ;;
		*) break ;;
		esac
		shift
	done
	export KB_TIER
	# Checked here first: 'die' in the process substitution below would
	# only end a subshell.
	expand_branches "$@" >/dev/null
	mapfile -t branches < <(expand_branches "$@")
	[ ${#branches[@]} -gt 0 ] || die "no branch to run"
	cmd_deps
	RUN_DIR=$RESULTS/runs/$(date -u +%Y%m%dT%H%M%SZ)-$$
	mkdir -p "$RUN_DIR"
	MATRIX=$RUN_DIR/matrix.tsv
	: >"$MATRIX"
	t0=$(date +%s)
	for b in "${branches[@]}"; do
		if ! { run_step "$b" fetch - && run_step "$b" apply -; }; then
			failed=1
			continue
		fi
		for fl in "${flavors[@]}"; do
			run_step "$b" build "$fl" && run_step "$b" test "$fl" || failed=1
		done
	done
	python3 "$TOP/scripts/metadata.py" write "$RUN_DIR" "$TOP" "$CACHE" "$KB_TIER" "$(($(date +%s) - t0))" >&2 ||
		failed=1
	# The same run as a KCIDB I/O document (kcidb.json), validated.
	python3 "$TOP/scripts/kcidb.py" write "$RUN_DIR" >&2 || failed=1
	ln -sfn "$(basename "$RUN_DIR")" "$RESULTS/runs/latest"
	echo
	echo "Matrix ($(($(date +%s) - t0)) s, tier $KB_TIER; logs, metadata.json and kcidb.json in $RUN_DIR):"
	print_matrix "$MATRIX"
	return $failed
}

# long [BRANCH...|all]: the long tier (README.md, "Tiers"): 'run' with the
# long test list on the minimal, debug and shadow-paging boots, then every
# patch of each branch's stack built on its own.  Default: every branch.
cmd_long() {
	local b failed=0
	[ $# -gt 0 ] || set -- all
	cmd_run --long --debug --shadow "$@" || failed=1
	while read -r b; do
		has_stack "$b" || continue
		"$TOP/scripts/pipeline" bisect-build "$b" || failed=1
		if [ "$b" = mainline ]; then
			"$TOP/scripts/pipeline" control-v1 || failed=1
		fi
	done < <(expand_branches "$@")
	return $failed
}

# mbox BRANCH [OUT] (cmd_mbox) lives in scripts/mail.sh.

cmd_clean() {
	log "removing build dirs and results under $CACHE (trees, .debs and ccache are kept)"
	rm -rf "$CACHE/build" "$RESULTS" "$CACHE/quilt" "$CACHE/mbox-check"
}
