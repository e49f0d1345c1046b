#!/usr/bin/env bats
# Faults: a flaky server (500s, 429s, dropped connections), a server that stalls, a server
# that goes away and comes back, and a full cache_dir.

load ../lib/mount

teardown() {
	if [ -n "${SMALL:-}" ] && grep -q " $SMALL " /proc/mounts; then
		umount_fs
		umount "$SMALL"
	fi
	fs_teardown
}

@test "200 files from 1 KiB to 200 MiB at a 20% fault rate: each is whole on the server or its cp failed" {
	FS_ALLOW='retry|upload of .* failed|part [0-9]+'
	ALLOW_LOG=$CUT_REQUEST_LOG
	fs_setup --fail-rate 0.2 --seed 3
	mount_fs -o retries=10
	src=$BATS_TEST_TMPDIR/src
	mkdir -p "$src"
	# 190 files spread from 1 KiB to 1 MiB, and 10 from 20 MiB to 200 MiB
	for i in $(seq 0 189); do
		head -c $((1024 * (1 << (i / 19)) + i * 37)) /dev/urandom >"$src/s$i"
	done
	for i in $(seq 1 10); do
		head -c $((20 * i * 1048576 + i)) /dev/urandom >"$src/b$i"
	done
	ok=0 failed=0
	for f in "$src"/*; do
		name=$(basename "$f")
		if cp "$f" "$MNT/$name" 2>/dev/null; then
			[ "$(remote_md5 "$name")" = "$(md5_of "$f")" ] || { echo "wrong bytes: $name" >&2; return 1; }
			ok=$((ok + 1))
		else
			[ "$(xattr "$MNT/$name" user.upload.status)" = failed ]
			failed=$((failed + 1))
		fi
	done
	echo "# $ok completed, $failed failed" >&3
	[ $((ok + failed)) = 200 ]
	[ "$ok" -ge 190 ]
	# never a duplicate: one file per completed copy
	[ "$(remote_count)" = "$ok" ]
}

@test "a server that stalls mid-request is caught by the stall timeout" {
	FS_ALLOW='retry|upload of .* failed|timed out|Timeout'
	fs_setup
	mount_fs -o timeout=1,retries=1,retry_window=0
	# the same server comes back, now answering after 4 s
	port=${BASE##*:}
	port=${port%/v1}
	stop_server
	"$SERVER" --listen "127.0.0.1:$port" --data "$SRV_DATA" --latency-ms 4000 \
		>"$BATS_TEST_TMPDIR/srv2.out" 2>>"$BATS_TEST_TMPDIR/srv.err" &
	SRV_PID=$!
	sleep 0.3
	echo data >"$BATS_TEST_TMPDIR/x"
	run cp "$BATS_TEST_TMPDIR/x" "$MNT/x"
	[ "$status" != 0 ]
	[[ "$output" == *"timed out"* ]]
	[ "$(xattr "$MNT/x" user.upload.status)" = failed ]
	[[ "$(xattr "$MNT/x" user.upload.error)" == *"imeout"* || "$(xattr "$MNT/x" user.upload.error)" == *"timed out"* ]]
}

@test "the server goes away during a copy and comes back: the copy completes" {
	FS_ALLOW='retry'
	ALLOW_LOG=$CUT_REQUEST_LOG
	fs_setup --latency-ms 100
	mount_fs -o part_size=1M,parallel=1,retries=8
	# 12 parts, each answered 100 ms later, two requests open at a time: about 0.7 s of
	# parts, so the outage at 0.3 s falls in the copy
	head -c 12000000 /dev/urandom >"$BATS_TEST_TMPDIR/y"
	cp "$BATS_TEST_TMPDIR/y" "$MNT/y" &
	cpid=$!
	sleep 0.3
	stop_server
	sleep 1.5
	restart_server --allow-downloads # waits until it listens
	wait "$cpid"
	[ "$(remote_md5 y)" = "$(md5_of "$BATS_TEST_TMPDIR/y")" ]
}

@test "the server down for 60 s in the middle of a cp, default options: the cp waits and succeeds" {
	FS_ALLOW='retry|server is away'
	ALLOW_LOG=$CUT_REQUEST_LOG
	fs_setup
	mount_fs -o part_size=1M
	head -c 6000000 /dev/urandom >"$BATS_TEST_TMPDIR/w"
	# the source is a pipe fed slowly: the outage comes while the copy runs
	(head -c 3000000 "$BATS_TEST_TMPDIR/w"; sleep 3; tail -c +3000001 "$BATS_TEST_TMPDIR/w") |
		cp /dev/stdin "$MNT/w" &
	cpid=$!
	sleep 1
	stop_server
	sleep 30
	# meanwhile status says so, when it tries next, and why
	run "$UPLOADFS" status "$MNT"
	[ "$status" = 0 ]
	[[ "${lines[1]}" =~ ^waiting\ for\ the\ server,\ retry\ in\ [0-9]+\ s\ \(away\ for\ [0-9]+\ s:\ .*onnect ]]
	run "$UPLOADFS" status --json "$MNT"
	jq -e '.server_away.since < .server_away.retry_at and (.server_away.error | length > 0)' <<<"$output"
	sleep 30
	restart_server --allow-downloads
	wait "$cpid"
	[ "$(remote_md5 w)" = "$(md5_of "$BATS_TEST_TMPDIR/w")" ]
	grep -q 'the server is away' "$BATS_TEST_TMPDIR/fs.log"
	# back: the status no longer says it waits
	run "$UPLOADFS" status --json "$MNT"
	jq -e 'has("server_away") | not' <<<"$output"
}

@test "an outage longer than retry_window fails the cp with the connection's error" {
	FS_ALLOW='retry|server is away|upload of w failed|failed'
	fs_setup
	mount_fs -o part_size=1M,retries=1,retry_window=3
	stop_server
	head -c 100000 /dev/urandom >"$BATS_TEST_TMPDIR/w"
	local t0=$SECONDS
	run cp "$BATS_TEST_TMPDIR/w" "$MNT/w"
	[ "$status" != 0 ]
	[ $((SECONDS - t0)) -lt 30 ]
	[ "$(xattr "$MNT/w" user.upload.status)" = failed ]
	[[ "$(xattr "$MNT/w" user.upload.error)" == *"onnect"* ]]
}

@test "cache_dir full: the write fails with ENOSPC, that file is failed, the mount goes on" {
	FS_ALLOW='No space left|write to big failed'
	# cp's source gives the size, so parts go up while cp writes. When the spool is
	# full, the file fails and its spool is emptied: a part still being sent finds its
	# bytes gone and the client stops it mid-body rather than send others in their place.
	ALLOW_LOG=$CUT_REQUEST_LOG
	fs_setup
	SMALL=$BATS_TEST_TMPDIR/small
	mkdir -p "$SMALL"
	mount -t tmpfs -o size=6m tmpfs "$SMALL"
	CACHE=$SMALL/cache
	mount_fs -o part_size=1M
	echo before >"$MNT/before.txt"
	head -c 10000000 /dev/urandom >"$BATS_TEST_TMPDIR/big"
	run cp "$BATS_TEST_TMPDIR/big" "$MNT/big"
	[ "$status" != 0 ]
	[[ "$output" == *"No space left on device"* ]]
	[ "$(xattr "$MNT/big" user.upload.status)" = failed ]
	[[ "$(xattr "$MNT/big" user.upload.error)" == *"No space left"* ]]
	# nothing else is lost, and the mount keeps working
	echo after >"$MNT/after.txt"
	[ "$(remote_md5 before.txt)" = "$(echo before | md5sum | cut -d' ' -f1)" ]
	[ "$(remote_md5 after.txt)" = "$(echo after | md5sum | cut -d' ' -f1)" ]
	[ "$(remote_json big)" = null ]
}
