#!/usr/bin/env bash
# Builds uploadfs and runs every test: the C unit tests (meson test) and the bats suites,
# once on the normal build and once on an ASan+UBSan build; builds, installs and tests
# the Debian package; runs valgrind and the fuzzers briefly. Prints "N passed, N failed"
# as its last line and exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$PWD
log=${UPLOADFS_TEST_LOG:-$top/build/test-logs}

passed=0
failed=0

count_tap() { # FILE: adds its ok / not ok lines to the totals
	local ok bad
	ok=$(grep -cE '^ok ' "$1" || true)
	bad=$(grep -cE '^not ok ' "$1" || true)
	passed=$((passed + ok))
	failed=$((failed + bad))
	echo "   $ok passed, $bad failed"
}

build() { # DIR [meson options...]
	local dir=$1
	shift
	if [ ! -f "$dir/build.ninja" ]; then
		meson setup "$dir" "$@" >/dev/null || return 1
	fi
	meson compile -C "$dir" >/dev/null || meson compile -C "$dir"
}

run_suite() { # NAME BUILD_DIR
	local name=$1 dir=$2
	echo "== $name: C unit tests"
	# Each unit test prints TAP; meson runs them, their output is counted case by case.
	if ! meson test -C "$dir" --suite unit --print-errorlogs >"$log/$name-meson.txt" 2>&1; then
		tail -n 30 "$log/$name-meson.txt"
	fi
	cat "$dir"/meson-logs/testlog.txt >"$log/$name-unit.txt"
	count_tap "$log/$name-unit.txt"
	echo "== $name: bats"
	UPLOADFS_BUILD=$top/$dir bats --tap tests/server tests/core tests/fs tests/scenarios tests/reliability tests/packaging >"$log/$name-bats.txt" 2>&1
	grep -E '^not ok' -A 15 "$log/$name-bats.txt" | head -n 200
	count_tap "$log/$name-bats.txt"
}

mkdir -p build
build build || { echo "0 passed, 1 failed"; exit 1; }
mkdir -p "$log"
run_suite release build
# The Python binding (tests/python, pytest) on the release build, not under ASan: each test
# counts once (its junit testcase); a pytest that crashes or collects nothing is a failure.
echo "== release: python"
rm -f "$log/release-python.xml"
UPLOADFS_BUILD=$top/build UPLOADFS_LIBRARY=$top/build/core/libuploadfs.so.0 \
	/usr/bin/python3 -m pytest -q -rA -p no:cacheprovider --junitxml="$log/release-python.xml" \
	tests/python >"$log/release-python.txt" 2>&1
py_rc=$?
grep -E '^(FAILED|ERROR) ' "$log/release-python.txt" | head -n 50
read -r py_ok py_bad < <(/usr/bin/python3 - "$log/release-python.xml" <<'PY' || echo "0 1"
import sys, xml.etree.ElementTree as ET
cases = list(ET.parse(sys.argv[1]).iter("testcase"))
bad = sum(1 for c in cases if any(x.tag in ("failure", "error", "skipped") for x in c))
print(len(cases) - bad, bad)
PY
)
if [ "$py_rc" != 0 ] && [ "$py_bad" = 0 ]; then py_bad=1; fi
passed=$((passed + py_ok))
failed=$((failed + py_bad))
echo "   $py_ok passed, $py_bad failed"
# valgrind over a server and a mount session (release build: valgrind cannot run ASan's)
echo "== release: valgrind"
UPLOADFS_BUILD=$top/build bats --tap tests/valgrind >"$log/release-valgrind.txt" 2>&1
grep -E '^not ok' -A 30 "$log/release-valgrind.txt" | head -n 100
count_tap "$log/release-valgrind.txt"

# The Debian package, built from packaging/ and installed; tests/deb runs from its paths
# (mount -t fuse.uploadfs, an fstab, systemd-analyze verify).
echo "== deb: build, install, test"
if bash packaging/build-deb.sh "$top/build/deb" >"$log/deb-build.txt" 2>&1 &&
	dpkg -i "$top"/build/deb/uploadfs_*.deb "$top"/build/deb/python3-uploadfs_*.deb >>"$log/deb-build.txt" 2>&1; then
	echo "ok the package builds and installs"
	passed=$((passed + 1))
	bats --tap tests/deb >"$log/deb-bats.txt" 2>&1
	grep -E '^not ok' -A 15 "$log/deb-bats.txt" | head -n 100
	count_tap "$log/deb-bats.txt"
else
	echo "not ok the package builds and installs"
	tail -n 30 "$log/deb-build.txt"
	failed=$((failed + 1))
fi

# The same suites under AddressSanitizer and UBSan: any report fails the run.
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
if build build-asan -Db_sanitize=address,undefined -Db_lundef=false; then
	run_suite asan build-asan
	reports=$(grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"/asan-*.txt || true)
	if [ -n "$reports" ]; then
		echo "sanitizer reports in: $reports"
		failed=$((failed + 1))
	fi
else
	failed=$((failed + 1))
fi

# A short run of each libFuzzer harness (clang, ASan+UBSan); tests/fuzz/README.md has the
# long one. Each harness is one test: it fails on any crash, leak or sanitizer report.
echo "== fuzz"
if [ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz -Dfuzz=true \
	-Db_sanitize=address,undefined -Db_lundef=false >"$log/fuzz-setup.txt" 2>&1; then
	meson compile -C build-fuzz >"$log/fuzz-build.txt" 2>&1 || cat "$log/fuzz-build.txt"
	for t in response server_json server_http input; do
		work=$(mktemp -d)
		cp tests/fuzz/corpus/$t/* "$work/"
		if (cd "$work" && "$top/build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="${FUZZ_SECONDS:-15}" \
			-max_len=4096 "$work" >"$log/fuzz-$t.txt" 2>&1); then
			echo "ok fuzz_$t ($(grep -o 'Done [0-9]* runs' "$log/fuzz-$t.txt"))"
			passed=$((passed + 1))
		else
			echo "not ok fuzz_$t"
			tail -n 40 "$log/fuzz-$t.txt"
			failed=$((failed + 1))
		fi
		rm -rf "$work"
	done
else
	cat "$log/fuzz-setup.txt"
	failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
