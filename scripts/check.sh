# SPDX-License-Identifier: GPL-2.0
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
	python3 -m py_compile "$TOP/scripts/tap.py"
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
	local b p src bad=0
	for b in $(all_branches); do
		[ -n "$(series_patches "$b")" ] || continue
		# Each stack is checked by its own tree's checkpatch.
		src=$(src_dir "$b")
		[ -x "$src/scripts/checkpatch.pl" ] || src=$(src_dir mainline)
		for p in $(series_patches "$b"); do
			if ! (cd "$src" && perl scripts/checkpatch.pl --strict -q --ignore FILE_PATH_CHANGES \
					"$(stack_dir "$b")/$p") >"$CACHE/checkpatch.out" 2>&1; then
				echo "$b/$p:"
				cat "$CACHE/checkpatch.out"
				bad=1
			fi
		done
	done
	return $bad
}

check_bad_branch() { expect_fail "unknown branch 'no-such-branch'" "$TOP/scripts/pipeline" fetch no-such-branch; }
check_bad_verb() { expect_fail "unknown verb" "$TOP/scripts/pipeline" frobnicate; }
check_bad_flavor() { expect_fail "unknown config flavor" "$TOP/scripts/pipeline" build mainline huge; }
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

check_mbox() {
	local t rc=0
	[ -n "$(series_patches mainline)" ] || return 2
	t=$(mktemp -d)
	KB_SENDER="Pipeline Check <check@localhost>" "$TOP/scripts/pipeline" mbox mainline "$t/m.mbox" || rc=1
	[ "$(grep -c '^Signed-off-by: Pipeline Check <check@localhost>' "$t/m.mbox")" -eq \
		"$(series_patches mainline | wc -l)" ] || { echo "sender Signed-off-by missing"; rc=1; }
	rm -rf "$t"
	return $rc
}

# The series' own selftests are "if-built" in scripts/testlist (old trees do
# not have them); on mainline, with the series applied, they must have run.
check_series_tests_ran() {
	local flavor=$1
	python3 - "$(result_dir mainline "$flavor")/summary.json" "$flavor" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
want = {"minimal": ["x86/memslot_batch_test", "x86/memslot_batch_race_test",
                    "x86/memslot_batch_race_test-mmu", "x86/memslot_batch_perf_test"],
        "debug": ["x86/memslot_batch_test", "x86/memslot_batch_race_test-short"]}[sys.argv[2]]
bad = [t["name"] + ": " + t["status"] for t in s["tests"] if t["name"] in want and t["status"] != "pass"]
missing = [w for w in want if w not in [t["name"] for t in s["tests"]]]
print("\n".join(bad + [m + ": not in the run" for m in missing]))
sys.exit(1 if bad or missing else 0)
PY
}

cmd_check() {
	local b t0 r
	t0=$(date +%s)
	# check always boots: never reuse the results of an earlier run.
	export KB_RETEST=1
	cmd_deps
	mkdir -p "$CACHE"
	echo "# static checks"
	ck "scripts parse (bash -n, py_compile)" check_scripts_parse
	ck "trees table: 6 columns and a stack directory per branch" check_trees_table
	ck "series files match the patch files" check_series
	echo "# bad input"
	ck "unknown branch is rejected" check_bad_branch
	ck "unknown verb is rejected" check_bad_verb
	ck "unknown config flavor is rejected" check_bad_flavor
	ck "unknown cross arch is rejected" check_bad_cross_arch
	ck "pinned version gone: error names the available versions" check_gone_version
	echo "# mainline: fetch, apply, cross-build, build, boot, test"
	ck "fetch mainline" "$TOP/scripts/pipeline" fetch mainline
	ck "truncated .deb in the cache is replaced" check_truncated_deb
	r=0; check_full_disk >"$CACHE/check.out" 2>&1 || r=$?
	if [ $r -eq 2 ]; then ck_skip "full disk: clear error" "cannot mount a tmpfs here"
	else ck "full disk: clear error, no partial tree" check_full_disk; fi
	ck "checkpatch --strict on every patch of every stack" check_checkpatch
	ck "apply mainline (git am and quilt)" "$TOP/scripts/pipeline" apply mainline
	check_cross
	r=0; check_mbox >"$CACHE/check.out" 2>&1 || r=$?
	if [ $r -eq 2 ]; then ck_skip "mbox mainline" "empty stack"
	else ck "mbox mainline applies with git am and carries the sender's Signed-off-by" check_mbox; fi
	ck "build mainline (minimal)" "$TOP/scripts/pipeline" build mainline minimal
	ck "missing tool: clear error" check_missing_tool
	ck "test kernel without /dev/kvm: clear error" check_no_kvm
	ck "test mainline (minimal): every test passes, clean kernel log" "$TOP/scripts/pipeline" test mainline minimal
	ck "mainline (minimal): the series' selftests ran and passed" check_series_tests_ran minimal
	if [ "${KB_CHECK_DEBUG:-1}" = 1 ]; then
		ck "build mainline (debug: lockdep, KASAN, kmemleak)" "$TOP/scripts/pipeline" build mainline debug
		ck "test mainline (debug): every test passes, clean kernel log" "$TOP/scripts/pipeline" test mainline debug
		ck "mainline (debug): the series' selftests ran and passed" check_series_tests_ran debug
	else
		ck_skip "debug kernel" "KB_CHECK_DEBUG=0"
	fi
	echo "# per-test results: $RESULTS/mainline-*/results.tap"
	echo "check took $(($(date +%s) - t0)) s"
	echo "check: $CHECK_PASS passed, $CHECK_FAIL failed, $CHECK_SKIP skipped"
	[ $CHECK_FAIL -eq 0 ]
}
