#!/usr/bin/env bats
# Logging: -o log=FILE gets one line per upload finished (name, bytes, seconds, file id)
# and per failure (name, reason); SIGHUP reopens the file, as logrotate needs; a
# daemonized mount writes there too.

load ../lib/mount

setup() {
	fs_setup --max-upload-bytes 1000
	LOG=$BATS_TEST_TMPDIR/uploadfs.log
	FS_ALLOW='upload of big.txt failed'
}

teardown() {
	fs_teardown
}

@test "-o log=FILE: a line per upload and per failure, reopened on SIGHUP" {
	mount_fs -o "log=$LOG"
	echo hello >"$MNT/a.txt"
	id=$(remote_json a.txt | jq -r .id)
	grep -E "uploadfs info: uploaded a\.txt \(6 bytes, [0-9.]+ s\) as $id\$" "$LOG"
	# the server refuses files over 1000 bytes: the failure is logged with its reason
	run cp /etc/services "$MNT/big.txt"
	[ "$status" != 0 ]
	grep -E "uploadfs error: upload of big\.txt failed: .+" "$LOG"
	# nothing went to stderr but what libfuse prints
	! grep -q "uploaded a.txt" "$BATS_TEST_TMPDIR/fs.log"
	# logrotate: move the file away, SIGHUP, the next lines go to a new file
	mv "$LOG" "$LOG.1"
	kill -HUP "$FS_PID"
	for i in $(seq 50); do [ -f "$LOG" ] && break; sleep 0.1; done
	echo again >"$MNT/b.txt"
	grep -q "SIGHUP: log file reopened" "$LOG"
	grep -q "uploaded b.txt (6 bytes" "$LOG"
	! grep -q "uploaded a.txt" "$LOG"
	! grep -q "uploaded b.txt" "$LOG.1"
	# SIGHUP did not unmount
	grep -q " $MNT fuse.uploadfs" /proc/mounts
	[ "$(stat -c %a "$LOG")" = 600 ]
}

@test "a daemonized mount with -o log=FILE writes its lines there" {
	MNT=$BATS_TEST_TMPDIR/mnt
	mkdir -p "$MNT"
	"$UPLOADFS" -o "api_base=$BASE,cache_dir=$BATS_TEST_TMPDIR/cache,log=$LOG" "$MNT"
	grep -q " $MNT fuse.uploadfs" /proc/mounts
	echo hi >"$MNT/d.txt"
	fusermount3 -u "$MNT"
	grep -q "mounted $BASE on $MNT" "$LOG"
	grep -q "uploaded d.txt (3 bytes" "$LOG"
	for i in $(seq 50); do grep -q "unmounted $MNT" "$LOG" && break; sleep 0.1; done
	grep -q "unmounted $MNT" "$LOG"
}

@test "a log file that cannot be opened is refused at start" {
	run "$UPLOADFS" -f -o "api_base=$BASE,cache_dir=$BATS_TEST_TMPDIR/c,log=/nonexistent/dir/x.log" "$BATS_TEST_TMPDIR"
	[ "$status" = 2 ]
	[[ "$output" == *"cannot open the log file /nonexistent/dir/x.log"* ]]
}
