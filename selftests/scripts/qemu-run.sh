#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot a built test kernel in QEMU (TCG, nested SVM) with the suite's static
# binaries in an initramfs and print the TAP they write to the serial console.
# For development; the pipeline has its own runner ('scripts/pipeline test').
#
#   qemu-run.sh -k <bzImage> -o <OUTPUT of make> [-a "<kernel args>"]
#               [-t <seconds for the whole boot>] [-l <log>] [-e VAR=value]...
#               [test[:args]...]
#
# Tests default to every line of ../TESTS. Each binary runs under busybox
# 'timeout' with the timeout from TESTS. Exit status: 0 if every binary
# exited 0 or 4 (skip), 1 if any failed, 2 on a hang (whole-boot timeout).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
kernel= out= kargs= total=900 log= envs=()
while getopts k:o:a:t:l:e: o; do
	case $o in
	k) kernel=$OPTARG ;; o) out=$OPTARG ;; a) kargs=$OPTARG ;;
	t) total=$OPTARG ;; l) log=$OPTARG ;; e) envs+=("$OPTARG") ;; *) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ -f "$kernel" ] || { echo "no kernel image: '$kernel'" >&2; exit 2; }
[ -d "$out" ] || { echo "no OUTPUT dir: '$out'" >&2; exit 2; }
bb=$(command -v busybox)
file -L "$bb" | grep -q 'statically linked' || { echo "need busybox-static" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root"/{bin,proc,sys,dev,tmp,t}
cp "$bb" "$root/bin/busybox"
for a in sh mount timeout poweroff cat echo sleep; do ln -s busybox "$root/bin/$a"; done

if [ $# -eq 0 ]; then
	mapfile -t lines < <(grep -v '^#' "$here/TESTS" | grep -v '^\s*$')
else
	lines=()
	for t in "$@"; do
		name=${t%%:*}; args=; [ "$t" != "$name" ] && args=${t#*:}
		to=$(awk -v n="$name" '$1 == n { print $2 }' "$here/TESTS")
		lines+=("$name ${to:-300} $args")
	done
fi
{
	echo '#!/bin/sh'
	echo 'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev'
	echo 'mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null'
	echo 'echo "KST: kernel $(cat /proc/version)"'
	echo 'echo "KST: cmdline $(cat /proc/cmdline)"'
	echo 'cd /t'
	for e in "${envs[@]}"; do echo "export $e"; done
	for l in "${lines[@]}"; do
		set -- $l
		name=$1 to=$2; shift 2
		cp "$out/$name" "$root/t/$name"
		echo "echo 'KST: run $name $*'"
		echo "timeout $to ./$name $* ; echo \"KST: exit $name \$?\""
	done
	echo 'echo KST: done'
	echo 'poweroff -f'
} > "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) > "$tmp/initrd.cpio"

log=${log:-$tmp/console.log}
rc=0
timeout --foreground "$total" qemu-system-x86_64 -accel tcg,thread=single -cpu max \
	-smp 2 -m 2G -nographic -no-reboot -kernel "$kernel" -initrd "$tmp/initrd.cpio" \
	-append "console=ttyS0 panic=-1 loglevel=6 $kargs" </dev/null >"$log" 2>&1 || rc=$?
tr -d '\r' < "$log" | sed -n '/KST: kernel/,$p'
splat='(WARNING:|BUG:|Oops|general protection fault|Kernel panic|KASAN:|UBSAN:|possible circular locking|suspicious RCU usage|soft lockup|hung_task|rcu: INFO|self-detected stall|kernel BUG)'
if grep -Eq "$splat" "$log"; then
	echo "KST: kernel splat on the console:" >&2
	grep -E -A20 "$splat" "$log" | head -60 >&2
	splatted=1
fi
if ! grep -q 'KST: done' "$log"; then
	echo "KST: HANG or crash: no 'done' marker (qemu rc $rc); console tail:" >&2
	tail -30 "$log" >&2
	exit 2
fi
if tr -d '\r' < "$log" | grep -E '^KST: exit ' | awk '$4 != 0 && $4 != 4 { bad = 1 } END { exit !bad }'; then
	exit 1
fi
[ -n "${splatted:-}" ] && exit 1
exit 0
