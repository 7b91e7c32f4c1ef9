#!/usr/bin/env bash
# The compatibility matrix (`make test-compat`): runs the integration tests
# matching COMPAT_RUN once per combination of a containerd daemon and a runc,
# then prints a table of the results. Fails if any combination failed, skipped
# a test or ran none (hack/testjson counts go test -json's events).
#
# Environment (the Makefile sets it):
#   COMPAT_MATRIX         combinations, space-separated: <dir>,<runc>, where dir
#                         holds containerd and ctr (and, optionally, its
#                         containerd-shim-runc-v2) and runc is a runc binary
#   COMPAT_RUN            go test -run pattern: the tests every combination runs
#   COMPAT_OLD_RUNC_SKIP  go test -skip pattern for runcs that predate
#                         process.scheduler (OCI spec 1.0.x), or empty
#   COMPAT_LOG_DIR        one log per combination, and summary.txt
#   RTSHIM_BIN_DIR, RTSHIM_TOOLS_DIR, RTSHIM_ROOTFS  as for `make integration`
#   GO, GO_TEST_FLAGS, INTEGRATION_TIMEOUT, TESTJSON as in the Makefile
set -euo pipefail

: "${COMPAT_MATRIX:?}" "${COMPAT_RUN:?}" "${COMPAT_LOG_DIR:?}"
GO=${GO:-go}
INTEGRATION_TIMEOUT=${INTEGRATION_TIMEOUT:-20m}
read -r -a testjson <<<"${TESTJSON:-$GO run ./hack/testjson}"
read -r -a go_test_flags <<<"${GO_TEST_FLAGS:--count=1}"

mkdir -p "$COMPAT_LOG_DIR"
summary=$COMPAT_LOG_DIR/summary.txt
rows=()
failed=0

for combo in $COMPAT_MATRIX; do
	dir=$(realpath "${combo%%,*}")
	runc=$(realpath "${combo#*,}")
	# "containerd github.com/containerd/containerd/v2 v2.0.14 <commit>"
	cv=$("$dir/containerd" --version | awk '{ print $3 }')
	# "runc version 1.1.5+ds1" ... "spec: 1.0.2-dev"
	rv=$("$runc" --version | awk '/^runc version/ { print $3 }')
	spec=$("$runc" --version | awk '/^spec:/ { print $2 }')

	skip=
	if [[ $spec == 1.0.* ]]; then
		skip=${COMPAT_OLD_RUNC_SKIP:-}
	fi
	skip_flag=()
	if [[ -n $skip ]]; then
		skip_flag=(-skip "$skip")
	fi
	log=$COMPAT_LOG_DIR/containerd-$cv-runc-$rv.log
	echo "test-compat: containerd $cv ($dir) + runc $rv, OCI spec $spec ($runc)${skip:+; not run: $skip}; log in $log"

	start=$SECONDS
	counts=$COMPAT_LOG_DIR/containerd-$cv-runc-$rv.counts
	rm -f "$counts"
	rc=0
	RTSHIM_CONTAINERD_DIR=$dir RTSHIM_RUNC=$runc \
		"$GO" test -json "${go_test_flags[@]}" -timeout "$INTEGRATION_TIMEOUT" \
		-run "$COMPAT_RUN" "${skip_flag[@]}" ./integration/ 2>&1 |
		"${testjson[@]}" -log "$log" -counts "$counts" >/dev/null || rc=$?
	secs=$((SECONDS - start))

	# Top-level tests, then subtests.
	pass=0 fail=0 skipped=0 subtests=0
	if [[ -s $counts ]]; then
		read -r pass fail skipped subtests <"$counts"
	fi
	result=PASS
	if [[ $rc -ne 0 || $fail -gt 0 || $skipped -gt 0 || $pass -eq 0 ]]; then
		result=FAIL
		failed=1
		echo "test-compat: containerd $cv + runc $rv FAILED (exit $rc); output:" >&2
		cat "$log" >&2
	else
		grep -E '^--- ' "$log"
	fi
	rows+=("$(printf '%-12s %-12s %-6s %6s %6s %6s %9s %6ss  %s' \
		"$cv" "$rv" "$result" "$pass" "$fail" "$skipped" "$subtests" "$secs" "${skip:--}")")
done

{
	echo "Compatibility matrix (tests: $COMPAT_RUN)"
	printf '%-12s %-12s %-6s %6s %6s %6s %9s %7s  %s\n' \
		containerd runc result passed failed skipped subtests time "not run"
	printf '%s\n' "${rows[@]}"
} | tee "$summary"
exit "$failed"
