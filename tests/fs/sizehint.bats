#!/usr/bin/env bats
# -o size_hint=auto (the default): a new file's size is taken from the file its writer is
# copying from (cp opens its source before it creates the target), so the upload starts at
# create and each part goes up while the writer is still writing. A wrong guess is cancelled
# and redone at close with the bytes written; nothing on a FUSE filesystem is ever stat'ed.
# Writers here are the test's own shell: `exec 7<SRC` then `exec 8>MNT/FILE`.

load ../lib/mount

MiB=1048576

setup() {
	fs_setup --log-requests "$BATS_TEST_TMPDIR/req.log"
}

teardown() {
	exec 7<&- 8>&- 6<&- 9>&- 2>/dev/null || true
	[ -z "${CP_PID:-}" ] || { kill -CONT "$CP_PID" 2>/dev/null; wait "$CP_PID" 2>/dev/null; } || true
	fs_teardown
}

# wait_sent FILE BYTES: until FILE's bytes_sent reaches BYTES (10 s at most).
wait_sent() {
	local i
	for i in $(seq 200); do
		[ "$(xattr "$1" user.upload.bytes_sent)" -ge "$2" ] && return 0
		sleep 0.05
	done
	echo "bytes_sent of $1 stayed at $(xattr "$1" user.upload.bytes_sent), not $2" >&2
	return 1
}

# wait_status FILE STATUS: the upload starts just after create() has returned.
wait_status() {
	local i
	for i in $(seq 100); do
		[ "$(xattr "$1" user.upload.status)" = "$2" ] && return 0
		sleep 0.05
	done
	echo "status of $1 stayed $(xattr "$1" user.upload.status), not $2" >&2
	return 1
}

# guessed NAME: the lines of the daemon's debug log (-d) that announced NAME's size.
guessed() { grep -E "debug: $1: [0-9]+ bytes announced by the writer's source file" "$BATS_TEST_TMPDIR/fs.log" || true; }

# requests METHOD REGEX: how many such requests the server logged (after stop_server).
requests() {
	jq -r --arg m "$1" --arg p "$2" 'select(.method == $m and (.path | test($p))) | .path' \
		"$BATS_TEST_TMPDIR/req.log" | wc -l
}

@test "the size of the file being copied from starts the upload before the writer closes" {
	mount_fs
	src=$BATS_TEST_TMPDIR/src.bin
	head -c $((40 * MiB)) /dev/urandom >"$src"
	exec 7<"$src"
	exec 8>"$MNT/copy.bin"
	wait_status "$MNT/copy.bin" uploading
	[[ "$(xattr "$MNT/copy.bin" user.upload.id)" == upload_* ]]
	head -c $((24 * MiB)) <&7 >&8
	# three parts of 8 MiB are on the server while the file is still open
	wait_sent "$MNT/copy.bin" $((24 * MiB))
	[ "$(xattr "$MNT/copy.bin" user.upload.status)" = uploading ]
	cat <&7 >&8
	exec 8>&- 7<&-
	[ "$(xattr "$MNT/copy.bin" user.upload.status)" = completed ]
	[ "$(xattr "$MNT/copy.bin" user.upload.md5)" = "$(md5_of "$src")" ]
	[ "$(remote_md5 copy.bin)" = "$(md5_of "$src")" ]
	umount_fs
	stop_server
	# one session, five parts, no cancel: the guess was right
	[ "$(requests POST '^/v1/uploads$')" = 1 ]
	[ "$(requests POST '/parts$')" = 5 ]
	[ "$(requests POST '/cancel$')" = 0 ]
}

@test "parts in flight at once: the server hashes them as they come and keeps them as the file, without a copy" {
	mount_fs -o part_size=1M,parallel=4
	src=$BATS_TEST_TMPDIR/src.bin
	head -c $((48 * MiB + 12345)) /dev/urandom >"$src"
	cp "$src" "$MNT/order.bin"
	[ "$(xattr "$MNT/order.bin" user.upload.status)" = completed ]
	[ "$(remote_md5 order.bin)" = "$(md5_of "$src")" ]
	# the content is the 49 parts themselves, linked in the file's order
	id=$(xattr "$MNT/order.bin" user.upload.file_id)
	[ "$(ls "$SRV_DATA/content/$id" | wc -l)" = 49 ]
	server_content "$id" | cmp - "$src"
	# each part said where it sits (part@OFFSET): the server hashed the whole file as the
	# parts came, whatever order they arrived in, and complete had nothing left to hash
	[ "$(jq -r 'select(.path | endswith("/complete")) | .hashed_early' "$BATS_TEST_TMPDIR/req.log")" = $((48 * MiB + 12345)) ]
}

@test "cp: parts go up while cp is stopped in the middle of its copy" {
	mount_fs
	src=$BATS_TEST_TMPDIR/big.bin
	head -c $((512 * MiB)) /dev/urandom >"$src"
	cp "$src" "$MNT/" &
	CP_PID=$!
	local i size=0
	for i in $(seq 500); do
		size=$(stat -c %s "$MNT/big.bin" 2>/dev/null || echo 0)
		[ "$size" -ge $((16 * MiB)) ] && break
		sleep 0.01
	done
	kill -STOP "$CP_PID"
	# cp has not closed the file: it is frozen in the middle of its writes
	ls -l "/proc/$CP_PID/fd" | grep -q "$MNT/big.bin"
	[ "$(stat -c %s "$MNT/big.bin")" -lt $((512 * MiB)) ]
	wait_sent "$MNT/big.bin" $((8 * MiB))
	kill -CONT "$CP_PID"
	wait "$CP_PID"
	CP_PID=
	[ "$(xattr "$MNT/big.bin" user.upload.status)" = completed ]
	[ "$(xattr "$MNT/big.bin" user.upload.md5)" = "$(md5_of "$src")" ]
	[ "$(remote_json big.bin | jq .bytes)" = $((512 * MiB)) ]
	umount_fs
	stop_server
	[ "$(requests POST '^/v1/uploads$')" = 1 ]
	[ "$(requests POST '/cancel$')" = 0 ]
}

@test "a guess too large is cancelled at close and the bytes written go up" {
	mount_fs
	head -c $((40 * MiB)) /dev/urandom >"$BATS_TEST_TMPDIR/src.bin"
	exec 7<"$BATS_TEST_TMPDIR/src.bin"
	exec 8>"$MNT/short.bin"
	wait_status "$MNT/short.bin" uploading
	head -c $((20 * MiB)) <&7 >&8
	exec 8>&- 7<&-
	head -c $((20 * MiB)) "$BATS_TEST_TMPDIR/src.bin" >"$BATS_TEST_TMPDIR/want"
	[ "$(xattr "$MNT/short.bin" user.upload.status)" = completed ]
	[ "$(remote_json short.bin | jq .bytes)" = $((20 * MiB)) ]
	[ "$(remote_md5 short.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/want")" ]
	umount_fs
	stop_server
	[ "$(requests POST '^/v1/uploads$')" = 2 ]
	[ "$(requests POST '/cancel$')" = 1 ]
}

@test "past a guess too small no more parts go up; close redoes the upload" {
	mount_fs
	head -c $((12 * MiB)) /dev/urandom >"$BATS_TEST_TMPDIR/src.bin"
	head -c $((40 * MiB)) /dev/urandom >"$BATS_TEST_TMPDIR/want"
	exec 7<"$BATS_TEST_TMPDIR/src.bin"
	exec 8>"$MNT/long.bin"
	wait_status "$MNT/long.bin" uploading
	cat "$BATS_TEST_TMPDIR/want" >&8
	exec 8>&- 7<&-
	[ "$(xattr "$MNT/long.bin" user.upload.status)" = completed ]
	[ "$(remote_md5 long.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/want")" ]
	umount_fs
	stop_server
	[ "$(requests POST '^/v1/uploads$')" = 2 ]
	[ "$(requests POST '/cancel$')" = 1 ]
	# the first session got its first part at most: the one within the 12 MiB guessed
	[ "$(requests POST '/parts$')" -le 6 ]
}

@test "the source with the new file's name wins; two others leave the size unknown" {
	mount_fs -d
	head -c $((20 * MiB)) /dev/urandom >"$BATS_TEST_TMPDIR/other.bin"
	mkdir "$BATS_TEST_TMPDIR/d"
	head -c $((30 * MiB)) /dev/urandom >"$BATS_TEST_TMPDIR/d/data.bin"
	exec 6<"$BATS_TEST_TMPDIR/other.bin"
	exec 7<"$BATS_TEST_TMPDIR/d/data.bin"
	exec 8>"$MNT/data.bin"
	wait_status "$MNT/data.bin" uploading
	cat <&7 >&8
	exec 8>&- 7<&-
	[ "$(remote_md5 data.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/d/data.bin")" ]
	# other.bin and a second file, neither named like the target: no guess
	exec 7<"$BATS_TEST_TMPDIR/d/data.bin"
	exec 8>"$MNT/third.bin"
	[ "$(xattr "$MNT/third.bin" user.upload.status)" = pending ]
	cat <&7 >&8
	exec 8>&- 7<&- 6<&-
	[ "$(remote_md5 third.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/d/data.bin")" ]
	umount_fs
	stop_server
	[ "$(requests POST '/cancel$')" = 0 ]
	[[ "$(guessed data.bin)" == *"data.bin: 31457280 bytes"* ]]
	[ -z "$(guessed third.bin)" ]
}

@test "no guess from a file read elsewhere than offset 0, from a small file, or with size_hint=off" {
	mount_fs -d
	head -c $((20 * MiB)) /dev/urandom >"$BATS_TEST_TMPDIR/src.bin"
	exec 7<"$BATS_TEST_TMPDIR/src.bin"
	head -c 1 <&7 >/dev/null
	exec 8>"$MNT/a.bin"
	[ "$(xattr "$MNT/a.bin" user.upload.status)" = pending ]
	exec 8>&- 7<&-
	# not more than one part: nothing to gain
	head -c $((8 * MiB)) /dev/urandom >"$BATS_TEST_TMPDIR/small.bin"
	exec 7<"$BATS_TEST_TMPDIR/small.bin"
	exec 8>"$MNT/b.bin"
	[ "$(xattr "$MNT/b.bin" user.upload.status)" = pending ]
	exec 8>&- 7<&-
	umount_fs
	mount_fs -d -o size_hint=off
	exec 7<"$BATS_TEST_TMPDIR/src.bin"
	exec 8>"$MNT/c.bin"
	[ "$(xattr "$MNT/c.bin" user.upload.status)" = pending ]
	cat <&7 >&8
	exec 8>&- 7<&-
	[ "$(remote_md5 c.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/src.bin")" ]
	run "$UPLOADFS" -f -o "api_base=$BASE,size_hint=maybe" "$BATS_TEST_TMPDIR"
	[ "$status" -ne 0 ]
	[[ "$output" == *"invalid -o size_hint=maybe: expected auto or off"* ]]
	umount_fs
	[ -z "$(guessed '[abc]\.bin')" ]
	# the same log does have the line when there is a guess
	mount_fs -d
	exec 7<"$BATS_TEST_TMPDIR/src.bin"
	exec 8>"$MNT/d.bin"
	cat <&7 >&8
	exec 8>&- 7<&-
	umount_fs
	[ -n "$(guessed 'd\.bin')" ]
}

@test "a source inside a FUSE mount is never stat'ed (single-threaded: no deadlock)" {
	# were it stat'ed, this single-threaded daemon would wait for itself: the test hangs
	mount_fs -d -s
	head -c $((20 * MiB)) /dev/urandom >"$BATS_TEST_TMPDIR/src.bin"
	cp "$BATS_TEST_TMPDIR/src.bin" "$MNT/in.bin"
	exec 7<"$MNT/in.bin"
	exec 8>"$MNT/out.bin"
	[ "$(xattr "$MNT/out.bin" user.upload.status)" = pending ]
	cat <&7 >&8
	exec 8>&- 7<&-
	[ "$(remote_md5 out.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/src.bin")" ]
	umount_fs
	[ -n "$(guessed 'in\.bin')" ]
	[ -z "$(guessed 'out\.bin')" ]
}

@test "O_TRUNC while the early upload runs: the writer stays, close uploads the new bytes" {
	# a part in flight when the spool is truncated finds its bytes gone and is stopped
	# mid-body (the server logs it); that session is cancelled at close, nothing fails
	ALLOW_LOG=$CUT_REQUEST_LOG
	mount_fs
	head -c $((40 * MiB)) /dev/urandom >"$BATS_TEST_TMPDIR/src.bin"
	head -c $((10 * MiB)) /dev/urandom >"$BATS_TEST_TMPDIR/new.bin"
	exec 7<"$BATS_TEST_TMPDIR/src.bin"
	exec 8>"$MNT/t.bin"
	wait_status "$MNT/t.bin" uploading
	head -c $((20 * MiB)) <&7 >&8
	# a second opener truncates the file, still open on fd 8, and writes new bytes
	exec 9>"$MNT/t.bin"
	cat "$BATS_TEST_TMPDIR/new.bin" >&9
	exec 9>&-
	exec 8>&- 7<&-
	[ "$(xattr "$MNT/t.bin" user.upload.status)" = completed ]
	[ "$(remote_md5 t.bin)" = "$(md5_of "$BATS_TEST_TMPDIR/new.bin")" ]
	umount_fs
	stop_server
	[ "$(requests POST '^/v1/uploads$')" = 2 ]
	[ "$(requests POST '/cancel$')" = 1 ]
}
