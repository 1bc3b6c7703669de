# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# cross: compile the KVM code for architectures the test kernels do not
# cover (the series changes virt/kvm and include/, which every KVM
# architecture builds), with Debian's cross compilers.  Sourced by
# scripts/pipeline.

# arch     kernel ARCH   CROSS_COMPILE        Debian package
CROSS_TABLE="
arm64      arm64         aarch64-linux-gnu-   gcc-aarch64-linux-gnu
riscv64    riscv         riscv64-linux-gnu-   gcc-riscv64-linux-gnu
"
CROSS_ARCHES="arm64 riscv64"

# cross_field ARCH FIELD: one column of CROSS_TABLE (karch, prefix, package).
cross_field() {
	awk -v a="$1" -v f="$2" '
		NF == 4 && $1 == a {
			n = split("arch karch prefix package", h, " ")
			for (i = 1; i <= n; i++) if (h[i] == f) { print $i; found = 1 }
			exit
		}
		END { if (!found) exit 1 }' <<<"$CROSS_TABLE"
}

# cross_one BRANCH ARCH: defconfig + KVM=y, then prepare, virt/ and
# arch/ARCH/kvm/ (virt/kvm/*.c is compiled from there, through
# virt/kvm/Makefile.kvm; it has no Makefile of its own).  W=e turns every
# compiler, assembler and linker warning of these objects, including the
# ones from headers under include/, into an error.  Returns non-zero on
# failure after printing the first errors and the end of the log; the
# caller holds the build lock.  SRC and BUILD default to the branch's tree
# and its cross build directory (bisect-build passes its own).
cross_one() {
	local branch=$1 arch=$2 src=${3:-} bd=${4:-} karch prefix blog t0 opt rc=0
	[ -n "$src" ] || src=$(src_dir "$branch")
	karch=$(cross_field "$arch" karch)
	prefix=$(cross_field "$arch" prefix)
	[ -n "$bd" ] || bd=$(build_dir "$branch" "cross-$arch")
	blog=$bd/build.log
	mkdir -p "$bd"
	need_space "$bd" 2048
	local mk=(make -C "$src" O="$bd" ARCH="$karch" CROSS_COMPILE="$prefix"
		CC="ccache ${prefix}gcc" W=e)
	t0=$(date +%s)
	log "$branch/$arch: defconfig + KVM=y, building virt/ and arch/$karch/kvm/ in $bd (make -j$JOBS, ccache, W=e)"
	# KVM on; debug info off (it only costs time: nothing is linked or run).
	{
		"${mk[@]}" defconfig &&
			"$src/scripts/config" --file "$bd/.config" \
				--enable VIRTUALIZATION --enable KVM \
				--disable DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT \
				--disable DEBUG_INFO_DWARF4 --disable DEBUG_INFO_DWARF5 \
				--enable DEBUG_INFO_NONE &&
			"${mk[@]}" olddefconfig
	} >"$blog" 2>&1 || rc=$?
	if [ $rc -ne 0 ]; then
		tail -n 15 "$blog" >&2
		log "$branch/$arch: configuring failed; full log in $blog"
		return 1
	fi
	for opt in VIRTUALIZATION KVM; do
		if ! grep -q "^CONFIG_$opt=y" "$bd/.config"; then
			log "$branch/$arch: CONFIG_$opt=y did not stick after olddefconfig (see $bd/.config)"
			return 1
		fi
	done
	"${mk[@]}" -j"$JOBS" virt/ "arch/$karch/kvm/" >>"$blog" 2>&1 || rc=$?
	if [ $rc -ne 0 ]; then
		grep -E '(error|warning):' "$blog" | head -n 20 >&2
		echo "    ..." >&2
		tail -n 10 "$blog" >&2
		log "$branch/$arch: KVM build failed; full log in $blog"
		return 1
	fi
	# W=e made warnings errors; one kept a warning (-Wno-error=..., a
	# pragma) still fails the step.  Paths are absolute with O= outside
	# the source tree, hence the optional prefix.
	if grep -E "^([^: ]*/)?(virt|include|arch/$karch/kvm)/[^: ]*:[0-9]+:[0-9]+: warning:" "$blog" >&2; then
		log "$branch/$arch: compiler warnings in the KVM code (see above; full log in $blog)"
		return 1
	fi
	echo "$(($(date +%s) - t0))" >"$bd/build-seconds"
	log "$branch/$arch: KVM code builds without warnings, $(cat "$bd/build-seconds") s"
}

# cross [BRANCH [ARCH...]]: cross_one for each ARCH (default: all of
# CROSS_ARCHES) on the applied tree of BRANCH.
cmd_cross() {
	local branch=${1:-mainline} arch src head pkgs=() failed=() logs=()
	[ $# -eq 0 ] || shift
	# shellcheck disable=SC2086
	[ $# -gt 0 ] || set -- $CROSS_ARCHES
	check_branch "$branch"
	for arch; do
		cross_field "$arch" karch >/dev/null ||
			die "unknown cross arch '$arch'; supported: $CROSS_ARCHES"
		pkgs+=("$(cross_field "$arch" package)")
	done
	src=$(src_dir "$branch")
	[ -d "$src/.git" ] ||
		die "$branch: no tree; run '$TOP/scripts/pipeline fetch $branch' and '$TOP/scripts/pipeline apply $branch' first"
	head=$(git -C "$src" symbolic-ref -q --short HEAD || true)
	[ "$head" = "kb/$branch" ] ||
		die "$branch: $src is on '${head:-a detached HEAD}', not kb/$branch; run '$TOP/scripts/pipeline apply $branch' first"
	apt_install "${pkgs[@]}"
	need_tools make gcc ccache flex bison bc
	for arch; do need_tools "$(cross_field "$arch" prefix)gcc"; done
	build_lock
	export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache} CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}
	export KBUILD_BUILD_TIMESTAMP="@0" KBUILD_BUILD_USER=kb KBUILD_BUILD_HOST=kb
	for arch; do
		cross_one "$branch" "$arch" || {
			failed+=("$arch")
			logs+=("$(build_dir "$branch" "cross-$arch")/build.log")
		}
	done
	build_unlock
	[ ${#failed[@]} -eq 0 ] ||
		die "$branch: the KVM code does not build cleanly for ${failed[*]}; see ${logs[*]}"
}
