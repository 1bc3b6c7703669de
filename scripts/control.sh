# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# control-v1: the tests that v2 added because v1 got something wrong must
# fail on v1.  v1 is the series as the repository held it at KB_V1_REV
# (default 44800eb, the 11-patch v1); it is applied onto mainline's base
# tag in a scratch worktree and built (minimal config) into
# $CACHE/build/mainline-v1; that kernel then boots, with NPT and with
# shadow paging, with v2's test binaries (test's KB_KERNEL), running the
# rows of scripts/controls-v1 and set_memory_region_test, which must pass
# (the v1 kernel works).  Each row's test, or the cases it names, must
# fail with a verdict: a timeout, a missing binary or a hung boot is no
# verdict.  Sourced by scripts/pipeline.

CONTROLS_V1=$TOP/scripts/controls-v1

cmd_control_v1() {
	local rev=${KB_V1_REV:-44800eb} src tag dir wt bd kimg flavor re failed=0
	local -a patches
	src=$(src_dir mainline)
	tag=$(base_tag mainline)
	tree_ok mainline || die "mainline: no base tree; run '$TOP/scripts/pipeline fetch mainline' first"
	git -C "$TOP" rev-parse -q --verify "$rev^{commit}" >/dev/null ||
		die "KB_V1_REV=$rev is not a commit of this repository (a clone with its history is needed)"
	dir=$CACHE/v1-control
	wt=$dir/wt
	bd=$CACHE/build/mainline-v1
	build_lock
	git -C "$src" worktree remove --force "$wt" >/dev/null 2>&1 || true
	rm -rf "$dir"
	git -C "$src" worktree prune
	mkdir -p "$dir/stack" "$bd"
	git -C "$TOP" archive "$rev" patches series | tar -x -C "$dir/stack"
	mapfile -t patches < <(grep -vE '^[[:space:]]*(#|$)' "$dir/stack/series")
	log "control-v1: the v1 series at $rev (${#patches[@]} patches) onto $tag"
	git -C "$src" worktree add -q --detach "$wt" "$tag"
	if ! git -C "$wt" -c user.name=kb -c user.email=kb@localhost am -q --whitespace=nowarn \
		"${patches[@]/#/$dir/stack/patches/}" >"$dir/am.log" 2>&1; then
		tail -n 20 "$dir/am.log" >&2
		die "control-v1: the v1 series at $rev does not apply to $tag"
	fi
	export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache} CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}
	export KBUILD_BUILD_TIMESTAMP="@0" KBUILD_BUILD_USER=kb KBUILD_BUILD_HOST=kb
	need_space "$bd" 3072
	kconfig "$wt" "$bd" minimal mainline
	make -C "$wt" O="$bd" ARCH=x86_64 CC="ccache gcc" -j"$JOBS" bzImage >"$bd/build.log" 2>&1 ||
		{ tail -n 20 "$bd/build.log" >&2; die "control-v1: the v1 kernel does not build; $bd/build.log"; }
	git -C "$src" worktree remove --force "$wt"
	build_unlock
	kimg=$dir/bzImage-v1
	cp "$bd/arch/x86/boot/bzImage" "$kimg"
	for flavor in minimal shadow; do
		re=$(awk -v f="$flavor" '!/^[[:space:]]*(#|$)/ && $1 == f { printf "|%s", $2 }' "$CONTROLS_V1")
		re="^(set_memory_region_test${re})\$"
		log "control-v1: booting the v1 kernel ($flavor) with: $re"
		KB_KERNEL=$kimg KB_TESTS=$re KB_RETEST=1 "$TOP/scripts/pipeline" test mainline "$flavor" >"$dir/test-$flavor.log" 2>&1 || true
		python3 - "$(result_dir mainline "$flavor")-bzImage-v1/summary.json" "$CONTROLS_V1" "$flavor" <<'PY' || failed=1
import json, sys
path, table, flavor = sys.argv[1:4]
try:
    s = json.load(open(path))
except (OSError, ValueError) as e:
    print("not ok - %s: no results (%s)" % (flavor, e))
    sys.exit(1)
tests = {t["name"]: t for t in s["tests"]}
bad = 0
def say(ok, what):
    global bad
    bad += not ok
    print("%s - v1 %s: %s" % ("ok" if ok else "not ok", flavor, what))
say(not s["fatal"] and not s["hung"], "the boot ended normally")
t = tests.get("set_memory_region_test", {})
say(t.get("status") == "pass", "set_memory_region_test passes (the v1 kernel works): %s" % t.get("status"))
for line in open(table):
    if not line.strip() or line.lstrip().startswith("#"):
        continue
    f, name, cases, bug = line.split(None, 3)
    if f != flavor:
        continue
    t = tests.get(name)
    if not t:
        say(False, "%s did not run" % name)
        continue
    if cases == "-":
        say(t["status"] == "fail" and not any(w in t.get("reason", "") for w in ("timed out", "not built", "skipped")),
            "%s fails (%s): %s" % (name, t.get("reason", t["status"]), bug.strip()))
        continue
    got = {c["name"]: c["status"] for c in t.get("cases", [])}
    for c in cases.split(","):
        say(got.get(c) == "fail", "%s %s fails (%s): %s" % (name, c, got.get(c, "did not run"), bug.strip()))
sys.exit(1 if bad else 0)
PY
	done
	[ $failed -eq 0 ] || die "control-v1: a test that must fail on v1 did not (above; logs in $dir)"
	log "control-v1: every test of $CONTROLS_V1 fails on v1 ($rev) as it must"
}
