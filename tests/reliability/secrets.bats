#!/usr/bin/env bats
# The key is never in argv, logs, xattrs or error messages.

load ../lib/mount

KEY=sk-test-4f1c9a-never-print-me

teardown() {
	fs_teardown
}

@test "a full debug session never writes the key anywhere" {
	FS_ALLOW='.'
	printf '%s\n' "$KEY" >"$BATS_TEST_TMPDIR/key"
	chmod 600 "$BATS_TEST_TMPDIR/key"
	fs_setup --api-key-file "$BATS_TEST_TMPDIR/key" --log-requests "$BATS_TEST_TMPDIR/req.log"
	chmod 600 "$BATS_TEST_TMPDIR/key"
	mount_fs -d -o "api_key_file=$BATS_TEST_TMPDIR/key,part_size=1M"
	head -c 2500000 /dev/urandom >"$BATS_TEST_TMPDIR/x"
	cp "$BATS_TEST_TMPDIR/x" "$MNT/x"
	mkdir "$MNT/d"
	setfattr -n user.purpose -v batch "$MNT/d"
	echo hi >"$MNT/d/y.txt"
	cat "$MNT/d/y.txt" >/dev/null
	ls -lR "$MNT" >/dev/null
	getfattr -d -m - "$MNT/x" "$MNT/d/y.txt" >"$BATS_TEST_TMPDIR/xattrs"
	rm "$MNT/x"
	# the key is not on the daemon's command line
	! tr '\0' ' ' <"/proc/$FS_PID/cmdline" | grep -q "$KEY"
	umount_fs
	stop_server
	# the debug log shows the requests, with the key redacted
	grep -q 'Authorization: Bearer \[REDACTED\]' "$BATS_TEST_TMPDIR/fs.log"
	for f in "$BATS_TEST_TMPDIR/fs.log" "$BATS_TEST_TMPDIR/srv.err" "$BATS_TEST_TMPDIR/req.log" \
		"$BATS_TEST_TMPDIR/xattrs" "$CACHE/state.db"; do
		! grep -q "$KEY" "$f"
	done
	! grep -rq "$KEY" "$CACHE"
}

@test "a wrong key: the mount is refused with the server's message, not the key" {
	printf 'sk-wrong-key-abc\n' >"$BATS_TEST_TMPDIR/bad"
	chmod 600 "$BATS_TEST_TMPDIR/bad"
	fs_setup --api-key "$KEY"
	mkdir -p "$BATS_TEST_TMPDIR/m"
	run "$UPLOADFS" -f -o "api_base=$BASE,api_key_file=$BATS_TEST_TMPDIR/bad,cache_dir=$BATS_TEST_TMPDIR/c" "$BATS_TEST_TMPDIR/m"
	[ "$status" = 1 ]
	[[ "$output" == *"Incorrect API key"* ]]
	[[ "$output" != *sk-wrong-key-abc* ]]
}

@test "the key from the environment works and is not shown either" {
	FS_ALLOW='.'
	fs_setup --api-key "$KEY"
	OPENAI_API_KEY=$KEY mount_fs -d
	echo x >"$MNT/e.txt"
	[ "$(curl -sS -H "Authorization: Bearer $KEY" "$BASE/files" | jq '.data | length')" = 1 ]
	umount_fs
	! grep -q "$KEY" "$BATS_TEST_TMPDIR/fs.log"
}
