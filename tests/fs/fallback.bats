#!/usr/bin/env bats
# A Files-only server (--no-uploads answers /v1/uploads* with 404): files up to 512 MiB go
# up with one POST /v1/files, said once in the log; larger ones fail with EFBIG.

load ../lib/mount

setup() {
	fs_setup --no-uploads --log-requests "$BATS_TEST_TMPDIR/req.log"
	FS_ALLOW='Files-only server|upload of big.bin failed|write to big2.bin failed'
}

teardown() {
	fs_teardown
}

@test "a Files-only server gets each file in one POST /v1/files, said once" {
	mount_fs
	head -c 20000000 /dev/urandom >"$BATS_TEST_TMPDIR/a.bin"
	printf 'hello\n' >"$BATS_TEST_TMPDIR/b.txt"
	cp "$BATS_TEST_TMPDIR/a.bin" "$BATS_TEST_TMPDIR/b.txt" "$MNT/"
	# a size announced first (fallocate) starts no session; the file of 1000 zeros it makes
	# goes up at its close, and the dd below makes a new version of it
	fallocate -l 1000 "$MNT/c.bin"
	[ "$(remote_md5 c.bin)" = "$(head -c 1000 /dev/zero | md5sum | cut -d' ' -f1)" ]
	head -c 1000 /dev/urandom >"$BATS_TEST_TMPDIR/c.bin"
	dd if="$BATS_TEST_TMPDIR/c.bin" of="$MNT/c.bin" conv=notrunc status=none
	[ "$(remote_md5 a.bin)" = "$(md5sum <"$BATS_TEST_TMPDIR/a.bin" | cut -d' ' -f1)" ]
	[ "$(remote_md5 b.txt)" = "$(md5sum <"$BATS_TEST_TMPDIR/b.txt" | cut -d' ' -f1)" ]
	[ "$(remote_md5 c.bin)" = "$(md5sum <"$BATS_TEST_TMPDIR/c.bin" | cut -d' ' -f1)" ]
	[ "$(xattr "$MNT/a.bin" user.upload.status)" = completed ]
	[ "$(xattr "$MNT/a.bin" user.upload.file_id)" = "$(remote_json a.bin | jq -r .id)" ]
	[ "$(xattr "$MNT/a.bin" user.upload.bytes_sent)" = 20000000 ]
	umount_fs
	stop_server
	[ "$(grep -c 'Files-only server' "$BATS_TEST_TMPDIR/fs.log")" = 1 ]
	# one try of the Uploads API, then only the Files API
	[ "$(jq -r 'select(.path == "/v1/uploads") | .status' "$BATS_TEST_TMPDIR/req.log")" = 404 ]
	[ "$(jq -r 'select(.method == "POST" and .path == "/v1/files") | .status' "$BATS_TEST_TMPDIR/req.log" | sort | uniq -c | awk '{print $1, $2}')" = "4 200" ]
}

@test "a file over 512 MiB fails with a clear error on a Files-only server" {
	mount_fs
	# the first file finds out: it fails at close, and says why
	run dd if=/dev/zero of="$MNT/big.bin" bs=1M count=1 seek=600 status=none
	[ "$status" != 0 ]
	[ "$(xattr "$MNT/big.bin" user.upload.status)" = failed ]
	[[ "$(xattr "$MNT/big.bin" user.upload.error)" == *"no Uploads API"* ]]
	# from then on the write itself is refused
	run dd if=/dev/zero of="$MNT/big2.bin" bs=1M count=1 seek=600 status=none
	[ "$status" != 0 ]
	[[ "$output" == *"File too large"* ]]
	# and a small one still goes up
	echo small >"$MNT/small.txt"
	[ "$(remote_md5 small.txt)" = "$(echo small | md5sum | cut -d' ' -f1)" ]
	[ "$(remote_count)" = 1 ]
}
