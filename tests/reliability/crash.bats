#!/usr/bin/env bats
# kill -9 of the daemon mid-upload, then a remount: the journal under cache_dir finishes
# what was closed, without re-sending acknowledged parts, and cancels what was not.

load ../lib/mount

setup() {
	head -c 8388608 /dev/urandom >"$BATS_TEST_TMPDIR/src"
}

teardown() {
	fs_teardown
}

# crash_mid_upload: cp in the background, kill -9 the daemon once 3 parts are acknowledged.
# The mounts here use size_hint=off, so the upload starts at close and the crash comes
# after it (with the size taken from cp's source, parts go up while cp still writes).
crash_mid_upload() {
	cp "$BATS_TEST_TMPDIR/src" "$MNT/f.bin" 2>/dev/null &
	cpid=$!
	for i in $(seq 200); do
		sent=$(xattr "$MNT/f.bin" user.upload.bytes_sent || echo 0)
		[ "${sent:-0}" -ge 3145728 ] && break
		sleep 0.05
	done
	[ "$sent" -ge 3145728 ]
	kill -9 "$FS_PID"
	wait "$FS_PID" 2>/dev/null || true
	FS_PID=
	wait "$cpid" || true
	fusermount3 -u "$MNT"
	[ -n "$(ls "$CACHE/journal")" ]
}

wait_remote() { # NAME: until the server lists it
	for i in $(seq 200); do
		[ "$(remote_json "$1")" != null ] && return 0
		sleep 0.1
	done
	return 1
}

@test "kill -9 mid-upload: a remount resumes without re-sending acknowledged parts" {
	FS_ALLOW='.'
	ALLOW_LOG=$CUT_REQUEST_LOG
	fs_setup --latency-ms 250 --log-requests "$BATS_TEST_TMPDIR/req.log"
	mount_fs -o part_size=1M,parallel=1,size_hint=off
	crash_mid_upload
	acked=$(grep -c '/parts","status":200' "$BATS_TEST_TMPDIR/req.log" || true)
	mount_fs -o part_size=1M,parallel=1,size_hint=off
	wait_remote f.bin
	grep -q 'resuming the upload of f.bin' "$BATS_TEST_TMPDIR/fs.log"
	[ "$(remote_md5 f.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/src")" ]
	umount_fs
	stop_server
	# one session only, and the parts sent before the crash were not sent again: 8 parts
	# in all, plus at most the two in flight when the daemon died (parallel=1: one body
	# being sent, one part awaiting its answer)
	[ "$(grep -c '"path":"\\/v1\\/uploads"' "$BATS_TEST_TMPDIR/req.log")" = 1 ]
	total=$(grep -c '/parts","status":200' "$BATS_TEST_TMPDIR/req.log")
	[ "$acked" -ge 3 ]
	[ "$total" -le 10 ]
	[ -z "$(ls "$CACHE/journal")" ]
	[ -z "$(ls "$CACHE/spool")" ]
}

@test "a session that expired while the daemon was down is made again" {
	FS_ALLOW='.'
	ALLOW_LOG=$CUT_REQUEST_LOG
	fs_setup --latency-ms 250 --expire-seconds 4 --log-requests "$BATS_TEST_TMPDIR/req.log"
	mount_fs -o part_size=1M,parallel=1,size_hint=off
	crash_mid_upload
	sleep 4.5
	mount_fs -o part_size=1M,parallel=1,size_hint=off
	wait_remote f.bin
	[ "$(remote_md5 f.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/src")" ]
	stop_server
	[ "$(grep -c '"path":"\\/v1\\/uploads"' "$BATS_TEST_TMPDIR/req.log")" = 2 ]
}

@test "a file still open at the crash is not uploaded; its session is cancelled and reported" {
	FS_ALLOW='still being written when uploadfs stopped'
	ALLOW_LOG=$CUT_REQUEST_LOG
	fs_setup
	mount_fs -o part_size=1M
	python3 - "$MNT/open.bin" "$FS_PID" <<'PY'
import os, signal, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
os.ftruncate(fd, 4 * 1024 * 1024)      # a session exists from here
os.write(fd, b"z" * (2 * 1024 * 1024))
os.fsync(fd)
os.kill(int(sys.argv[2]), signal.SIGKILL)
time.sleep(0.2)
try:
    os.close(fd)
except OSError:
    pass
PY
	wait "$FS_PID" 2>/dev/null || true
	FS_PID=
	fusermount3 -u "$MNT"
	mount_fs -o part_size=1M
	grep -q 'open.bin was still being written when uploadfs stopped' "$BATS_TEST_TMPDIR/fs.log"
	[ "$(remote_count)" = 0 ]
	[ -z "$(ls "$CACHE/spool")" ]
	stop_server
	grep -l '"status":"cancelled"' "$SRV_DATA"/uploads/*.json
}

@test "a torn journal record is set aside and never stops the mount" {
	FS_ALLOW='damaged journal record'
	fs_setup
	mkdir -p "$BATS_TEST_TMPDIR/cache/journal"
	printf '{"filename":"x", "size":' >"$BATS_TEST_TMPDIR/cache/journal/torn.json"
	mount_fs
	echo ok >"$MNT/after.txt"
	[ "$(remote_count)" = 1 ]
	[ -f "$CACHE/journal/torn.json.corrupt" ]
}

@test "a damaged state store is set aside and never stops the mount" {
	FS_ALLOW='was damaged; set aside'
	fs_setup
	mkdir -p "$BATS_TEST_TMPDIR/cache"
	head -c 20000 /dev/urandom >"$BATS_TEST_TMPDIR/cache/state.db"
	mount_fs
	grep -q 'state.db was damaged' "$BATS_TEST_TMPDIR/fs.log"
	[ -f "$CACHE/state.db.corrupt" ]
	mkdir "$MNT/d"
	umount_fs
	mount_fs
	[ -d "$MNT/d" ]
}

@test "the state.json of an earlier version is taken into the store once; a damaged one is set aside" {
	FS_ALLOW='was damaged; set aside'
	fs_setup
	echo x >"$BATS_TEST_TMPDIR/x"
	id=$(curl -sS "$BASE/files" -F purpose=batch -F "file=@$BATS_TEST_TMPDIR/x;filename=x.txt" | jq -r .id)
	mkdir -p "$BATS_TEST_TMPDIR/cache"
	printf '{"files": {"%s": {"mode": 33152, "uid": 0, "gid": 0, "mtime": 1000000000, "mtime_ns": 0}}, "dirs": {"kept": {"mode": 16832, "purpose": "batch"}}}' "$id" >"$BATS_TEST_TMPDIR/cache/state.json"
	mount_fs
	[ "$(stat -c '%a %Y' "$MNT/x.txt")" = "600 1000000000" ]
	[ -d "$MNT/kept" ]
	[ "$(xattr "$MNT/kept" user.purpose)" = batch ]
	[ -f "$CACHE/state.json.imported" ] && [ ! -e "$CACHE/state.json" ]
	umount_fs
	mount_fs
	[ "$(stat -c '%a %Y' "$MNT/x.txt")" = "600 1000000000" ]
	umount_fs
	printf '{"files": {"file-x": {"mode":' >"$CACHE/state.json"
	mount_fs
	grep -q 'state.json was damaged' "$BATS_TEST_TMPDIR/fs.log"
	[ -f "$CACHE/state.json.corrupt" ]
	[ -d "$MNT/kept" ]
}
