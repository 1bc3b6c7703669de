# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# apply and build.  Sourced by scripts/pipeline.

# The project identity (the repository's git config): commits made in the
# cached trees and the patches exported from them carry it.
project_name() { git -C "$TOP" config user.name 2>/dev/null || echo "kvm-atomic-memslots pipeline"; }
project_email() { git -C "$TOP" config user.email 2>/dev/null || echo "pipeline@localhost"; }

# git with the project identity as author and committer where git makes
# one up (git am takes the authors from the patches).
kb_git() {
	GIT_COMMITTER_NAME=$(project_name) GIT_COMMITTER_EMAIL=$(project_email) \
	GIT_AUTHOR_NAME=$(project_name) GIT_AUTHOR_EMAIL=$(project_email) \
		git "$@"
}

# apply BRANCH: git am the branch's stack onto a fresh branch from the base,
# then check that quilt, fed the same series file, makes the same tree.
cmd_apply() {
	local branch=$1 src tag stack series p applied wt qtree gtree out
	check_branch "$branch"
	need_tools git quilt
	tree_ok "$branch" || die "$branch: no base tree; run '$TOP/scripts/pipeline fetch $branch' first"
	src=$(src_dir "$branch")
	tag=$(base_tag "$branch")
	stack=$(stack_dir "$branch")
	series=$(series_file "$branch")
	git -C "$src" am --abort >/dev/null 2>&1 || true
	git -C "$src" checkout -q -f -B "kb/$branch" "$tag"
	git -C "$src" clean -q -fdx
	mapfile -t patches < <(series_patches "$branch")
	if [ ${#patches[@]} -eq 0 ]; then
		log "$branch: empty stack, tree is the base"
		return 0
	fi
	for p in "${patches[@]}"; do
		[ -f "$stack/$p" ] || die "$branch: $series names $p, which is not in $stack"
	done
	log "$branch: git am ${#patches[@]} patch(es) from $stack"
	if ! out=$(cd "$stack" && kb_git -C "$src" am -q --whitespace=nowarn \
			"${patches[@]/#/$stack/}" 2>&1); then
		applied=$(git -C "$src" rev-list --count "$tag..HEAD")
		echo "$out" | grep -E '^(error|Patch failed|Applying|fatal)' >&2 || echo "$out" >&2
		git -C "$src" am --abort >/dev/null 2>&1 || true
		die "$branch: patch ${patches[$applied]} (number $((applied + 1)) in $series) does not apply to $tag; see the failing hunk above"
	fi
	# quilt: same series file, pristine base in a temporary worktree.
	wt="$CACHE/quilt/$branch"
	rm -rf "$wt"
	git -C "$src" worktree prune
	git -C "$src" worktree add -q --detach "$wt" "$tag"
	if ! out=$(cd "$wt" && QUILT_PATCHES="$stack" QUILT_SERIES="$series" \
			quilt push -a -q --fuzz=0 2>&1); then
		echo "$out" | tail -n 15 >&2
		git -C "$src" worktree remove --force "$wt"
		die "$branch: 'quilt push -a' of $series failed (see above)"
	fi
	rm -rf "$wt/.pc"
	qtree=$(cd "$wt" && git add -A && git write-tree)
	gtree=$(git -C "$src" rev-parse "HEAD^{tree}")
	git -C "$src" worktree remove --force "$wt"
	[ "$qtree" = "$gtree" ] ||
		die "$branch: quilt and git am produce different trees from $series"
	log "$branch: stack applies with git am and quilt ($(git -C "$src" rev-parse --short HEAD))"
}

KVM_CRITICAL="CONFIG_KVM CONFIG_KVM_AMD CONFIG_SERIAL_8250_CONSOLE CONFIG_BLK_DEV_INITRD CONFIG_DEVTMPFS CONFIG_64BIT"

# configure SRC BUILD FLAVOR BRANCH: tinyconfig + fragments.
kconfig() {
	local src=$1 bd=$2 flavor=$3 branch=$4 frags opt line val got
	frags=("$TOP/scripts/configs/minimal.config")
	[ "$flavor" = debug ] && frags+=("$TOP/scripts/configs/debug.config")
	[ -f "$TOP/scripts/configs/$branch.config" ] && frags+=("$TOP/scripts/configs/$branch.config")
	make -s -C "$src" O="$bd" ARCH=x86_64 tinyconfig >/dev/null
	(cd "$src" && KCONFIG_CONFIG="$bd/.config" ./scripts/kconfig/merge_config.sh -m -O "$bd" "$bd/.config" "${frags[@]}") >"$bd/merge.log" 2>&1
	make -s -C "$src" O="$bd" ARCH=x86_64 olddefconfig >/dev/null
	# Report options that did not stick (some do not exist on old branches).
	for f in "${frags[@]}"; do
		while read -r line; do
			case $line in CONFIG_*=*) ;; *) continue ;; esac
			opt=${line%%=*}
			val=${line#*=}
			got=$(grep -E "^$opt=|^# $opt is not set" "$bd/.config" || true)
			if [ "$val" = n ]; then
				[ -z "$got" ] || [ "$got" = "# $opt is not set" ] || echo "$opt: wanted n, got '$got'"
			elif [ "$got" != "$opt=$val" ]; then
				echo "$opt: wanted $val, got '${got:-absent}'"
			fi
		done <"$f"
	done >"$bd/config-mismatch.txt"
	for opt in $KVM_CRITICAL; do
		grep -q "^$opt=y" "$bd/.config" || die "$branch: $opt could not be enabled; see $bd/config-mismatch.txt"
	done
}

# build BRANCH [FLAVOR]: out-of-tree kernel build (bzImage + headers).
cmd_build() {
	local branch=$1 flavor=${2:-minimal} src bd t0 rc
	check_branch "$branch"
	case $flavor in minimal | debug | shadow) ;; *) die "unknown flavor '$flavor' (minimal, debug or shadow)" ;; esac
	flavor=$(flavor_config "$flavor")
	need_tools make gcc ccache flex bison bc
	src=$(src_dir "$branch")
	[ -d "$src/.git" ] || die "$branch: no tree; run '$TOP/scripts/pipeline fetch $branch' first"
	bd=$(build_dir "$branch" "$flavor")
	mkdir -p "$bd"
	need_space "$bd" 3072
	build_lock
	t0=$(date +%s)
	export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache} CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}
	export KBUILD_BUILD_TIMESTAMP="@0" KBUILD_BUILD_USER=kb KBUILD_BUILD_HOST=kb
	# 5.10's KVM selftests Makefile runs headers_install in the source tree
	# (the test step builds them), and an O= build refuses a source tree
	# with generated files in it.
	if [ -e "$src/include/generated" ] || [ -e "$src/arch/x86/include/generated" ]; then
		log "$branch: the source tree has generated files (a selftests build): make mrproper there"
		make -s -C "$src" ARCH=x86_64 mrproper >/dev/null
	fi
	kconfig "$src" "$bd" "$flavor" "$branch"
	log "$branch/$flavor: building in $bd (make -j$JOBS, ccache)"
	rc=0
	make -C "$src" O="$bd" ARCH=x86_64 CC="ccache gcc" -j"$JOBS" bzImage >"$bd/build.log" 2>&1 || rc=$?
	if [ $rc -ne 0 ]; then
		grep -E 'error|Error' "$bd/build.log" | head -n 20 >&2
		tail -n 10 "$bd/build.log" >&2
		build_unlock
		die "$branch/$flavor: kernel build failed; full log in $bd/build.log"
	fi
	if grep -E '^([^: ]*/)?(virt/kvm|arch/x86/kvm)/[^:]*:[0-9]+:[0-9]+: warning:' "$bd/build.log" >&2; then
		build_unlock
		die "$branch/$flavor: compiler warnings in virt/kvm or arch/x86/kvm (see above)"
	fi
	make -s -C "$src" O="$bd" ARCH=x86_64 headers_install >/dev/null
	build_unlock
	echo "$(($(date +%s) - t0))" >"$bd/build-seconds"
	log "$branch/$flavor: kernel built in $(cat "$bd/build-seconds") s: $bd/arch/x86/boot/bzImage"
}
