# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# deps and fetch: install what the pipeline needs, and turn a pinned
# linux-source-X.Y package into a git tree whose first commit is the base.
# Sourced by scripts/pipeline.

DEPS="build-essential flex bison bc libelf-dev libssl-dev cpio ccache quilt
busybox-static qemu-system-x86 rsync python3 git xz-utils dwarves kmod perl
ca-certificates python3-jsonschema python3-sphinx"
APT_SOURCES=/etc/apt/sources.list.d/kvm-atomic-memslots.sources
APT_PIN=/etc/apt/preferences.d/kvm-atomic-memslots

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	command -v apt-get >/dev/null || die "apt-get not found; install by hand: ${missing[*]}"
	log "installing: ${missing[*]}"
	as_root apt-get update -qq || die "apt-get update failed; check the apt sources and the network"
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
}

cmd_deps() {
	# shellcheck disable=SC2086
	apt_install $DEPS
}

# The archive URI is read from the machine's own apt configuration, never
# written into this repository.
archive_uri() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		{ [ -f "$f" ] && [ "$f" != "$APT_SOURCES" ]; } || continue
		awk '
			/^URIs:/ { u = $2 }
			/^Suites:/ { for (i = 2; i <= NF; i++) if ($i !~ /-security$/) s = 1 }
			/^$/ { if (u != "" && s) { print u; exit } u = ""; s = 0 }
			END { if (u != "" && s) print u }' "$f" | head -n 1
	done
	if [ -f /etc/apt/sources.list ]; then
		awk '$1 == "deb" && $3 !~ /-security/ { print $2; exit }' /etc/apt/sources.list
	fi
	return 0
}

suite_configured() {
	grep -rqhsE "^(Suites:.*[[:space:]]$1([[:space:]]|$)|deb .*[[:space:]]$1[[:space:]])" \
		/etc/apt/sources.list /etc/apt/sources.list.d/ >/dev/null
}

# Add the suites the trees table needs and the machine lacks, pinned low so
# nothing else on the machine is upgraded from them.
ensure_suite() {
	local suite=$1 uri
	suite_configured "$suite" && return 0
	uri=$(archive_uri | awk 'NR == 1')
	[ -n "$uri" ] || die "cannot find the Debian archive URI in /etc/apt; configure apt first"
	log "adding apt suite '$suite' (pinned at priority 50) in $APT_SOURCES"
	as_root sh -c "cat >> '$APT_SOURCES'" <<EOF
Types: deb
URIs: $uri
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

EOF
	as_root sh -c "cat >> '$APT_PIN'" <<EOF
Package: *
Pin: release a=$suite
Pin-Priority: 50

Package: *
Pin: release n=$suite
Pin-Priority: 50

EOF
	as_root apt-get update -qq || die "apt-get update failed after adding suite '$suite'"
}

# The versions of a package the configured archive has.
archive_versions() {
	apt-cache madison "$1" 2>/dev/null | awk -F'|' '{ gsub(/ /, "", $2); print $2 }' | sort -u
}

deb_path() { echo "$CACHE/debs/$(tree_field "$1" package)_$(tree_field "$1" version | tr ':' '%').deb"; }

# A cached .deb is reused only if it matches the checksum recorded when it
# was downloaded (apt-get verified it against the archive then).
deb_ok() {
	local deb=$1
	[ -f "$deb" ] && [ -f "$deb.sha256" ] && (cd "$(dirname "$deb")" && sha256sum -c --status "$deb.sha256")
}

fetch_deb() {
	local branch=$1 pkg ver suite deb tmp avail
	pkg=$(tree_field "$branch" package)
	ver=$(tree_field "$branch" version)
	suite=$(tree_field "$branch" suite)
	deb=$(deb_path "$branch")
	if deb_ok "$deb"; then
		log "$branch: reusing $(basename "$deb")"
		return 0
	fi
	rm -f "$deb" "$deb.sha256"
	need_space "$CACHE" 1024
	ensure_suite "$suite"
	if ! archive_versions "$pkg" | grep -qxF "$ver"; then
		# The package lists may be old: refresh them, and say so if that
		# fails rather than calling the version gone.
		as_root apt-get update -qq >"$CACHE/apt-update.log" 2>&1 ||
			die "$branch: apt-get update failed, so whether $pkg=$ver is in the archive is unknown: $(grep -m 1 -E '^(E|W|Err):' "$CACHE/apt-update.log" || tail -n 1 "$CACHE/apt-update.log")"
	fi
	if ! archive_versions "$pkg" | grep -qxF "$ver"; then
		avail=$(archive_versions "$pkg" | tr '\n' ' ')
		die "$branch: pinned $pkg=$ver is not in the archive any more; available: ${avail:-none}; update the version in $TREES_FILE"
	fi
	tmp=$(mktemp -d "$CACHE/debs/.dl.XXXXXX")
	log "$branch: downloading $pkg=$ver"
	if ! (cd "$tmp" && apt-get download -q "$pkg=$ver" >"$tmp/log" 2>&1); then
		tail -n 5 "$tmp/log" >&2
		rm -rf "$tmp"
		die "$branch: download of $pkg=$ver failed (see above); run again when the archive is reachable"
	fi
	mv "$tmp"/*.deb "$deb"
	rm -rf "$tmp"
	dpkg-deb --info "$deb" >/dev/null 2>&1 || { rm -f "$deb"; die "$branch: $deb is not a valid .deb (truncated download?); run again"; }
	(cd "$(dirname "$deb")" && sha256sum "$(basename "$deb")" >"$deb.sha256")
}

# Debian's packaging adds '/*' and '!/debian/' to the top-level .gitignore,
# which hides every file of the tree from git.
strip_debian_ignore() {
	[ -f .gitignore ] || return 0
	sed -i -e '\#^/\*$#d' -e '\#^!/debian/$#d' .gitignore
}

# The tree is valid when its stamp names the pinned version and the base
# tag exists.
tree_ok() {
	local branch=$1 src
	src=$(src_dir "$branch")
	[ -f "$src/.git/kb-base" ] &&
		[ "$(cat "$src/.git/kb-base")" = "$(tree_field "$branch" version)" ] &&
		git -C "$src" rev-parse -q --verify "refs/tags/$(base_tag "$branch")" >/dev/null
}

cmd_fetch() {
	local branch=$1 src tmp pkg ver inner
	check_branch "$branch"
	need_tools apt-get dpkg-deb git tar xz sha256sum
	src=$(src_dir "$branch")
	if tree_ok "$branch"; then
		log "$branch: base tree $(base_tag "$branch") ready in $src"
		return 0
	fi
	mkdir -p "$CACHE/debs" "$CACHE/src"
	fetch_deb "$branch"
	pkg=$(tree_field "$branch" package)
	ver=$(tree_field "$branch" version)
	need_space "$CACHE" 3072
	tmp=$(mktemp -d "$CACHE/src/.extract.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$tmp'" EXIT
	inner=./usr/src/$pkg.tar.xz
	log "$branch: extracting $pkg $ver"
	if ! dpkg-deb --fsys-tarfile "$(deb_path "$branch")" | tar -xO "$inner" | tar -xJ -C "$tmp"; then
		rm -f "$(deb_path "$branch")" "$(deb_path "$branch").sha256"
		die "$branch: extracting $inner failed (truncated .deb or full disk); the .deb was dropped, run again"
	fi
	set -- "$tmp"/linux-source-*
	[ -d "$1/virt/kvm" ] || die "$branch: $pkg does not contain a kernel tree"
	log "$branch: making the base commit"
	(
		cd "$1" &&
		git init -q -b kb-base &&
		git config user.name "$(project_name)" &&
		git config user.email "$(project_email)" &&
		git config gc.auto 0 &&
		strip_debian_ignore &&
		git add -A &&
		git commit -q -m "Base: $pkg $ver (Debian)" \
			-m "Pristine contents of /usr/src/$pkg.tar.xz, except that Debian's" \
			-m "top-level '/*' ignore rule is dropped from .gitignore so that new" \
			-m "files in the tree are seen by git." &&
		git tag "$(base_tag "$branch")" &&
		echo "$ver" >.git/kb-base
	) || die "$branch: could not create the base git tree (full disk?); run again"
	rm -rf "$src"
	mv "$1" "$src"
	rm -rf "$tmp"
	trap - EXIT
	log "$branch: base tree $(base_tag "$branch") ready in $src"
}
