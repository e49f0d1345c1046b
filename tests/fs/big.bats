#!/usr/bin/env bats
# A 2 GiB file copied into the mount with default options: the server checks the md5 at
# complete, and its stored copy is hashed again here.

load ../lib/mount

setup() {
	fs_setup
	mount_fs
}

teardown() {
	fs_teardown
}

@test "cp of a 2 GiB file, md5 checked on the server's copy" {
	f=$BATS_TEST_TMPDIR/big
	head -c 2147483648 /dev/urandom >"$f"
	want=$(md5_of "$f")
	cp "$f" "$MNT/big.bin"
	[ "$(xattr "$MNT/big.bin" user.upload.status)" = completed ]
	[ "$(xattr "$MNT/big.bin" user.upload.md5)" = "$want" ]
	[ "$(remote_json big.bin | jq .bytes)" = 2147483648 ]
	rm -f "$f"
	id=$(remote_json big.bin | jq -r .id)
	[ "$(server_content "$id" | md5sum | cut -d' ' -f1)" = "$want" ]
}
