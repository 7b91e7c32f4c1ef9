#!/usr/bin/env bash
# Prints rtshim's version, the one the binaries' --version and the .deb both carry:
#
#   at the tag v0.1.0                         0.1.0
#   3 commits past it, at abcdef1             0.1.0+3.gabcdef1
#   with uncommitted changes                  0.1.0+dirty, 0.1.0+3.gabcdef1.dirty
#   no v* tag (e.g. a clone without tags)     0.0.0+git20260101.abcdef1 (the commit's date),
#                                             0.0.0+git20260101.abcdef1.dirty
#   not a git checkout                        0.0.0+unknown
#
# Every form is a valid Debian upstream version and a valid semantic version. dpkg sorts each
# after the tag it follows and before the next one (semver ignores what follows the "+").
set -euo pipefail

cd "$(dirname "$0")/.."

if d=$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null); then
	d=${d#v}
	dirty=
	if [[ $d == *-dirty ]]; then
		d=${d%-dirty} dirty=1
	fi
	# <tag>-<n>-g<commit> → <tag>+<n>.g<commit>
	if [[ $d =~ ^(.*)-([0-9]+)-(g[0-9a-f]+)$ ]]; then
		d="${BASH_REMATCH[1]}+${BASH_REMATCH[2]}.${BASH_REMATCH[3]}"
	fi
	if [[ -n $dirty ]]; then
		[[ $d == *+* ]] && d+=.dirty || d+=+dirty
	fi
	echo "$d"
elif v=$(git log -1 --date=format:%Y%m%d --format='0.0.0+git%cd.%h' 2>/dev/null) && [[ -n $v ]]; then
	# Uncommitted changes to tracked files, as git describe --dirty counts them.
	git diff-index --quiet HEAD -- 2>/dev/null || v+=.dirty
	echo "$v"
else
	echo 0.0.0+unknown
fi
