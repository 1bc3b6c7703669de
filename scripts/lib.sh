# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# Shared helpers for the pipeline scripts.  Sourced, never executed.

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TREES_FILE=${KB_TREES:-$TOP/trees}
CACHE=${KB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kvm-atomic-memslots}
RESULTS=${KB_RESULTS:-$CACHE/results}
# shellcheck disable=SC2034 # used by the scripts that source this one
JOBS=${KB_JOBS:-$(($(nproc) + 1))}

die() { echo "error: $*" >&2; exit 1; }
log() { echo "==> $*" >&2; }

# Kernel builds must not run two at a time on a 2-core machine, and the
# steps that rewrite the shared cache (fetch, apply, clean, worktree, mbox)
# must not run under a build: all of them take this lock.  It nests: a
# process that holds it (or whose parent pipeline does: KB_LOCK_HELD) does
# not wait for itself.
LOCK_DEPTH=0
build_lock() {
	if [ "$LOCK_DEPTH" -gt 0 ] || [ "${KB_LOCK_HELD:-}" = "$CACHE" ]; then
		LOCK_DEPTH=$((LOCK_DEPTH + 1))
		return 0
	fi
	mkdir -p "$CACHE"
	exec 9>"$CACHE/build.lock"
	if ! flock -n 9; then
		log "waiting for another kernel build or cache update to finish ($CACHE/build.lock)"
		flock 9
	fi
	LOCK_DEPTH=1
	export KB_LOCK_HELD=$CACHE
}
build_unlock() {
	[ "$LOCK_DEPTH" -gt 0 ] || return 0
	LOCK_DEPTH=$((LOCK_DEPTH - 1))
	[ "$LOCK_DEPTH" -eq 0 ] || return 0
	if [ "${KB_LOCK_HELD:-}" = "$CACHE" ] && { : >&9; } 2>/dev/null; then
		exec 9>&-
		unset KB_LOCK_HELD
	fi
}

# tree_field BRANCH FIELD: print one column of the trees table.
# Fields: branch package version suite stack cmdline
tree_field() {
	awk -v b="$1" -v f="$2" '
		/^[[:space:]]*(#|$)/ { next }
		$1 == b {
			n = split("branch package version suite stack cmdline", h, " ")
			for (i = 1; i <= n; i++) if (h[i] == f) { print $i; found = 1 }
			exit
		}
		END { if (!found) exit 1 }' "$TREES_FILE"
}

all_branches() {
	awk '/^[[:space:]]*(#|$)/ { next } { print $1 }' "$TREES_FILE"
}

check_branch() {
	tree_field "$1" branch >/dev/null ||
		die "unknown branch '$1'; supported: $(all_branches | tr '\n' ' ')(see $TREES_FILE)"
}

# The stack of a branch: directory and series file.
stack_dir() { echo "$TOP/$(tree_field "$1" stack)"; }
series_file() {
	if [ "$1" = mainline ]; then echo "$TOP/series"; else echo "$(stack_dir "$1")/series"; fi
}
# Patch file names in series order (comments and blank lines skipped).
series_patches() {
	local s
	s=$(series_file "$1")
	[ -f "$s" ] || return 0
	sed -e 's/#.*//' -e 's/[[:space:]].*//' "$s" | grep -v '^$' || true
}

# The git tag of a branch's pristine base ("~" is not allowed in tags).
base_tag() { echo "base/$1/$(tree_field "$1" version | tr '~:' '_.')"; }
src_dir() { echo "$CACHE/src/$1"; }
# A flavor is a kernel config (minimal, debug) or a boot variant of one:
# "shadow" is the minimal kernel booted with shadow paging (no NPT/EPT), the
# MMU that 5.10.y always runs under our test VM.
flavor_config() { case $1 in shadow) echo minimal ;; *) echo "$1" ;; esac; }
flavor_cmdline() { case $1 in shadow) echo "kvm_amd.npt=0 kvm_intel.ept=0" ;; esac; }
build_dir() { echo "$CACHE/build/$1-$(flavor_config "$2")"; }
result_dir() { echo "$RESULTS/$1-$2"; }

need_tools() {
	local missing=() t
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || missing+=("$t")
	done
	[ ${#missing[@]} -eq 0 ] ||
		die "missing tool(s): ${missing[*]}; run '$TOP/scripts/pipeline deps' (needs root and apt-get)"
}

# Free space check before a step that writes a lot.
need_space() {
	local dir=$1 mb=$2 avail
	mkdir -p "$dir"
	avail=$(df -Pm "$dir" | awk 'NR == 2 { print $4 }')
	[ "${avail:-0}" -ge "$mb" ] ||
		die "only ${avail} MiB free under $dir, this step needs ${mb} MiB; free some space (e.g. '$TOP/scripts/pipeline clean') and run again"
}
