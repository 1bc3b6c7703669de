# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# check: the project's tests.  Static checks of the repository, the
# pipeline's handling of bad input, then the whole pipeline on mainline
# (minimal and debug kernels) with every test of scripts/testlist, and the
# KVM code cross-built for arm64 and riscv64.
# Sourced by scripts/pipeline.

CHECK_PASS=0
CHECK_FAIL=0
CHECK_SKIP=0

ck() {
	local name=$1 t0
	shift
	t0=$(date +%s)
	if "$@" >"$CACHE/check.out" 2>&1; then
		CHECK_PASS=$((CHECK_PASS + 1))
		echo "ok - $name # $(($(date +%s) - t0)) s"
	else
		CHECK_FAIL=$((CHECK_FAIL + 1))
		echo "not ok - $name # $(($(date +%s) - t0)) s"
		sed 's/^/    /' "$CACHE/check.out" | tail -n 30
	fi
}

ck_skip() {
	CHECK_SKIP=$((CHECK_SKIP + 1))
	echo "ok - $1 # SKIP $2"
}

# expect_fail "message regex" CMD...: CMD must fail with a one-line error
# matching the regex.
expect_fail() {
	local re=$1 out
	shift
	if out=$("$@" 2>&1); then
		echo "unexpectedly succeeded: $*"
		return 1
	fi
	if ! echo "$out" | grep -qE "^error: .*$re"; then
		echo "wrong error for: $*"
		echo "$out" | tail -n 5
		return 1
	fi
}

check_scripts_parse() {
	local f
	for f in "$TOP"/scripts/pipeline "$TOP"/scripts/*.sh "$TOP"/scripts/guest-init "$TOP"/.ci/run; do
		bash -n "$f" || return 1
	done
	python3 -m py_compile "$TOP/scripts/tap.py" "$TOP/scripts/metadata.py" "$TOP/scripts/kcidb.py" "$TOP/scripts/doccheck.py"
}

check_trees_table() {
	local b n
	for b in $(all_branches); do
		n=$(awk -v b="$b" '$1 == b { print NF }' "$TREES_FILE")
		[ "$n" -eq 6 ] || { echo "$b: $n columns, want 6"; return 1; }
		[ -d "$(stack_dir "$b")" ] || { echo "$b: no stack directory $(stack_dir "$b")"; return 1; }
	done
}

# Every series file names existing patches, and every patch is listed.
check_series() {
	local b stack p
	for b in $(all_branches); do
		stack=$(stack_dir "$b")
		for p in $(series_patches "$b"); do
			[ -f "$stack/$p" ] || { echo "$b: series names missing $p"; return 1; }
		done
		for p in "$stack"/[0-9][0-9][0-9][0-9]-*.patch; do
			[ -e "$p" ] || continue
			case $(basename "$p") in 0000-cover-letter.patch) continue ;; esac
			series_patches "$b" | grep -qx "$(basename "$p")" ||
				{ echo "$b: $(basename "$p") is not in the series file"; return 1; }
		done
	done
}

# FILE_PATH_CHANGES ("does MAINTAINERS need updating?") is ignored: the new
# files are covered by the existing KVM entry (see MAINTAINERS-snippet).
check_checkpatch() {
	local b p src bad=0 shim=$CACHE/python-shim
	# Older trees' checkpatch (5.10) runs "python scripts/spdxcheck.py":
	# make that Debian's python3, which has ply.
	mkdir -p "$shim"
	ln -sf /usr/bin/python3 "$shim/python"
	for b in $(all_branches); do
		[ -n "$(series_patches "$b")" ] || continue
		# Each stack is checked by its own tree's checkpatch.
		src=$(src_dir "$b")
		[ -x "$src/scripts/checkpatch.pl" ] || src=$(src_dir mainline)
		for p in $(series_patches "$b"); do
			# Debian's python3 first: its ply and git run the SPDX check.
			# The base trees are single snapshot commits without history,
			# so every commit id a patch cites (a stable fix's Fixes:) is
			# unknown to them.
			if ! (cd "$src" && PATH=$shim:/usr/bin:$PATH perl scripts/checkpatch.pl --strict -q \
					--ignore FILE_PATH_CHANGES,UNKNOWN_COMMIT_ID \
					"$(stack_dir "$b")/$p") >"$CACHE/checkpatch.out" 2>&1 ||
				[ -s "$CACHE/checkpatch.out" ]; then
				echo "$b/$p:"
				cat "$CACHE/checkpatch.out"
				bad=1
			fi
		done
	done
	return $bad
}

check_bad_branch() { expect_fail "unknown branch 'no-such-branch'" "$TOP/scripts/pipeline" fetch no-such-branch; }

# An unknown branch anywhere in run's list stops the run before any step
# (it used to drop that branch and the ones after it, and exit 0).
check_bad_branch_in_list() {
	local t rc=0
	t=$(mktemp -d)
	KB_CACHE=$t timeout 60 "$TOP/scripts/pipeline" run mainline no-such-branch 7.2.y >"$t/out" 2>&1 && rc=1
	grep -q "^error: unknown branch 'no-such-branch'" "$t/out" || rc=1
	! grep -qv "^error: unknown branch 'no-such-branch'" "$t/out" ||
		{ echo "the run went on after the bad name:"; rc=1; }
	cat "$t/out"
	rm -rf "$t"
	return $rc
}

# kcidb.py on a real run directory (scripts/tests/fixtures/kcidb-run/),
# copied: 'write' makes kcidb.json and 'validate' accepts it.
check_kcidb_fixture() (
	t=$(mktemp -d)
	trap 'rm -rf "$t"' EXIT
	cp -r "$TOP/scripts/tests/fixtures/kcidb-run/." "$t/"
	for rd in "$t"/*/; do
		python3 "$TOP/scripts/kcidb.py" write "$rd" || exit 1
		python3 "$TOP/scripts/kcidb.py" validate "$rd/kcidb.json" || exit 1
	done
)

# Lint every script (sourced ones included) with shellcheck.
check_shellcheck() {
	shellcheck -x -P "$TOP/scripts" "$TOP/scripts/pipeline" "$TOP"/scripts/*.sh \
		"$TOP/scripts/guest-init" "$TOP/.ci/run"
}

# A test step that dies before it boots is FAILED in the matrix, even when
# an earlier run left passing results for the same branch and config.
check_matrix_stale() (
	t=$(mktemp -d)
	trap 'rm -rf "$t"' EXIT
	# shellcheck disable=SC2030 # the subshell's own results directory
	RESULTS=$t/results RUN_DIR=$t/run MATRIX=$t/run/matrix.tsv
	mkdir -p "$RESULTS/mainline-minimal" "$RUN_DIR"
	echo '{"passed": 19, "failed": 0, "skipped": 0, "hung": false, "tests": [], "splats": []}' \
		>"$RESULTS/mainline-minimal/summary.json"
	touch -d '1 hour ago' "$RESULTS/mainline-minimal/summary.json"
	KB_PIPELINE=false run_step mainline test minimal 2>/dev/null && { echo "a failed step returned 0"; exit 1; }
	cut -f1-4 "$MATRIX"
	[ "$(cut -f4 "$MATRIX")" = FAILED ] || { echo "matrix cell is not FAILED"; exit 1; }
)

# apt-get update failing is said as such, not as "version gone".
check_apt_update_failure() {
	local t rc=0
	t=$(mktemp -d /tmp/kb-check-apt.XXXXXX) && [ -d "$t" ] || return 1
	# Stand-ins for apt-get and apt-cache, first in PATH for this command
	# only; neither ever runs the real tools' update.
	mkdir -p "$t/fakebin"
	cat >"$t/fakebin/apt-cache" <<'EOF'
#!/bin/sh
[ "$1" = madison ] && exit 0
exec /usr/bin/apt-cache "$@"
EOF
	cat >"$t/fakebin/apt-get" <<'EOF'
#!/bin/sh
echo "E: Failed to fetch (simulated)" >&2
exit 100
EOF
	chmod +x "$t/fakebin/apt-cache" "$t/fakebin/apt-get"
	PATH=$t/fakebin:$PATH KB_CACHE=$t/cache expect_fail "apt-get update failed.*simulated" \
		"$TOP/scripts/pipeline" fetch mainline || rc=1
	rm -rf "$t"
	return $rc
}

# The verbs that rewrite the shared cache wait for the build lock.
check_lock() {
	local t v rc=0
	t=$(mktemp -d)
	mkdir -p "$t/cache"
	flock "$t/cache/build.lock" sleep 8 &
	sleep 1
	for v in fetch apply worktree mbox clean; do
		KB_CACHE=$t/cache KB_SENDER="Lock Check <lock@localhost>" timeout 1 \
			"$TOP/scripts/pipeline" "$v" mainline >"$t/out" 2>&1 && rc=1
		grep -q "waiting for another kernel build" "$t/out" || {
			echo "$v did not wait for the build lock:"
			cat "$t/out"
			rc=1
		}
	done
	wait
	rm -rf "$t"
	return $rc
}

# The reuse key changes with the QEMU version and with the TAP parser.
check_reuse_key() (
	t=$(mktemp -d)
	trap 'rm -rf "$t"' EXIT
	mkdir -p "$t/root" "$t/rd"
	echo k >"$t/kernel"
	printf '#!/bin/sh
echo "QEMU emulator version 7.2.0"
' >"$t/qemu-a"
	printf '#!/bin/sh
echo "QEMU emulator version 8.1.0"
' >"$t/qemu-b"
	chmod +x "$t/qemu-a" "$t/qemu-b"
	a=$(QEMU=$t/qemu-a test_key "$t/kernel" "$t/root" cmd "$t/rd" stack)
	b=$(QEMU=$t/qemu-b test_key "$t/kernel" "$t/root" cmd "$t/rd" stack)
	[ "$a" != "$b" ] || { echo "same key for two QEMU versions"; exit 1; }
	c=$(QEMU=$t/qemu-a test_key "$t/kernel" "$t/root" cmd "$t/rd" "")
	[ "$a" != "$c" ] || { echo "same key with and without a stack"; exit 1; }
	cp "$TOP/scripts/tap.py" "$t/tap.py"
	echo "# changed" >>"$TOP/scripts/tap.py"
	d=$(QEMU=$t/qemu-a test_key "$t/kernel" "$t/root" cmd "$t/rd" stack)
	cp "$t/tap.py" "$TOP/scripts/tap.py"
	[ "$a" != "$d" ] || { echo "same key after tap.py changed"; exit 1; }
)

# The debug kernel has the detectors SPLAT_RE looks for.
check_debug_detectors() {
	local bd opt rc=0
	bd=$(build_dir mainline debug)
	for opt in CONFIG_DETECT_HUNG_TASK CONFIG_SOFTLOCKUP_DETECTOR CONFIG_PROVE_LOCKING CONFIG_KASAN CONFIG_DEBUG_KMEMLEAK; do
		grep -q "^$opt=y" "$bd/.config" || { echo "$opt is not set in $bd/.config"; rc=1; }
	done
	return $rc
}
check_bad_verb() { expect_fail "unknown verb" "$TOP/scripts/pipeline" frobnicate; }
check_bad_flavor() { expect_fail "unknown flavor" "$TOP/scripts/pipeline" build mainline huge; }
check_bad_cross_arch() { expect_fail "unknown cross arch 'sparc64'" "$TOP/scripts/pipeline" cross mainline sparc64; }

# The generic KVM code the series changes, built for other architectures.
check_cross() {
	if [ "${KB_CHECK_CROSS:-1}" = 1 ]; then
		ck "cross-build the KVM code of mainline for $CROSS_ARCHES (warnings are errors)" \
			"$TOP/scripts/pipeline" cross mainline
	else
		ck_skip "cross-build the KVM code of mainline for $CROSS_ARCHES" "KB_CHECK_CROSS=0"
	fi
}

# A pinned version the archive does not have: the error names what it has.
check_gone_version() {
	local t
	t=$(mktemp -d)
	sed 's/^mainline .*/mainline   linux-source-7.3   0.0~gone-1   experimental   patches   -/' \
		"$TREES_FILE" >"$t/trees"
	KB_TREES=$t/trees KB_CACHE=$t/cache expect_fail "not in the archive any more; available: .*7\.3" \
		"$TOP/scripts/pipeline" fetch mainline
	local rc=$?
	rm -rf "$t"
	return $rc
}

# A truncated .deb in the cache is detected and replaced, not extracted.
check_truncated_deb() {
	local t deb rc=0
	t=$(mktemp -d)
	deb=$(deb_path mainline)
	[ -f "$deb" ] || { echo "no cached .deb to truncate"; return 1; }
	mkdir -p "$t/debs"
	head -c 1000000 "$deb" >"$t/debs/$(basename "$deb")"
	cp "$deb.sha256" "$t/debs/"
	KB_CACHE=$t "$TOP/scripts/pipeline" fetch-deb mainline >"$t/out" 2>&1 || rc=1
	grep -q downloading "$t/out" || rc=1
	cmp -s "$deb" "$t/debs/$(basename "$deb")" || rc=1
	cat "$t/out"
	rm -rf "$t"
	return $rc
}

# A full disk: a clear error, and the cache still usable afterwards.
check_full_disk() {
	local t rc=0
	t=$(mktemp -d)
	mount -t tmpfs -o size=64m tmpfs "$t" 2>/dev/null || { rm -rf "$t"; return 2; }
	KB_CACHE=$t/cache expect_fail "MiB free under .*needs" "$TOP/scripts/pipeline" fetch mainline || rc=1
	[ -z "$(ls -A "$t/cache/src" 2>/dev/null)" ] || { echo "left a partial tree behind"; rc=1; }
	umount "$t"
	rm -rf "$t"
	return $rc
}

check_missing_tool() {
	KB_QEMU=qemu-system-x86_64-missing expect_fail "missing tool\(s\): qemu-system-x86_64-missing" \
		"$TOP/scripts/pipeline" test mainline
}

# The test kernel without /dev/kvm (no SVM in the virtual CPU).
check_no_kvm() {
	KB_QEMU_CPU=max,-svm,-vmx expect_fail "no /dev/kvm" "$TOP/scripts/pipeline" test mainline
}

# check_bisect_record BRANCH: the per-patch build of a stack that check
# does not build patch by patch itself (the long tier does, and so does a
# developer after changing it) is recorded next to it, and the record is
# of the current stack and passed.
check_bisect_record() {
	local f n
	f=$(stack_dir "$1")/bisect-build.txt
	n=$(series_patches "$1" | wc -l)
	[ -f "$f" ] || { echo "no $f: run './scripts/pipeline bisect-build $1' and commit it"; return 1; }
	grep -qx "stack: $(stack_hash "$1")" "$f" ||
		{ echo "$f is of another version of the stack: run './scripts/pipeline bisect-build $1' and commit it"; return 1; }
	grep -qx "result: all $n patches build" "$f" || { grep '^result:' "$f"; return 1; }
	grep -E '^(date|arches|result):' "$f" | tr '\n' ' '
	echo
}

# The stable fix mails: a copy of the first, sent to the KVM list instead
# of stable@ and numbered as part of a series, must fail check-mails.
check_fix_mail_control() {
	local b=${MAIL_FIXES[0]%%=*} f=${MAIL_FIXES[0]#*=} t out
	t=$(mktemp -d)
	sed -E 's/^To: .*/To: kvm@vger.kernel.org/; s/^Subject: \[PATCH [^]]*\]/Subject: [PATCH 1\/3]/' "$f" >"$t/bad.mbox"
	if out=$(python3 "$TOP/scripts/check-mails.py" --thread-only --fix-mail "$b=$t/bad.mbox"); then
		echo "check-mails accepted $t/bad.mbox"
		return 1
	fi
	rm -rf "$t"
	grep -q "To: is not stable" <<<"$out" && grep -q 'want "\[PATCH '"$b"'\]' <<<"$out"
}

# The mainline thread and its round trip: check_mail_branch (scripts/mail.sh).
check_mbox() { check_mail_branch mainline; }

# On mainline, with the series applied, the series' tests must have run and
# passed, and the negative controls must have failed as they should: every
# "series" and "xfail" row of scripts/testlist in that tier and config.
check_series_tests_ran() {
	local flavor=$1
	python3 - "$(result_dir mainline "$flavor")/summary.json" "$(build_dir mainline "$flavor")/initramfs/tests.list" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
want = {}
for l in open(sys.argv[2]):
    f = l.split()
    if len(f) > 2 and (f[2] == "series" or f[2].startswith("xfail")):
        want[f[0]] = "xfail" if f[2].startswith("xfail") else "pass"
got = {t["name"]: t["status"] for t in s["tests"]}
bad = ["%s: %s, want %s" % (n, got.get(n, "not in the run"), w) for n, w in want.items() if got.get(n) != w]
print("\n".join(bad) or "%d series tests and negative controls: %s" % (len(want), ", ".join(want)))
sys.exit(1 if bad or not want else 0)
PY
}

cmd_check() {
	local b t0 r
	t0=$(date +%s)
	# check always boots (never reuses the results of an earlier run), with
	# the full test tier and a new seed for the suite's random tests.
	export KB_RETEST=1 KB_TIER=full
	export KB_SEED=${KB_SEED:-0x$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')}
	echo "# the suite's random tests use KST_SEED=$KB_SEED (KB_SEED=$KB_SEED reruns them the same)"
	cmd_deps
	# The linter for the scripts; python3-ply and python3-git for the SPDX
	# check that checkpatch.pl runs through scripts/spdxcheck.py;
	# python3-yaml for the test of the CI workflow.
	apt_install shellcheck python3-ply python3-git python3-yaml
	mkdir -p "$CACHE"
	echo "# static checks"
	ck "scripts parse (bash -n, py_compile)" check_scripts_parse
	ck "shellcheck scripts/ and .ci/run" check_shellcheck
	ck "tap.py: all-skip binaries, failed cases, stack rules, negative controls, glued splats" \
		python3 "$TOP/scripts/tests/test_tap.py"
	ck "kcidb.py: KCIDB report of a run (schema, statuses, ids, patchset), bad documents refused; the CI workflow" \
		python3 "$TOP/scripts/tests/test_kcidb.py"
	ck "kcidb.py: the report of a real run directory (fixture) is written and validates" check_kcidb_fixture
	ck "doccheck.py: unmarked shell blocks, stray markers, run and example blocks, sphinx warnings" \
		python3 "$TOP/scripts/tests/test_doccheck.py"
	ck "Documentation: sphinx-build -W with no warning, every shell block run or marked as an example" \
		python3 "$TOP/scripts/doccheck.py"
	ck "trees table: 6 columns and a stack directory per branch" check_trees_table
	ck "series files match the patch files" check_series
	echo "# bad input"
	ck "unknown branch is rejected" check_bad_branch
	ck "unknown branch in run's list stops the run before any step" check_bad_branch_in_list
	ck "a test step that failed is FAILED in the matrix despite older passing results" check_matrix_stale
	ck "the reuse key covers the QEMU version, the TAP parser and the stack" check_reuse_key
	ck "fetch, apply, worktree, mbox and clean wait for the build lock" check_lock
	ck "unknown verb is rejected" check_bad_verb
	ck "unknown flavor is rejected" check_bad_flavor
	ck "unknown cross arch is rejected" check_bad_cross_arch
	ck "pinned version gone: error names the available versions" check_gone_version
	echo "# mainline: fetch, apply, cross-build, build, boot, test"
	ck "fetch mainline" "$TOP/scripts/pipeline" fetch mainline
	ck "truncated .deb in the cache is replaced" check_truncated_deb
	ck "apt-get update failure: said so, not 'version gone'" check_apt_update_failure
	r=0; check_full_disk >"$CACHE/check.out" 2>&1 || r=$?
	if [ $r -eq 2 ]; then ck_skip "full disk: clear error" "cannot mount a tmpfs here"
	else ck "full disk: clear error, no partial tree" check_full_disk; fi
	ck "apply mainline (git am and quilt)" "$TOP/scripts/pipeline" apply mainline
	check_cross
	if has_stack mainline; then
		ck "mbox: no sender identity, or not \"Name <email>\": a clear error" check_mail_sender
		ck "mbox mainline: one thread (b4 prep/send -o, To/Cc from the tree's get_maintainer.pl + MAINTAINERS-snippet), b4 am and git am of it = kb/mainline" check_mbox
	else
		ck_skip "mbox mainline" "empty stack"
	fi
	for b in $(all_branches); do
		if [ "$b" = mainline ] || ! has_stack "$b"; then continue; fi
		# Every stack, statically: its base tree, git am and quilt, its
		# mails; checkpatch below uses its own tree.
		ck "fetch $b" "$TOP/scripts/pipeline" fetch "$b"
		ck "apply $b (git am and quilt)" "$TOP/scripts/pipeline" apply "$b"
		ck "mbox $b: one thread, b4 am and git am of it = kb/$b" check_mail_branch "$b"
		ck "$b: backports/$b/bisect-build.txt records that every patch of this stack builds on its own" check_bisect_record "$b"
	done
	ck "checkpatch --strict on every patch of every stack" check_checkpatch
	ck "every stack's mails: threads, Message-Ids, unfolded headers, subjects, base-commit, stable format (scripts/check-mails.py)" check_mails
	if [ ${#MAIL_FIXES[@]} -gt 0 ]; then
		ck "a stable fix mail not to stable@, or with a series counter, is refused (negative control)" check_fix_mail_control
	fi
	ck "build mainline (minimal)" "$TOP/scripts/pipeline" build mainline minimal
	if [ "${KB_CHECK_BISECT:-1}" = 1 ]; then
		ck "every patch of mainline builds on its own (x86_64, cross arches)" \
			"$TOP/scripts/pipeline" bisect-build mainline
	else
		ck_skip "every patch of mainline builds on its own" "KB_CHECK_BISECT=0"
	fi
	ck "missing tool: clear error" check_missing_tool
	ck "test kernel without /dev/kvm: clear error" check_no_kvm
	ck "test mainline (minimal): every test passes, clean kernel log" "$TOP/scripts/pipeline" test mainline minimal
	ck "mainline (minimal): the series' tests passed, the negative controls failed" check_series_tests_ran minimal
	if [ "${KB_CHECK_SHADOW:-1}" = 1 ]; then
		# The quick tier: the series' tests at reduced counts, the
		# controls and the suite, under the shadow MMU.
		ck "test mainline (shadow paging, quick tier): every test passes, clean kernel log" \
			env KB_TIER=quick "$TOP/scripts/pipeline" test mainline shadow
		ck "mainline (shadow paging): the series' tests passed, the negative controls failed" check_series_tests_ran shadow
	else
		ck_skip "shadow-paging boot" "KB_CHECK_SHADOW=0"
	fi
	if [ "${KB_CHECK_DEBUG:-1}" = 1 ]; then
		ck "build mainline (debug: lockdep, KASAN, kmemleak)" "$TOP/scripts/pipeline" build mainline debug
		ck "debug kernel: hung-task and soft-lockup detectors, lockdep, KASAN, kmemleak" check_debug_detectors
		ck "test mainline (debug): every test passes, clean kernel log" "$TOP/scripts/pipeline" test mainline debug
		ck "mainline (debug): the series' tests passed, the negative controls failed" check_series_tests_ran debug
	else
		ck_skip "debug kernel" "KB_CHECK_DEBUG=0"
	fi
	# shellcheck disable=SC2031 # not the subshell's RESULTS
	echo "# per-test results: $RESULTS/mainline-*/results.tap"
	echo "check took $(($(date +%s) - t0)) s"
	echo "check: $CHECK_PASS passed, $CHECK_FAIL failed, $CHECK_SKIP skipped"
	[ $CHECK_FAIL -eq 0 ]
}
