#!/usr/bin/env bash
# Runs every fuzz target of the module for DURATION each.
#
#   bench/fuzz.sh 30s        # each target 30 seconds (CI; shorter runs may not
#                            # finish replaying the corpus and then fail)
#   bench/fuzz.sh 10m        # a longer hunt
#
# Targets are discovered with `go test -list '^Fuzz'` in every package, so a
# new Fuzz* function is picked up without editing this script. Each target's
# committed corpus (testdata/fuzz/<Target>) is replayed first; new crashers
# are written there too, ready to commit as regression inputs. Exit status:
# 0 when every target ran clean, 1 when one failed or a package did not build.
set -euo pipefail

if [[ $# -ne 1 || ! "$1" =~ ^[0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h|x)$ ]]; then
	echo "usage: $0 DURATION   (a Go duration such as 30s or 5m, or a count such as 1000x)" >&2
	exit 2
fi
duration=$1
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=0
ran=0
for pkg in $(go list ./...); do
	if ! listing=$(go test -list '^Fuzz' "$pkg" 2>&1); then
		echo "FAIL $pkg: cannot list its tests:" >&2
		echo "$listing" >&2
		failed=1
		continue
	fi
	for target in $(grep -E '^Fuzz' <<<"$listing" || true); do
		echo "=== $pkg $target for $duration"
		ran=$((ran + 1))
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$duration" "$pkg" 2>&1 | tee "$log"; then
			if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input' "$log"; then
				# Go gives up when the time runs out before the corpus (the
				# committed one plus the cached finds) has been replayed.
				echo "FAIL $pkg $target: $duration is too short to replay its corpus; use a longer duration" >&2
			else
				echo "FAIL $pkg $target" >&2
			fi
			failed=1
		fi
	done
done
echo "fuzz targets run: $ran"
if [[ $ran -eq 0 ]]; then
	echo "no fuzz targets found" >&2
	exit 1
fi
exit $failed
