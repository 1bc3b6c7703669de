# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# bisect-build: every patch of a stack builds on its own.  For each commit
# of kb/<branch> (after 'apply'), in order, build virt/ and arch/x86/kvm/ of
# the minimal config (KVM_WERROR; any warning there fails) and, unless
# KB_BISECT_CROSS=0, the same KVM code for the cross architectures (W=e).
# A patch that changes nothing the kernel builds from (selftests,
# Documentation/) is recorded as such and not rebuilt.  The result, one line
# per patch, goes to $CACHE/build/<branch>-bisect/result.tsv and is printed.
# Sourced by scripts/pipeline.

# Paths a patch may touch without changing what the kernel build compiles.
BISECT_NOBUILD_RE='^(tools/|Documentation/|MAINTAINERS$)'

# stack_hash BRANCH: a hash of the stack as the repository holds it (its
# series file and the patches it lists), to tell whether a record is of
# the current stack.
stack_hash() {
	local stack p
	stack=$(stack_dir "$1")
	{
		cat "$stack/series"
		for p in $(series_patches "$1"); do cat "$stack/$p"; done
	} | sha256sum | cut -c1-16
}

# bisect_record BRANCH RESULT_TSV FAILED ARCHES: the result of the last
# per-patch build, next to the stack (bisect-build.txt), for the people
# who take the stack and for 'check', which wants a passing record of the
# current stack for every stack whose build it does not run itself.
bisect_record() {
	local branch=$1 out=$2 failed=$3 arches=$4 f n
	f=$(stack_dir "$branch")/bisect-build.txt
	n=$(series_patches "$branch" | wc -l)
	{
		echo "# The last './scripts/pipeline bisect-build $branch' (scripts/bisect.sh):"
		echo "# each patch of the stack applied in order, virt/ and arch/x86/kvm/ of"
		echo "# the minimal config built (KVM_WERROR), and the same KVM code for the"
		echo "# cross architectures (W=e).  Written by the pipeline; commit it."
		echo "date: $(date -u +%FT%TZ)"
		echo "stack: $(stack_hash "$branch")"
		echo "arches: $arches"
		if [ "$failed" -eq 0 ]; then echo "result: all $n patches build"; else echo "result: FAILED"; fi
		cut -f1-3 "$out"
	} >"$f"
	log "$branch: recorded in ${f#"$TOP"/}"
}

cmd_bisect_build() {
	local branch=${1:-mainline} src tag wt bd out c i=0 n subj files rc arch failed=0 t0 t1 arches=()
	check_branch "$branch"
	need_tools make gcc ccache flex bison bc git
	src=$(src_dir "$branch")
	tag=$(base_tag "$branch")
	tree_ok "$branch" || die "$branch: no base tree; run '$TOP/scripts/pipeline fetch $branch' first"
	git -C "$src" rev-parse -q --verify "refs/heads/kb/$branch" >/dev/null ||
		die "$branch: no applied stack; run '$TOP/scripts/pipeline apply $branch' first"
	n=$(git -C "$src" rev-list --count "$tag..kb/$branch")
	[ "$n" -gt 0 ] || die "$branch: the stack is empty, nothing to build patch by patch"
	if [ "${KB_BISECT_CROSS:-1}" != 0 ]; then
		read -r -a arches <<<"$CROSS_ARCHES"
		for arch in "${arches[@]}"; do apt_install "$(cross_field "$arch" package)"; done
	fi
	build_lock
	export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache} CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}
	export KBUILD_BUILD_TIMESTAMP="@0" KBUILD_BUILD_USER=kb KBUILD_BUILD_HOST=kb
	wt=$CACHE/bisect/$branch
	bd=$(build_dir "$branch" bisect)
	rm -rf "$wt"
	git -C "$src" worktree prune
	git -C "$src" worktree add -q --detach "$wt" "$tag"
	mkdir -p "$bd"
	need_space "$bd" 3072
	out=$bd/result.tsv
	: >"$out"
	mkdir -p "$bd/x86"
	kconfig "$wt" "$bd/x86" minimal "$branch"
	for c in $(git -C "$src" rev-list --reverse "$tag..kb/$branch"); do
		i=$((i + 1))
		subj=$(git -C "$src" log -1 --format=%s "$c")
		git -C "$wt" checkout -q --detach "$c"
		files=$(git -C "$wt" diff --name-only "$c^" "$c")
		if ! grep -qvE "$BISECT_NOBUILD_RE" <<<"$files"; then
			printf '%d/%d\t%s\tno kernel change (%s)\t-\n' "$i" "$n" "$subj" \
				"$(tr '\n' ' ' <<<"$files" | sed 's/ $//')" | tee -a "$out" >&2
			continue
		fi
		t0=$(date +%s)
		rc=0
		make -C "$wt" O="$bd/x86" ARCH=x86_64 CC="ccache gcc" -j"$JOBS" \
			virt/ arch/x86/kvm/ >"$bd/x86-$i.log" 2>&1 || rc=$?
		if [ $rc -ne 0 ] ||
			grep -E '^([^: ]*/)?(virt|include|arch/x86/kvm)/[^:]*:[0-9]+:[0-9]+: warning:' "$bd/x86-$i.log" >&2; then
			grep -E '(error|warning):' "$bd/x86-$i.log" | head -n 10 >&2
			printf '%d/%d\t%s\tx86_64 FAILED (%s)\t%s\n' "$i" "$n" "$subj" "$bd/x86-$i.log" "$(($(date +%s) - t0))" |
				tee -a "$out" >&2
			failed=1
			continue
		fi
		t1=$(date +%s)
		local res="x86_64 ok $((t1 - t0))s"
		for arch in "${arches[@]}"; do
			t0=$(date +%s)
			if cross_one "$branch" "$arch" "$wt" "$bd/$arch" >"$bd/$arch-$i.out" 2>&1; then
				res="$res, $arch ok $(($(date +%s) - t0))s"
			else
				cat "$bd/$arch-$i.out" >&2
				res="$res, $arch FAILED ($bd/$arch/build.log)"
				failed=1
			fi
		done
		printf '%d/%d\t%s\t%s\t%s\n' "$i" "$n" "$subj" "$res" "$(($(date +%s) - t1))" | tee -a "$out" >&2
	done
	git -C "$src" worktree remove --force "$wt"
	build_unlock
	bisect_record "$branch" "$out" "$failed" "x86_64${arches[*]:+ ${arches[*]}}"
	[ $failed -eq 0 ] || die "$branch: not every patch builds on its own; see $out"
	log "$branch: every one of the $n patches builds on its own (x86_64${arches[*]:+, ${arches[*]}}): $out"
}
