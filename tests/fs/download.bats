#!/usr/bin/env bats
# Reads of files the mount has not cached download them; a download whose connection is
# lost goes on from where it stopped (Range), it does not start over.

load ../lib/mount

setup() {
	# every content answer is cut after 2 MiB, as a flaky link would
	fs_setup --cut-downloads 2M --log-requests "$BATS_TEST_TMPDIR/req.log"
	FS_ALLOW='retry'
	ALLOW_LOG='.'
}

teardown() {
	fs_teardown
}

# content_requests: the Range header of each content request, in order ("-": none)
content_requests() {
	jq -r 'select(.path | endswith("/content")) | .headers.range // "-"' "$BATS_TEST_TMPDIR/req.log"
}

@test "a read of a 5 MB file cut every 2 MiB: three requests, each resumed where the last stopped, the bytes right" {
	head -c 5000000 /dev/urandom >"$BATS_TEST_TMPDIR/f"
	upload_file "$BATS_TEST_TMPDIR/f" batch remote.bin >/dev/null
	mount_fs
	# a read in the middle of the file
	dd if="$MNT/remote.bin" bs=1000 skip=4500 count=100 status=none | cmp - <(tail -c +4500001 "$BATS_TEST_TMPDIR/f" | head -c 100000)
	cmp "$MNT/remote.bin" "$BATS_TEST_TMPDIR/f"
	[ "$(content_requests | tr '\n' ' ')" = "- bytes=2097152- bytes=4194304- " ]
}

@test "the library resumes too: up_file_content of a file cut every 2 MiB" {
	head -c 3000000 /dev/urandom >"$BATS_TEST_TMPDIR/f"
	fid=$(upload_file "$BATS_TEST_TMPDIR/f" batch lib.bin)
	run "$UPLOADFS_BUILD/tests/getfile" "$BASE" "$fid" "$BATS_TEST_TMPDIR/got"
	[ "$status" = 0 ]
	cmp "$BATS_TEST_TMPDIR/got" "$BATS_TEST_TMPDIR/f"
	[ "$(content_requests | tr '\n' ' ')" = "- bytes=2097152- " ]
}
