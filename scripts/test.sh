# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# test: build the tree's KVM selftests and our suite, pack them into an
# initramfs, boot the built kernel under QEMU (TCG, nested SVM) and turn the
# serial console into TAP + JSON.  Sourced by scripts/pipeline.

QEMU_MEM=${KB_QEMU_MEM:-4G}
QEMU_SMP=${KB_QEMU_SMP:-2}
QEMU=${KB_QEMU:-qemu-system-x86_64}
QEMU_CPU=${KB_QEMU_CPU:-max}

# Build the in-tree KVM selftests (static) and our conformance suite.
build_selftests() {
	local branch=$1 flavor=$2 rd=$3 src bd out rc=0
	src=$(src_dir "$branch")
	bd=$(build_dir "$branch" "$flavor")
	out=$bd/kselftest/kvm
	rm -rf "$bd/kb-selftests"
	mkdir -p "$out"
	build_lock
	log "$branch/$flavor: building KVM selftests"
	make -C "$src/tools/testing/selftests/kvm" OUTPUT="$out" \
		KHDR_INCLUDES="-isystem $bd/usr/include" LDFLAGS=-static \
		-j"$JOBS" -k >"$bd/selftests-build.log" 2>&1 || rc=$?
	[ $rc -eq 0 ] || log "$branch/$flavor: some KVM selftests did not build (make -k, see $bd/selftests-build.log)"
	if [ -f "$TOP/selftests/Makefile" ]; then
		log "$branch/$flavor: building the conformance suite (selftests/)"
		if ! make -C "$TOP/selftests" KSRC="$src" KHDR="$bd/usr/include" \
				OUTPUT="$bd/kb-selftests" >"$bd/kb-selftests-build.log" 2>&1; then
			tail -n 20 "$bd/kb-selftests-build.log" >&2
			log "$branch/$flavor: the conformance suite in selftests/ does not build; its tests are reported as failed"
			rm -rf "$bd/kb-selftests"
			echo "selftests-build the conformance suite in selftests/ does not build ($bd/kb-selftests-build.log)" \
				>>"$rd/failures.list"
		fi
	fi
	build_unlock
}

# has_stack BRANCH: the branch's patch stack is not empty.
has_stack() { [ -n "$(series_patches "$1")" ]; }

# The test list for a branch: scripts/testlist, then our suite's
# selftests/TESTS (as kb/<binary>), minus scripts/configs/<branch>.skip and,
# on a branch without a stack, minus the series' tests and the negative
# controls ("series" and "xfail=..." rows, see scripts/tap.py).
tier_rows() {
	local tier=${KB_TIER:-quick} named
	case $tier in quick | full | long) ;; *) die "unknown tier '$tier' (quick, full or long)" ;; esac
	named=$(grep -vE '^[[:space:]]*(#|$)' "$TOP/scripts/testlist" | awk '{ printf "%s ", $1 }')
	{
		grep -vE '^[[:space:]]*(#|$)' "$TOP/scripts/testlist"
		# selftests/TESTS: "binary timeout [args]", run from $KB; in both
		# tiers, or only in the full one if scripts/testlist has rows of
		# that name (they stand for it in the quick tier).
		if [ -f "$TOP/selftests/TESTS" ]; then
			grep -vE '^[[:space:]]*(#|$)' "$TOP/selftests/TESTS" |
				awk -v named=" $named" '{
					b = $1; t = $2; $1 = ""; $2 = ""; sub(/^ +/, "")
					print "kb/" b, t, (index(named, " kb/" b " ") ? "full" : "all"), "always", "$KB/" b, $0 }'
		fi
	} | awk -v tier="$tier" '$5 != "-" && ($3 == "all" || $3 == tier || (tier == "long" && $3 == "full")) { $3 = ""; print }'
}

# The test list of a branch and config: tier_rows minus the left-out tests.
branch_testlist() {
	local branch=$1 flavor=$2
	tier_rows |
		while read -r name timeout when rest; do
			skip_reason "$branch" "$flavor" "$name" >/dev/null && continue
			case $when in series | xfail*) has_stack "$branch" || continue ;; esac
			echo "$name $timeout $when $rest"
		done
}

# skip_flavor BRANCH FLAVOR: the flavor whose skip list applies.  A branch
# whose kernel command line (scripts/trees) turns NPT off (5.10.y) boots
# its minimal kernel with shadow paging: that boot is a shadow-paging boot.
skip_flavor() {
	case $2 in
	minimal) case " $(tree_field "$1" cmdline | tr , ' ') " in
		*" kvm_amd.npt=0 "*) echo shadow; return ;;
		esac ;;
	esac
	echo "$2"
}

# skip_reason BRANCH FLAVOR TEST: print why TEST is left out, if it is.
skip_reason() {
	local f
	for f in "$TOP/scripts/configs/$1.skip" "$TOP/scripts/configs/$(skip_flavor "$1" "$2").skip"; do
		[ -f "$f" ] || continue
		awk -v t="$3" -v f="$(basename "$f")" '
			$1 == t { $1 = ""; sub(/^ +/, ""); print $0 " (" f ")"; found = 1; exit }
			END { exit !found }' "$f" && return 0
	done
	return 1
}

# All the left-out tests of a branch and config (of the tests of its tier),
# "name reason" per line.
skipped_tests() {
	local f names
	names=" $(tier_rows | awk '{ printf "%s ", $1 }')"
	{
	for f in "$TOP/scripts/configs/$1.skip" "$TOP/scripts/configs/$(skip_flavor "$1" "$2").skip"; do
		[ -f "$f" ] || continue
		grep -vE '^[[:space:]]*(#|$)' "$f" | awk -v f="$(basename "$f")" '{ n = $1; $1 = ""; sub(/^ +/, ""); print n, $0 " (" f ")" }'
	done | awk -v names="$names" 'index(names, " " $1 " ")'
	has_stack "$1" ||
		tier_rows | awk '$3 == "series" || $3 ~ /^xfail/ { print $1, "no stack on this branch: a test of the series or a negative control" }'
	} | awk '!seen[$1]++'
}

make_initramfs() {
	local branch=$1 flavor=$2 bd root factor=1
	bd=$(build_dir "$branch" "$flavor")
	root=$bd/initramfs
	[ "$flavor" = debug ] && factor=3
	rm -rf "$root"
	mkdir -p "$root"/{bin,proc,sys,dev,tmp,kvm,kb}
	cp /bin/busybox "$root/bin/busybox"
	cp "$TOP/scripts/guest-init" "$root/init"
	chmod +x "$root/init"
	# KB_SEED: the seed of the suite's random tests (KST_SEED in the guest;
	# without it each binary uses its fixed default).
	[ -z "${KB_SEED:-}" ] || echo "$KB_SEED" >"$root/seed"
	(cd "$bd/kselftest/kvm" && find . -type f -perm -u+x ! -name '*.o' ! -name '*.d' | cpio -pdm --quiet "$root/kvm")
	[ -d "$bd/kb-selftests" ] && cp -a "$bd/kb-selftests/." "$root/kb/"
	# KB_TESTS: an extended regex; only the tests whose names match run.
	branch_testlist "$branch" "$flavor" |
		awk -v f=$factor -v only="${KB_TESTS:-}" 'only == "" || $1 ~ only { $2 = $2 * f; print }' >"$root/tests.list"
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$bd/initramfs.cpio.gz"
}

# Kernel log lines that fail a run wherever they appear.
SPLAT_RE='(WARNING:|BUG:|Oops|general protection fault|Kernel panic|KASAN:|UBSAN:|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|unreferenced object 0x|soft lockup|hung_task|rcu: INFO|self-detected stall|DEBUG_LOCKS_WARN_ON|list_add corruption|list_del corruption|kernel BUG)'

cmd_test() {
	local branch=$1 flavor=${2:-minimal} bd rd kimg cmdline extra total rc=0 t0 key
	check_branch "$branch"
	need_tools "$QEMU" cpio gzip python3 busybox
	bd=$(build_dir "$branch" "$flavor")
	# KB_KERNEL: boot another kernel image with this branch's tests, e.g.
	# an older version of the series (results in <result dir>-<image name>).
	kimg=${KB_KERNEL:-$bd/arch/x86/boot/bzImage}
	[ -f "$kimg" ] || die "$branch/$flavor: no kernel at $kimg; run '$TOP/scripts/pipeline build $branch $flavor' first"
	rd=$(result_dir "$branch" "$flavor")${KB_KERNEL:+-$(basename "$KB_KERNEL")}
	rm -rf "$rd.new"
	mkdir -p "$rd.new"
	build_selftests "$branch" "$flavor" "$rd.new"
	make_initramfs "$branch" "$flavor"
	extra=$(tree_field "$branch" cmdline)
	[ "$extra" = - ] && extra=
	# The forced emulation prefix lets tests make KVM emulate an instruction.
	cmdline="console=ttyS0 panic=-1 loglevel=6 kvm.force_emulation_prefix=1 ${extra//,/ } $(flavor_cmdline "$flavor")"
	cmdline=${cmdline% }
	# Everything the boot depends on: reuse the last results if it is
	# unchanged and they passed (never with KB_RETEST=1; check sets it).
	key=$(test_key "$kimg" "$bd/initramfs" "$cmdline" "$rd.new" "$(has_stack "$branch" && echo stack)")
	if [ "${KB_RETEST:-0}" != 1 ] && results_reusable "$rd" "$key"; then
		rm -rf "$rd.new"
		log "$branch/$flavor: kernel, test binaries, test list and QEMU command unchanged since the passing run of $(date -r "$rd/key" '+%F %T'): results reused (KB_RETEST=1 boots anyway)"
		touch "$rd/reused"
		cat "$rd/results.tap"
		return 0
	fi
	rm -rf "$rd"
	mv "$rd.new" "$rd"
	cp "$bd/initramfs/tests.list" "$rd/tests.list"
	echo "${KB_TIER:-quick}" >"$rd/tier"
	skipped_tests "$branch" "$flavor" >"$rd/skipped.list"
	# The VM's hard timeout: every test at its limit, capped so that a hung
	# VM cannot eat CI's budget (KB_VM_TIMEOUT, default 40 minutes).
	total=$(awk -v cap="${KB_VM_TIMEOUT:-2400}" '{ s += $2 } END { s += 240; print (s < cap ? s : cap) }' "$rd/tests.list")
	log "$branch/$flavor: booting under QEMU (TCG, -cpu max, $QEMU_SMP vCPUs, $QEMU_MEM), hard timeout ${total}s"
	t0=$(date +%s)
	# QEMU's own exit status goes to qemu-rc (124: killed at the timeout);
	# tap.py reads it.  The grep only echoes progress.
	{
		timeout --foreground -k 10 "$total" "$QEMU" \
			-accel tcg,thread=single -cpu "$QEMU_CPU" -smp "$QEMU_SMP" -m "$QEMU_MEM" \
			-display none -monitor none -serial stdio -no-reboot \
			-kernel "$kimg" -initrd "$bd/initramfs.cpio.gz" -append "$cmdline" \
			</dev/null 2>"$rd/qemu.stderr" || rc=$?
		echo "$rc" >"$rd/qemu-rc"
	} | tee "$rd/console.log" | { grep --line-buffered -E '^KB-(RESULT|FATAL|BOOT)' >&2 || true; }
	echo "$(($(date +%s) - t0))" >"$rd/boot-seconds"
	[ "$(cat "$rd/qemu-rc")" = 0 ] || log "$branch/$flavor: QEMU exited with status $(cat "$rd/qemu-rc")"
	python3 "$TOP/scripts/tap.py" "$rd" "$branch" "$flavor" "$SPLAT_RE" \
		"$(has_stack "$branch" && echo 1 || echo 0)" || return 1
	echo "$key" >"$rd/key"
}

# test_key KERNEL INITRAMFS_ROOT CMDLINE RESULT_DIR: a hash of everything a
# test boot depends on: the kernel image, every file of the initramfs (by
# content: the test binaries, the test list, /init), the kernel command
# line, the QEMU command and version, the splat pattern, the TAP parser,
# whether the branch has a stack, and failures.list.
test_key() {
	{
		sha256sum "$1" | cut -d' ' -f1
		(cd "$2" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
		echo "$3|$QEMU|$QEMU_CPU|$QEMU_SMP|$QEMU_MEM|$SPLAT_RE|${KB_VM_TIMEOUT:-}|$5"
		"$QEMU" --version | head -n 1
		sha256sum "$TOP/scripts/tap.py" | cut -d' ' -f1
		cat "$4/failures.list" 2>/dev/null || true
	} | sha256sum | cut -d' ' -f1
}

# results_reusable RESULT_DIR KEY: the results there came from a boot with
# the same key, and nothing failed or hung.
results_reusable() {
	[ -f "$1/key" ] && [ "$(cat "$1/key")" = "$2" ] && [ -f "$1/summary.json" ] &&
		python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); sys.exit(0 if s["failed"] == 0 and not s["hung"] and not s["fatal"] else 1)' "$1/summary.json"
}
