# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0
# mbox: a stack as the one thread 'git send-email' would send, made with
# b4's own workflow (b4 prep, b4 prep --auto-to-cc, b4 send -o) in a scratch
# worktree of the branch's fetched tree, then taken apart again with
# 'b4 am' and 'git am' to prove it gives the tree the pipeline tested.
# Helpers in scripts/mail.py, rules in scripts/check-mails.py.  Sourced by
# scripts/pipeline.
#
# Per stack (patches/ for mainline, backports/<branch>/ otherwise):
#   cover-letter.txt     the cover letter (first line: its subject)
#   changelog            change-id and version history (vN = newest block)
#   MAINTAINERS-snippet  optional; else the top-level one (paths differ on
#                        branches whose selftests live in x86_64/)

MAIL_SLUG=kvm-atomic-memslots

# The sender, "Name <email>": KB_SENDER, else git config user.name and
# user.email (the repository's, then the global ones).  Their
# Signed-off-by goes on every patch at send time; the patches themselves
# carry the project identity.
mail_sender() {
	local s=${KB_SENDER:-} name email
	if [ -z "$s" ]; then
		name=$(git -C "$TOP" config user.name 2>/dev/null || true)
		email=$(git -C "$TOP" config user.email 2>/dev/null || true)
		if [ -z "$name" ] || [ -z "$email" ]; then
			die "no sender identity: set KB_SENDER=\"Name <email>\", or git config user.name and user.email (your Signed-off-by goes on every patch you send)"
		fi
		s="$name <$email>"
	fi
	[[ $s =~ ^[^\<\>@]*[^\<\>@\ ]\ \<[^\<\>@\ ]+@[^\<\>@\ ]+\>$ ]] ||
		die "sender identity '$s' is not of the form \"Name <email>\" (KB_SENDER or git config user.name/user.email)"
	echo "$s"
}

mail_snippet() {
	local s
	s=$(stack_dir "$1")/MAINTAINERS-snippet
	[ -f "$s" ] || s=$TOP/MAINTAINERS-snippet
	echo "$s"
}

mail_dir() { echo "$CACHE/mbox-check/$1"; }

# The scratch worktree, its branches and b4's prep branch go away.
mail_cleanup() {
	local branch=$1 src dir
	src=$(src_dir "$branch")
	dir=$(mail_dir "$branch")
	git -C "$src" worktree remove --force "$dir/wt" >/dev/null 2>&1 || true
	rm -rf "$dir"
	git -C "$src" worktree prune
	git -C "$src" branch -q -D "kb-mail/$branch" >/dev/null 2>&1 || true
	git -C "$src" branch -q -D "b4/$MAIL_SLUG-${branch//[^a-zA-Z0-9_]/-}" >/dev/null 2>&1 || true
}

# mail_fail BRANCH LOG MESSAGE: the end of LOG, then the error.  The
# scratch worktree stays for a look; the next mbox run removes it.
mail_fail() {
	[ -f "$2" ] && tail -n 20 "$2" >&2
	die "$1: $3 (scratch worktree left in $(mail_dir "$1")/wt)"
}

# mail_env NAME EMAIL DIR: git and b4 settings of the mbox step, as
# environment (nothing is written to any git config): the sender's
# identity, no web endpoint and no signing key needed (-o only writes
# files), the cover letter template, and get_maintainer.pl reading the
# scratch MAINTAINERS.
mail_env() {
	local gm="scripts/get_maintainer.pl --mpath '$3/MAINTAINERS' --nogit --nogit-fallback --nogit-chief-penguins --norolestats"
	MAIL_ENV=(GIT_CONFIG_COUNT=8
		GIT_CONFIG_KEY_0=user.name "GIT_CONFIG_VALUE_0=$1"
		GIT_CONFIG_KEY_1=user.email "GIT_CONFIG_VALUE_1=$2"
		GIT_CONFIG_KEY_2=sendemail.from "GIT_CONFIG_VALUE_2=$1 <$2>"
		GIT_CONFIG_KEY_3=sendemail.smtpserver GIT_CONFIG_VALUE_3=/bin/false
		GIT_CONFIG_KEY_4=b4.prep-cover-strategy GIT_CONFIG_VALUE_4=commit
		GIT_CONFIG_KEY_5=b4.prep-cover-template "GIT_CONFIG_VALUE_5=$3/cover-template"
		GIT_CONFIG_KEY_6=b4.send-auto-to-cmd "GIT_CONFIG_VALUE_6=$gm --nol"
		GIT_CONFIG_KEY_7=b4.send-auto-cc-cmd "GIT_CONFIG_VALUE_7=$gm --nom")
}

# mail_maintainers BRANCH WT SNIPPET DIR: check the snippet against the
# tree's own tools and leave DIR/MAINTAINERS, the tree's MAINTAINERS with
# the snippet where the alphabetical order puts it (WT is left clean).
mail_maintainers() {
	local branch=$1 wt=$2 snippet=$3 dir=$4 out f a bad=0
	local -a files addrs
	# get_maintainer.pl's self-test on a MAINTAINERS of the entry alone:
	# section format and F: patterns that match no file of the tree.
	if grep -q 'self-test' "$wt/scripts/get_maintainer.pl"; then
		cp "$snippet" "$wt/MAINTAINERS"
		out=$(cd "$wt" && perl scripts/get_maintainer.pl --self-test=sections,patterns 2>&1) || bad=1
		git -C "$wt" checkout -q -- MAINTAINERS
		[ -z "$out" ] || { echo "${out//.\/MAINTAINERS/$snippet}" >&2; bad=1; }
	fi
	python3 "$TOP/scripts/mail.py" snippet-insert "$wt/MAINTAINERS" "$snippet" >/dev/null || bad=1
	# checkpatch's MAINTAINERS rules on the change.
	git -C "$wt" diff -- MAINTAINERS >"$dir/maintainers.diff"
	if ! (cd "$wt" && perl scripts/checkpatch.pl --strict --no-signoff -q "$dir/maintainers.diff") >&2; then
		bad=1
	fi
	# Every file the stack adds: get_maintainer.pl names the entry's people.
	mapfile -t addrs < <(python3 "$TOP/scripts/mail.py" snippet-addrs "$snippet")
	mapfile -t files < <(git -C "$wt" diff --name-only --diff-filter=A "$(base_tag "$branch")" HEAD)
	for f in "${files[@]}"; do
		out=$(cd "$wt" && perl scripts/get_maintainer.pl --nogit --nogit-fallback --norolestats -f "$f" 2>&1) || true
		for a in "${addrs[@]}"; do
			grep -qiF "$a" <<<"$out" || { echo "$snippet: get_maintainer.pl -f $f does not name $a" >&2; bad=1; }
		done
	done
	cp "$wt/MAINTAINERS" "$dir/MAINTAINERS"
	git -C "$wt" checkout -q -- MAINTAINERS
	[ $bad -eq 0 ] || die "$branch: $snippet does not pass the tree's own MAINTAINERS checks (above)"
	log "$branch: ${snippet#"$TOP"/}: format, patterns and the ${#files[@]} new file(s) checked with the tree's get_maintainer.pl and checkpatch.pl"
}

# mail_roundtrip BRANCH MBOX WT DIR: the thread through 'b4 am' and through
# 'git am' (without the cover letter, as b4 drops it), each onto a fresh
# checkout of the base tag; both trees must be the tree the thread was
# made from and the tree of kb/BRANCH (what 'apply' made and 'test' ran).
mail_roundtrip() {
	local branch=$1 mbox=$2 wt=$3 dir=$4 src tag sent tested t1 t2 m
	local -a mbx
	src=$(src_dir "$branch")
	tag=$(base_tag "$branch")
	sent=$(git -C "$wt" rev-parse "HEAD^{tree}")
	rm -rf "$dir/am"
	mkdir -p "$dir/am"
	(cd "$wt" && b4 --offline-mode am -m "$mbox" -o "$dir/am") >"$dir/b4-am.log" 2>&1 ||
		mail_fail "$branch" "$dir/b4-am.log" "b4 am of $mbox failed"
	mapfile -t mbx < <(ls "$dir"/am/*.mbx 2>/dev/null)
	[ ${#mbx[@]} -eq 1 ] || mail_fail "$branch" "$dir/b4-am.log" "b4 am wrote ${#mbx[@]} .mbx files, want 1"
	python3 "$TOP/scripts/mail.py" drop-cover "$mbox" "$dir/patches.mbox" || exit 1
	for m in "${mbx[0]}" "$dir/patches.mbox"; do
		git -C "$wt" checkout -q -f --detach "$tag"
		git -C "$wt" clean -q -fdx
		if ! env "${MAIL_ENV[@]}" git -C "$wt" am -q --whitespace=nowarn "$m" >"$dir/git-am.log" 2>&1; then
			git -C "$wt" am --abort >/dev/null 2>&1 || true
			mail_fail "$branch" "$dir/git-am.log" "git am of $m onto $tag failed"
		fi
		if [ "$m" = "${mbx[0]}" ]; then t1=$(git -C "$wt" rev-parse "HEAD^{tree}"); else t2=$(git -C "$wt" rev-parse "HEAD^{tree}"); fi
	done
	[ "$t1" = "$sent" ] || mail_fail "$branch" "" "b4 am of the thread gives tree $t1, the stack is $sent"
	[ "$t2" = "$sent" ] || mail_fail "$branch" "" "git am of the thread without its cover letter gives tree $t2, the stack is $sent"
	tested=$(git -C "$src" rev-parse -q --verify "kb/$branch^{tree}" || true)
	[ -n "$tested" ] || die "$branch: no kb/$branch in $src to compare with; run '$TOP/scripts/pipeline apply $branch'"
	[ "$tested" = "$sent" ] ||
		die "$branch: kb/$branch (tree $tested) is not the current stack (tree $sent); run '$TOP/scripts/pipeline apply $branch' again"
	log "$branch: round trip: b4 am, and git am without the cover letter, give tree $sent = kb/$branch"
}

# mail_stable_fixes BRANCH WT DIR OUT: each patch of the stack with a
# Fixes: tag (a genuine fix, see scripts/check-mails.py) also goes to
# stable on its own, as stable-kernel-rules.rst asks: OUT's name with
# -fix-NN.mbox for .mbox, one message "[PATCH BRANCH] ..." to
# stable@vger.kernel.org, Cc'd to the people of its trailers and to what
# the tree's get_maintainer.pl names for it, made by git format-patch from
# the fix applied alone onto the base tag with the sender's Signed-off-by.
# A fix that needs the stack's feature patches to apply is an error: it
# must come first.  Each mail is checked and 'git am' of it onto the base
# must give the tree it was made from.
mail_stable_fixes() {
	local branch=$1 wt=$2 dir=$3 out=$4 tag p n=0 f tree
	local -a cc
	tag=$(base_tag "$branch")
	rm -f "${out%.mbox}"-fix-*.mbox
	while read -r p; do
		grep -qE '^Fixes: [0-9a-f]{12,40} \(".+"\)$' "$(stack_dir "$branch")/$p" || continue
		n=$((n + 1))
		f=$(printf '%s-fix-%02d.mbox' "${out%.mbox}" "$n")
		git -C "$wt" checkout -q -f --detach "$tag"
		git -C "$wt" clean -q -fdx
		if ! env "${MAIL_ENV[@]}" git -C "$wt" am -q -s --whitespace=nowarn "$(stack_dir "$branch")/$p" >"$dir/fix-am.log" 2>&1; then
			git -C "$wt" am --abort >/dev/null 2>&1 || true
			mail_fail "$branch" "$dir/fix-am.log" "the stable fix $p does not apply alone onto $tag (put fixes first, free of the feature patches)"
		fi
		tree=$(git -C "$wt" rev-parse "HEAD^{tree}")
		mapfile -t cc < <({
			git -C "$wt" log -1 --format='%an <%ae>'
			git -C "$wt" log -1 --format=%B | sed -nE 's/^(Signed-off-by|Acked-by|Reviewed-by|Tested-by|Reported-by|Cc): *(.*<.*@.*>).*$/\2/p'
			(cd "$wt" && git format-patch -1 --stdout | perl scripts/get_maintainer.pl --nogit --nogit-fallback --nogit-chief-penguins --nofixes --norolestats)
		} | grep -viE 'stable@(vger\.)?kernel\.org' | grep -vF "<$(env "${MAIL_ENV[@]}" git -C "$wt" config user.email)>" | awk '!seen[tolower($0)]++')
		(cd "$wt" && env "${MAIL_ENV[@]}" git format-patch -1 --stdout --thread --subject-prefix="PATCH $branch" \
			--from --to stable@vger.kernel.org "${cc[@]/#/--cc=}") >"$f.tmp"
		python3 "$TOP/scripts/mail.py" join-one "$f.tmp" "$f" || exit 1
		rm -f "$f.tmp"
		python3 "$TOP/scripts/check-mails.py" --thread-only --fix-mail "$branch=$f" >"$dir/check-fix.log" 2>&1 ||
			mail_fail "$branch" "$dir/check-fix.log" "the stable fix mail $f breaks the rules of scripts/check-mails.py"
		git -C "$wt" checkout -q -f --detach "$tag"
		if ! env "${MAIL_ENV[@]}" git -C "$wt" am -q --whitespace=nowarn "$f" >"$dir/fix-am.log" 2>&1; then
			git -C "$wt" am --abort >/dev/null 2>&1 || true
			mail_fail "$branch" "$dir/fix-am.log" "git am of $f onto $tag failed"
		fi
		[ "$(git -C "$wt" rev-parse "HEAD^{tree}")" = "$tree" ] ||
			mail_fail "$branch" "" "git am of $f does not give the tree it was made from"
		log "$branch: wrote $f: $(grep -m1 '^Subject: ' "$f" | cut -c10-), to stable@vger.kernel.org, on its own (also patch $p of the thread)"
	done < <(series_patches "$branch")
}

# mbox BRANCH [OUT]: see the README.  OUT defaults to
# $RESULTS/mbox/BRANCH.mbox.
cmd_mbox() {
	local branch=$1 out=${2:-} sender name email stack snippet src tag dir wt rev cid info prefix=()
	local -a patches
	check_branch "$branch"
	sender=$(mail_sender) || exit 1
	name=${sender% <*}
	email=${sender##*<}
	email=${email%>}
	apt_install b4
	need_tools git b4 perl python3
	stack=$(stack_dir "$branch")
	mapfile -t patches < <(series_patches "$branch")
	[ ${#patches[@]} -gt 0 ] || die "$branch: the stack is empty, nothing to send"
	[ -f "$stack/cover-letter.txt" ] || die "$branch: no $stack/cover-letter.txt (the cover letter: subject line, then the text)"
	[ -f "$stack/changelog" ] ||
		die "$branch: no $stack/changelog; start it with 'change-id: $(date +%Y%m%d)-$MAIL_SLUG-${branch//[^a-zA-Z0-9_]/-}-<12 hex digits>', a blank line and 'Changes in v1:' (see patches/changelog)"
	info=$(python3 "$TOP/scripts/mail.py" changelog "$stack/changelog") || exit 1
	read -r rev cid <<<"$info"
	snippet=$(mail_snippet "$branch")
	python3 "$TOP/scripts/mail.py" snippet-check "$snippet" || exit 1
	tree_ok "$branch" ||
		die "$branch: no base tree; run '$TOP/scripts/pipeline fetch $branch' first (the thread is made in a scratch worktree of it, with its own get_maintainer.pl)"
	src=$(src_dir "$branch")
	tag=$(base_tag "$branch")
	dir=$(mail_dir "$branch")
	wt=$dir/wt
	[ -n "$out" ] || out=$RESULTS/mbox/$branch.mbox
	[ "$branch" = mainline ] || prefix=(--prefix "$branch")
	mail_cleanup "$branch"
	mkdir -p "$dir" "$(dirname "$out")"
	mail_env "$name" "$email" "$dir"
	python3 "$TOP/scripts/mail.py" template --branch "$branch" --tag "$tag" \
		--package "$(tree_field "$branch" package)" --version "$(tree_field "$branch" version)" >"$dir/cover-template"
	log "$branch: v$rev, change-id $cid; scratch worktree $wt at $tag"
	git -C "$src" worktree add -q -b "kb-mail/$branch" "$wt" "$tag"
	# b4 prep: the prep branch and its cover letter commit, which then gets
	# the stack's cover letter, changelog, change-id, version and prefix.
	(cd "$wt" && env "${MAIL_ENV[@]}" b4 prep -n "$MAIL_SLUG-$branch" -f "$tag") >"$dir/b4-prep.log" 2>&1 ||
		mail_fail "$branch" "$dir/b4-prep.log" "b4 prep -n failed"
	git -C "$wt" log -1 --format=%B >"$dir/cover.orig"
	python3 "$TOP/scripts/mail.py" cover-commit --cover "$stack/cover-letter.txt" --changelog "$stack/changelog" \
		--orig "$dir/cover.orig" "${prefix[@]}" >"$dir/cover.msg" || exit 1
	env "${MAIL_ENV[@]}" git -C "$wt" commit -q --amend --allow-empty -F "$dir/cover.msg"
	(cd "$wt" && env "${MAIL_ENV[@]}" b4 prep --show-info) >"$dir/b4-info.log" 2>&1 || true
	if ! grep -qx "revision: $rev" "$dir/b4-info.log" || ! grep -qx "change-id: $cid" "$dir/b4-info.log"; then
		mail_fail "$branch" "$dir/b4-info.log" "b4 does not read back revision $rev and change-id $cid"
	fi
	# The stack, with the sender's Signed-off-by (git am -s: the sender
	# commits; the authors stay those of the patches).
	if ! env "${MAIL_ENV[@]}" git -C "$wt" am -q -s --whitespace=nowarn "${patches[@]/#/$stack/}" >"$dir/git-am.log" 2>&1; then
		git -C "$wt" am --abort >/dev/null 2>&1 || true
		mail_fail "$branch" "$dir/git-am.log" "the stack does not apply to $tag"
	fi
	mail_maintainers "$branch" "$wt" "$snippet" "$dir"
	(cd "$wt" && env "${MAIL_ENV[@]}" b4 prep --auto-to-cc) >"$dir/b4-auto-to-cc.log" 2>&1 ||
		mail_fail "$branch" "$dir/b4-auto-to-cc.log" "b4 prep --auto-to-cc failed"
	(cd "$wt" && env "${MAIL_ENV[@]}" b4 send --no-sign -o "$dir/out") >"$dir/b4-send.log" 2>&1 ||
		mail_fail "$branch" "$dir/b4-send.log" "b4 send -o failed"
	python3 "$TOP/scripts/mail.py" join "$dir/out" "$out.tmp" || exit 1
	mv "$out.tmp" "$out"
	rm -f "$out.cover"
	python3 "$TOP/scripts/check-mails.py" --thread-only --mbox "$branch=$out" >"$dir/check-mails.log" 2>&1 ||
		mail_fail "$branch" "$dir/check-mails.log" "the thread breaks the rules of scripts/check-mails.py"
	mail_roundtrip "$branch" "$out" "$wt" "$dir"
	mail_stable_fixes "$branch" "$wt" "$dir" "$out"
	mail_cleanup "$branch"
	log "$branch: wrote $out: $(grep -m1 '^Subject: ' "$out" | cut -c10-) + ${#patches[@]} patches, from and signed off by $sender"
	log "$branch: to: $(grep -m1 '^To: ' "$out" | cut -c5-)"
	log "$branch: cc: $(grep -m1 '^Cc: ' "$out" | cut -c5-)"
}

# check: the thread of one branch (mbox, with its own round trip, as
# "Pipeline Check"), and the sender's Signed-off-by on every patch.  The
# mboxes go to $CACHE/check-mail/ for check_mails.
MAIL_CHECKED=()
MAIL_FIXES=()
check_mail_branch() {
	local branch=$1 out n
	out=$CACHE/check-mail/$branch.mbox
	mkdir -p "$CACHE/check-mail"
	rm -f "$out" "${out%.mbox}"-fix-*.mbox
	KB_SENDER="Pipeline Check <check@localhost>" "$TOP/scripts/pipeline" mbox "$branch" "$out" 2>&1 | tee "$CACHE/check-mail/$branch.log"
	[ "${PIPESTATUS[0]}" -eq 0 ] || return 1
	grep -q "round trip: .* = kb/$branch" "$CACHE/check-mail/$branch.log" || { echo "no round trip in the log"; return 1; }
	n=$(grep -c '^Signed-off-by: Pipeline Check <check@localhost>$' "$out")
	[ "$n" -eq "$(series_patches "$branch" | wc -l)" ] || { echo "$n sender Signed-off-by lines, want one per patch"; return 1; }
	MAIL_CHECKED+=("$branch=$out")
	# Every fix of the stack also as a mail of its own to stable.
	local fixes f
	fixes=$(series_patches "$branch" | while read -r f; do
		grep -lE '^Fixes: [0-9a-f]{12,40} \(".+"\)$' "$(stack_dir "$branch")/$f"; done | wc -l)
	n=0
	for f in "${out%.mbox}"-fix-*.mbox; do
		[ -f "$f" ] || continue
		n=$((n + 1))
		MAIL_FIXES+=("$branch=$f")
	done
	[ "$n" -eq "$fixes" ] || { echo "$n stable fix mails, want $fixes (one per patch with a Fixes: tag)"; return 1; }
}

# No sender identity at all, or one that is not "Name <email>": a clear
# error, before anything is made.
check_mail_sender() {
	GIT_CONFIG_COUNT=2 GIT_CONFIG_KEY_0=user.name GIT_CONFIG_VALUE_0='' GIT_CONFIG_KEY_1=user.email GIT_CONFIG_VALUE_1='' \
		KB_SENDER='' expect_fail "no sender identity: set KB_SENDER" "$TOP/scripts/pipeline" mbox mainline || return 1
	KB_SENDER='nobody' expect_fail "sender identity 'nobody' is not of the form" "$TOP/scripts/pipeline" mbox mainline
}

# Every stack's mails: the patch files of every non-empty stack, and the
# threads check_mail_branch made in this check run.
check_mails() {
	local m args=()
	for m in "${MAIL_CHECKED[@]}"; do args+=(--mbox "$m"); done
	for m in "${MAIL_FIXES[@]}"; do args+=(--fix-mail "$m"); done
	python3 "$TOP/scripts/check-mails.py" "${args[@]}"
}
