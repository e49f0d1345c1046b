#!/usr/bin/env bats
# The mount on a far link: tests/lib/linkem between the mount and the server delays every
# byte by half the round trip each way and paces each connection, as a long path does.

load ../lib/mount

LINKEM="$UPLOADFS_BUILD/tests/linkem"

setup() {
	fs_setup --log-requests "$BATS_TEST_TMPDIR/req.log"
}

teardown() {
	[ -z "${LINK_PID:-}" ] || { kill "$LINK_PID" 2>/dev/null; wait "$LINK_PID" 2>/dev/null || true; }
	fs_teardown
}

# link MS RATE [linkem options...]: the link in front of the server; BASE becomes its
# address.
link() {
	local port=${BASE##*:} ms=$1 rate=$2
	shift 2
	port=${port%%/*}
	"$LINKEM" --upstream "$port" --delay-ms $((ms / 2)) --rate "$rate" "$@" \
		>"$BATS_TEST_TMPDIR/link.out" 2>"$BATS_TEST_TMPDIR/link.err" &
	LINK_PID=$!
	local i
	for i in $(seq 100); do
		BASE=$(sed -n 's|^listening on \(.*\)|http://\1/v1|p' "$BATS_TEST_TMPDIR/link.out")
		[ -n "$BASE" ] && return 0
		sleep 0.05
	done
	return 1
}

# The most part requests the server had under way at once (from the request log's start
# and end times).
most_parts_at_once() {
	jq -r 'select(.path | endswith("/parts")) | "\(.start) 1\n\(.end) -1"' "$BATS_TEST_TMPDIR/req.log" |
		sort -g | awk '{n += $2; if (n > m) m = n} END {print m + 0}'
}

@test "linkem: a request through a 100 ms link takes one round trip more, and bytes keep their order" {
	link 100 25000000
	local t0 t1
	t0=$(date +%s%N)
	curl -sSf -o /dev/null "$BASE/files"
	t1=$(date +%s%N)
	[ $(((t1 - t0) / 1000000)) -ge 100 ]
	head -c 3000000 /dev/urandom >"$BATS_TEST_TMPDIR/f"
	id=$(curl -sSf "$BASE/files" -F purpose=batch -F "file=@$BATS_TEST_TMPDIR/f" | jq -r .id)
	curl -sSf -o "$BATS_TEST_TMPDIR/back" "$BASE/files/$id/content"
	cmp "$BATS_TEST_TMPDIR/f" "$BATS_TEST_TMPDIR/back"
}

@test "through a 100 ms link, a cp of 16 parts arrives whole, 4 to 8 parts in flight at once" {
	link 100 25000000
	mount_fs -o part_size=1M,parallel=4
	head -c $((16 * 1024 * 1024)) /dev/urandom >"$BATS_TEST_TMPDIR/big"
	cp "$BATS_TEST_TMPDIR/big" "$MNT/big.bin"
	[ "$(remote_md5 big.bin)" = "$(md5sum <"$BATS_TEST_TMPDIR/big" | cut -d' ' -f1)" ]
	# no part waits for another to start (no 100 Continue, no turn): parallel=4 keeps 4
	# part bodies on the link, and parts awaiting their answer beside them, up to 8
	local most
	most=$(most_parts_at_once)
	echo "parts in flight at most: $most"
	[ "$most" -ge 4 ] && [ "$most" -le 8 ]
	# and none of them asked the server to continue
	! grep -qi '"expect":"100-continue"' "$BATS_TEST_TMPDIR/req.log"
}

@test "connections lost mid-part (every second one, after 300 kB): the parts are sent again, the file arrives whole" {
	FS_ALLOW='retry'
	ALLOW_LOG=$CUT_REQUEST_LOG
	link 20 50000000 --cut 2 --cut-after 300000
	mount_fs -o part_size=1M
	head -c $((6 * 1024 * 1024 + 99)) /dev/urandom >"$BATS_TEST_TMPDIR/f"
	cp "$BATS_TEST_TMPDIR/f" "$MNT/f.bin"
	[ "$(remote_md5 f.bin)" = "$(md5sum <"$BATS_TEST_TMPDIR/f" | cut -d' ' -f1)" ]
	grep -q 'retry' "$BATS_TEST_TMPDIR/fs.log" # it did lose connections
}
