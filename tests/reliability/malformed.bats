#!/usr/bin/env bats
# A server that answers what the API never promises: a clean error, never a crash.

load ../lib/mount

start_bad() {
	python3 "$BATS_TEST_DIRNAME/../lib/badserver.py" "$1" >"$BATS_TEST_TMPDIR/bad.out" 2>&1 &
	SRV_PID=$!
	for i in $(seq 100); do
		BASE=$(sed -n 's/^listening on //p' "$BATS_TEST_TMPDIR/bad.out")
		[ -n "$BASE" ] && return 0
		sleep 0.05
	done
	return 1
}

teardown() {
	fs_teardown
}

@test "a listing that is not what the API promises: the mount is refused with a clear line" {
	mkdir -p "$BATS_TEST_TMPDIR/m"
	for mode in list-garbage list-wrong-types list-loop list-huge list-bad-id; do
		start_bad "$mode"
		run "$UPLOADFS" -f -o "api_base=$BASE,cache_dir=$BATS_TEST_TMPDIR/c,retries=0" "$BATS_TEST_TMPDIR/m"
		[ "$status" = 1 ] # an error exit, not a signal
		[[ "$output" == *"does not answer as an Uploads/Files API"* ]]
		stop_server
	done
}

@test "malformed upload answers fail the cp cleanly and the mount lives on" {
	FS_ALLOW='upload of .* failed|retry'
	for mode in create-bad-id create-missing part-bad-id complete-nofile error-html; do
		start_bad "$mode"
		mount_fs -o retries=1,retry_window=0
		run cp /etc/hostname "$MNT/f-$mode"
		[ "$status" != 0 ]
		[ "$(xattr "$MNT/f-$mode" user.upload.status)" = failed ]
		[ -n "$(xattr "$MNT/f-$mode" user.upload.error)" ]
		ls "$MNT" >/dev/null
		kill -0 "$FS_PID"
		umount_fs
		stop_server
	done
}
